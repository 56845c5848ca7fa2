//! The `ghosttrack` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::settings::{ANNOTATED_DEFAULTS, Settings};
use crate::startup::Application;
use crate::storage::{self, sites::SiteKind};
use crate::telemetry;
use crate::tracker;

#[derive(Parser, Debug)]
#[command(name = "ghosttrack", version, about = "Privacy-first security analytics for online stores")]
pub struct Cli {
    /// TOML configuration file (see `ghosttrack print-config`).
    #[arg(long, global = true, env = "GHOSTTRACK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// A one-command demo: GhostTrack on SQLite (`{data_dir}/demo`), a demo shop installed
    /// through the fake Shopify, and simulated shoppers, bots, card testing and a scraper.
    Demo {
        /// The `fake-shopify` binary to start (default: next to this binary).
        #[arg(long, conflicts_with = "shopify_api_base")]
        fake_shopify: Option<PathBuf>,
        /// Use a fake Shopify already serving at this base URL instead of starting one.
        #[arg(long)]
        shopify_api_base: Option<String>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the annotated default configuration.
    PrintConfig,
    /// Manage sites.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Privacy: a site's mode, export or delete one visitor, run the retention job once.
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// Encryption keys: status, and rotation of the master key, data keys and stored payloads.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage standalone users (who log in at /app).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the minified tracker, or write it into the theme app extension.
    Tracker {
        /// Write `extensions/ghosttrack-theme/assets/ghosttrack.js` (relative to the current directory).
        #[arg(long)]
        write: bool,
    },
    /// Detection rules: validate a rule directory, list the loaded rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Replay an events file (JSON lines, docs/DETECTION.md) and print every verdict change.
    Replay {
        #[command(flatten)]
        detect: DetectArgs,
        /// The events file.
        file: PathBuf,
        /// One JSON object per verdict change (`client_key`, `decision`, `score`, `reasons`, `at`).
        #[arg(long)]
        json: bool,
    },
    /// Replay an events file and explain which rules fired, why, and with which counts.
    Explain {
        #[command(flatten)]
        detect: DetectArgs,
        file: PathBuf,
        /// Only this subject (e.g. `session:42`, `client:203.0.113.9`).
        #[arg(long)]
        subject: Option<String>,
    },
    /// Read an access log (combined or nginx) and print verdict changes per client.
    IngestLog {
        #[command(flatten)]
        detect: DetectArgs,
        #[arg(long, value_enum, default_value = "combined")]
        format: crate::detect::accesslog::LogFormat,
        /// The log file.
        file: PathBuf,
        /// Start at this byte offset (the `next offset` a previous run printed).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by the offline detection commands.
#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// The site key the events belong to (a label: offline runs judge one tenant).
    #[arg(long)]
    site: Option<String>,
    /// Rule files that replace or extend the embedded rules (same layout as `backend/rules`).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The tenant policy (TOML: bands, rule overrides, allowlists, shadow mode).
    #[arg(long)]
    policy: Option<PathBuf>,
}

impl DetectArgs {
    fn load(&self) -> anyhow::Result<(std::sync::Arc<crate::detect::RuleSet>, Option<crate::detect::Policy>)> {
        if let Some(site) = &self.site {
            crate::domain::SiteKey::parse(site).with_context(|| format!("`{site}` is not a site key (gt_…)"))?;
        }
        let rules = crate::detect::commands::load_rules(self.rules.as_deref())?;
        let policy = self.policy.as_deref().map(crate::detect::commands::load_policy).transpose()?;
        Ok((rules, policy))
    }
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Validate every rule file under DIR; errors name the file, the field and the constraint.
    Check { dir: PathBuf },
    /// List the loaded rules (embedded, or with `--rules DIR` overriding them).
    List {
        #[arg(long)]
        rules: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Create a standalone site and print its key, API token and HTML snippet.
    Add {
        /// The website's domain, e.g. example.com.
        #[arg(long)]
        domain: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PrivacyCommand {
    /// Set a site's privacy mode: strict, balanced or forensic (docs/PRIVACY.md).
    Mode {
        #[arg(long)]
        site: String,
        mode: String,
    },
    /// Print everything held about one visitor id as JSON (events, sessions, verdicts).
    Export {
        #[arg(long)]
        site: String,
        #[arg(long)]
        visitor: i64,
    },
    /// Delete everything held about one visitor id.
    Delete {
        #[arg(long)]
        site: String,
        #[arg(long)]
        visitor: i64,
    },
    /// Run one retention pass now (the server runs it every `privacy.sweep_interval_secs`).
    Sweep,
    /// Turn encryption of the site's event payloads at rest on or off (needs
    /// GHOSTTRACK_SECRET_KEY; off keeps what was encrypted readable). Servers follow within 30 s.
    Encryption {
        #[arg(long)]
        site: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Master key ids, each tenant's data keys, and what still needs re-wrapping.
    Status,
    /// Re-wrap data keys and re-seal shop tokens under the current GHOSTTRACK_SECRET_KEY (the
    /// old secret in GHOSTTRACK_SECRET_KEY_PREVIOUS). Safe while servers run; run it again to
    /// finish rows changed meanwhile.
    Rotate {
        /// Also issue a new data key per encrypted tenant for new writes (old keys stay for reading).
        #[arg(long)]
        data_keys: bool,
        /// Then re-encrypt stored payloads not under each tenant's active key, in batches
        /// (resumable: a new run continues with the rows still left).
        #[arg(long)]
        reencrypt: bool,
        /// Events per re-encrypt batch.
        #[arg(long, default_value_t = crate::keys::rotate::REENCRYPT_BATCH)]
        batch: u64,
    },
}

/// `ghosttrack keys …` with loaded settings (also what the end-to-end test runs).
pub async fn keys_command(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    use crate::keys::{EventKeys, MasterKeys, rotate};
    let master = MasterKeys::from_settings(settings)?.context("GHOSTTRACK_SECRET_KEY is not set")?;
    let keys = EventKeys::new(Some(master));
    let db = storage::connect(&settings.database_url()).await?;
    storage::migrate(&db).await?;
    match command {
        KeysCommand::Status => println!("{}", serde_json::to_string_pretty(&rotate::status(&db, &keys).await?)?),
        KeysCommand::Rotate { data_keys, reencrypt, batch } => {
            let mut done = rotate::Rotated::default();
            rotate::rewrap_all(&db, &keys, &mut done).await?;
            if data_keys {
                rotate::new_data_keys(&db, &keys, &mut done).await?;
            }
            if reencrypt {
                done.events_reencrypted = rotate::reencrypt(&db, &keys, batch.max(1)).await?;
            }
            println!("{}", serde_json::to_string_pretty(&done)?);
        }
    }
    Ok(())
}

async fn site_scope(db: &sea_orm::DatabaseConnection, domain: &str) -> anyhow::Result<storage::TenantScope> {
    let domain = normalise_domain(domain)?;
    let site = storage::sites::find_by_domain(db, &domain).await?.with_context(|| {
        format!("no site for {domain} (list them with the stats API, or create one with `ghosttrack site add`)")
    })?;
    // The operator running the CLI has the database itself: the site is theirs.
    Ok(storage::TenantScope::verified(site.id))
}

async fn privacy_command(settings: &Settings, command: PrivacyCommand) -> anyhow::Result<()> {
    let db = storage::connect(&settings.database_url()).await?;
    storage::migrate(&db).await?;
    match command {
        PrivacyCommand::Mode { site, mode } => {
            let parsed = crate::domain::PrivacyMode::parse(&mode)
                .with_context(|| format!("`{mode}` is not a privacy mode (strict, balanced or forensic)"))?;
            let scope = site_scope(&db, &site).await?;
            storage::privacy::set_mode(&db, scope, parsed).await?;
            println!("{site} is now in {} mode", parsed.as_str());
        }
        PrivacyCommand::Export { site, visitor } => {
            let scope = site_scope(&db, &site).await?;
            let keys = crate::keys::EventKeys::new(crate::keys::MasterKeys::from_settings(settings)?);
            let export = crate::privacy::export_visitor(&db, &keys, scope, crate::domain::VisitorId(visitor)).await?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        PrivacyCommand::Delete { site, visitor } => {
            let scope = site_scope(&db, &site).await?;
            let deleted = storage::privacy::delete_visitor(&db, scope, crate::domain::VisitorId(visitor)).await?;
            println!("{}", serde_json::to_string(&deleted)?);
        }
        PrivacyCommand::Sweep => {
            let swept =
                crate::privacy::sweep(&db, &settings.privacy, &settings.billing, crate::domain::UnixMillis::now())
                    .await?;
            println!("deleted {} events and {} pointer paths past their retention", swept.events, swept.pointer_paths);
        }
        PrivacyCommand::Encryption { site, state } => {
            let scope = site_scope(&db, &site).await?;
            let keys = crate::keys::EventKeys::new(crate::keys::MasterKeys::from_settings(settings)?);
            if state == "on" {
                let key = keys.enable(&db, scope).await?;
                println!("{site}: event payloads are encrypted with data key {}", key.key_id);
            } else {
                keys.disable(&db, scope).await?;
                println!("{site}: new event payloads are stored unencrypted (encrypted ones stay readable)");
            }
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a user who logs in at /app with email and password. The password comes from
    /// `GHOSTTRACK_ADMIN_PASSWORD`, else it is read from the terminal (not echoed) or stdin.
    Create {
        /// The site's domain (as given to `ghosttrack site add`).
        #[arg(long)]
        site: String,
        /// The user's email (their login name).
        #[arg(long)]
        email: String,
        /// owner, analyst or viewer.
        #[arg(long, default_value = "owner", value_parser = parse_role)]
        role: crate::accounts::Role,
    },
}

fn parse_role(raw: &str) -> Result<crate::accounts::Role, String> {
    crate::accounts::Role::parse(raw).ok_or_else(|| format!("`{raw}` is not a role: use owner, analyst or viewer"))
}

#[derive(Serialize)]
struct SiteAdded<'a> {
    domain: &'a str,
    site_key: &'a str,
    api_token: &'a str,
    snippet: String,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::PrintConfig = command {
        print!("{ANNOTATED_DEFAULTS}");
        return Ok(());
    }
    if let Command::Tracker { write } = command {
        if write {
            std::fs::write(tracker::THEME_ASSET_PATH, tracker::TRACKER_JS).with_context(|| {
                format!("cannot write {} (run from the repository root)", tracker::THEME_ASSET_PATH)
            })?;
            eprintln!("wrote {} ({} bytes)", tracker::THEME_ASSET_PATH, tracker::TRACKER_JS.len());
        } else {
            print!("{}", tracker::TRACKER_JS);
        }
        return Ok(());
    }

    if let Some(result) = run_detect_command(&command) {
        return result;
    }

    let loaded = Settings::load(cli.config.as_deref())?;
    let settings = loaded.settings;
    telemetry::init(&settings.log);
    for name in &loaded.unknown_env {
        tracing::warn!(variable = %name, "unknown GHOSTTRACK_* environment variable ignored (typo? see `ghosttrack print-config`)");
    }

    match command {
        Command::Serve => serve(settings).await,
        Command::Demo { fake_shopify, shopify_api_base, duration_secs } => {
            let fake = match (shopify_api_base, fake_shopify) {
                (Some(base), _) => crate::demo::FakeShopify::Running(base),
                (None, Some(path)) => crate::demo::FakeShopify::Spawn(path),
                (None, None) => crate::demo::FakeShopify::Spawn(
                    std::env::current_exe()
                        .context("cannot locate the ghosttrack binary")?
                        .with_file_name(format!("fake-shopify{}", std::env::consts::EXE_SUFFIX)),
                ),
            };
            let options =
                crate::demo::DemoOptions { fake, duration: duration_secs.map(std::time::Duration::from_secs) };
            crate::demo::run(settings, options, shutdown_signal()).await
        }
        Command::Migrate => {
            let url = settings.database_url();
            let db = storage::connect(&url).await?;
            storage::migrate(&db).await?;
            println!("database {} is up to date", url.redacted());
            Ok(())
        }
        Command::Site { command: SiteCommand::Add { domain, json } } => {
            let domain = normalise_domain(&domain)?;
            let db = storage::connect(&settings.database_url()).await?;
            storage::migrate(&db).await?;
            let (site, token) = storage::sites::create(&db, &domain, SiteKind::Standalone).await?;
            let snippet = tracker::snippet(&settings.public_url(), &site.key);
            if json {
                let out =
                    SiteAdded { domain: &domain, site_key: site.key.as_str(), api_token: token.expose(), snippet };
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("Site {domain} created.\n");
                println!("  site key:  {}", site.key);
                println!("  API token: {}   (shown once; keep it secret)\n", token.expose());
                println!("Paste into the <head> of every page:\n\n{snippet}\n");
            }
            Ok(())
        }
        Command::Privacy { command } => privacy_command(&settings, command).await,
        Command::Keys { command } => keys_command(&settings, command).await,
        Command::Admin { command: AdminCommand::Create { site, email, role } } => {
            crate::accounts::admin_cli::create(&settings, &normalise_domain(&site)?, &email, role).await
        }
        Command::PrintConfig
        | Command::Tracker { .. }
        | Command::Rules { .. }
        | Command::Replay { .. }
        | Command::Explain { .. }
        | Command::IngestLog { .. } => unreachable!("handled above"),
    }
}

/// The offline detection commands (no settings, no database); `None` for other commands.
fn run_detect_command(command: &Command) -> Option<anyhow::Result<()>> {
    use crate::detect::commands;
    let mut out = std::io::stdout().lock();
    Some(match command {
        Command::Rules { command: RulesCommand::Check { dir } } => commands::rules_check(dir, &mut out),
        Command::Rules { command: RulesCommand::List { rules } } => {
            commands::load_rules(rules.as_deref()).and_then(|r| commands::rules_list(&r, &mut out))
        }
        Command::Replay { detect, file, json } => {
            detect.load().and_then(|(rules, policy)| commands::replay(rules, policy, file, *json, &mut out))
        }
        Command::Explain { detect, file, subject } => detect
            .load()
            .and_then(|(rules, policy)| commands::explain(rules, policy, file, subject.as_deref(), &mut out)),
        Command::IngestLog { detect, format, file, offset, json } => detect.load().and_then(|(rules, policy)| {
            let summary = commands::ingest_log(rules, policy, *format, file, *offset, *json, &mut out)?;
            eprintln!(
                "{} lines, {} skipped, {} verdict changes; next offset {}",
                summary.lines, summary.skipped, summary.verdict_changes, summary.next_offset
            );
            Ok(())
        }),
        _ => return None,
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let base = app.settings().public_url();
    println!("\nGhostTrack is serving on http://{}", app.local_addr());
    if let Some(key) = app.demo_site() {
        println!(
            "\nDemo site ({}), key {key}. Open {}demo to send events from your browser.",
            crate::startup::DEMO_DOMAIN,
            base
        );
        println!("Snippet for your own pages:\n\n{}\n", tracker::snippet(&base, key));
        if let Some(token) = &app.demo_created {
            println!("Demo API token (shown once): {}", token.expose());
            println!(
                "  curl -H 'Authorization: Bearer {}' '{}api/v1/stats?site={key}&from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z'\n",
                token.expose(),
                base
            );
        }
    }
    app.run_until_stopped(shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; draining");
}

/// Accepts `example.com`, `https://example.com/`, `Example.COM` and returns the host.
fn normalise_domain(raw: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let url = url::Url::parse(&with_scheme).with_context(|| format!("`{raw}` is not a domain (e.g. example.com)"))?;
    let host = url.host_str().with_context(|| format!("`{raw}` has no host (e.g. example.com)"))?;
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_to_a_lowercase_host() {
        assert_eq!(normalise_domain("Example.COM").unwrap(), "example.com");
        assert_eq!(normalise_domain("https://shop.example.com/path").unwrap(), "shop.example.com");
        assert!(normalise_domain("exa mple").is_err());
    }

    #[test]
    fn keys_rotate_takes_its_flags_and_privacy_encryption_only_on_or_off() {
        let cli = Cli::try_parse_from(["ghosttrack", "keys", "rotate", "--data-keys", "--reencrypt", "--batch", "50"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys { command: KeysCommand::Rotate { data_keys: true, reencrypt: true, batch: 50 } })
        ));
        let plain = Cli::try_parse_from(["ghosttrack", "keys", "rotate"]).unwrap();
        assert!(matches!(
            plain.command,
            Some(Command::Keys { command: KeysCommand::Rotate { data_keys: false, reencrypt: false, .. } })
        ));
        assert!(Cli::try_parse_from(["ghosttrack", "privacy", "encryption", "--site", "a.example", "on"]).is_ok());
        assert!(Cli::try_parse_from(["ghosttrack", "privacy", "encryption", "--site", "a.example", "maybe"]).is_err());
    }

    #[test]
    fn the_cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
