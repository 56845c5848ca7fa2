//! The `ghosttrack` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn ghosttrack(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ghosttrack"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GHOSTTRACK_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn site_add_json_prints_the_key_token_and_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let out = ghosttrack(dir.path())
        .args(["site", "add", "--domain", "Shop.Example.com", "--json"])
        .env("GHOSTTRACK_PUBLIC_URL", "https://stats.example.net")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let key = json["site_key"].as_str().unwrap();
    assert!(key.starts_with("gt_"));
    assert!(json["api_token"].as_str().unwrap().starts_with("gtk_"));
    assert_eq!(json["domain"], "shop.example.com");
    let snippet = json["snippet"].as_str().unwrap();
    assert!(snippet.contains(&format!(r#"src="https://stats.example.net/t.js" data-site="{key}""#)), "{snippet}");
    assert!(dir.path().join("ghosttrack.db").exists(), "SQLite created in the data dir");
}

#[test]
fn print_config_prints_annotated_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = ghosttrack(dir.path()).arg("print-config").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\""));
    assert!(text.contains("GHOSTTRACK_INGEST__MAX_BODY_BYTES"));
    let file = dir.path().join("config.toml");
    std::fs::write(&file, &text).unwrap();
    let migrate = ghosttrack(dir.path()).args(["--config", file.to_str().unwrap(), "migrate"]).output().unwrap();
    assert!(migrate.status.success(), "the printed config is a valid config file");
}

#[test]
fn invalid_settings_fail_fast_with_a_hint_and_unknown_variables_are_warned() {
    let dir = tempfile::tempdir().unwrap();
    let bad = ghosttrack(dir.path()).arg("migrate").env("GHOSTTRACK_LISTEN", "not-an-address").output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("listen") && err.contains("print-config"), "{err}");

    let typo = ghosttrack(dir.path()).arg("migrate").env("GHOSTTRACK_DATABSE_URL", "x").output().unwrap();
    assert!(typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("GHOSTTRACK_DATABSE_URL"));
}

#[test]
fn serve_prints_the_demo_snippet_serves_the_demo_page_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ghosttrack(dir.path())
        .env("GHOSTTRACK_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut saw_snippet = false;
    let mut saw_token = false;
    for line in lines.by_ref().take(40) {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("GhostTrack is serving on http://") {
            addr = Some(rest.trim().to_owned());
        }
        saw_snippet |= line.contains("<script defer src=") && line.contains("/t.js\" data-site=\"gt_");
        saw_token |= line.starts_with("Demo API token (shown once): gtk_");
        if line.starts_with("  curl ") {
            break;
        }
    }
    let addr = addr.expect("serving address printed");
    assert!(saw_snippet && saw_token);

    let demo = ureq_get(&format!("http://{addr}/demo"));
    assert!(demo.contains("data-site=\"gt_"), "{demo}");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful exit");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal blocking HTTP GET (keeps this test free of an HTTP client dependency).
fn ureq_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn privacy_commands_set_the_mode_export_delete_and_sweep_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ghosttrack(dir.path()).args(args).output().unwrap();
    assert!(run(&["site", "add", "--domain", "shop.example"]).status.success());

    let out = run(&["privacy", "mode", "--site", "shop.example", "paranoid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strict, balanced or forensic"));
    let out = run(&["privacy", "mode", "--site", "nowhere.example", "strict"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no site for nowhere.example"));
    let out = run(&["privacy", "mode", "--site", "Shop.Example", "strict"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Shop.Example is now in strict mode");

    let out = run(&["privacy", "export", "--site", "shop.example", "--visitor", "42"]);
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON export");
    assert_eq!(export["visitor_id"], 42);
    assert_eq!(export["events"], serde_json::json!([]));
    let out = run(&["privacy", "delete", "--site", "shop.example", "--visitor", "42"]);
    let deleted: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON counts");
    assert_eq!(deleted["events"], 0);
    let out = run(&["privacy", "sweep"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted 0 events"));
}

/// The users of the SQLite database in `data_dir`: (email, role, password hash).
fn users(data_dir: &std::path::Path) -> Vec<(String, String, String)> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let url = format!("sqlite://{}/ghosttrack.db", data_dir.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Database::connect(url).await.unwrap();
        let sql = "SELECT email, role, password_hash FROM users ORDER BY id";
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get("", "email").unwrap(),
                    r.try_get("", "role").unwrap(),
                    r.try_get("", "password_hash").unwrap(),
                )
            })
            .collect()
    })
}

fn site_add(dir: &std::path::Path, domain: &str) {
    let out = ghosttrack(dir).args(["site", "add", "--domain", domain, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn admin_create_makes_an_owner_who_can_log_in_and_says_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    site_add(dir.path(), "shop.example.com");

    let out = ghosttrack(dir.path())
        .args(["admin", "create", "--site", "Shop.Example.com", "--email", " Ann@Shop.Example.com"])
        .env("GHOSTTRACK_ADMIN_PASSWORD", "correct horse battery staple")
        .env("GHOSTTRACK_PUBLIC_URL", "https://stats.example.net")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("GHOSTTRACK_ADMIN_PASSWORD"), "not warned as an unknown setting: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("open https://stats.example.net/app and log in"), "{stdout}");
    let users = users(dir.path());
    assert_eq!(users.len(), 1);
    let (email, role, hash) = &users[0];
    assert_eq!((email.as_str(), role.as_str()), ("ann@shop.example.com", "owner"));
    assert!(hash.starts_with("$argon2id$"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let verify = |pw: &str| {
        let hash = ghosttrack::accounts::password::PasswordHashString(hash.clone());
        rt.block_on(ghosttrack::accounts::password::verify(
            ghosttrack::accounts::password::Password::new(pw),
            Some(hash),
        ))
        .unwrap()
    };
    assert!(verify("correct horse battery staple"));
    assert!(!verify("correct horse battery"));
}

#[test]
fn admin_create_reads_the_password_from_stdin_and_takes_a_role() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    site_add(dir.path(), "shop.example.com");

    let mut child = ghosttrack(dir.path())
        .args(["admin", "create", "--site", "shop.example.com", "--email", "vic@shop.example.com", "--role", "viewer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a long enough passphrase\n").unwrap();
    let out = child.wait_with_output().unwrap();

    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users = users(dir.path());
    assert_eq!((users[0].0.as_str(), users[0].1.as_str()), ("vic@shop.example.com", "viewer"));
}

#[test]
fn admin_create_refuses_weak_passwords_unknown_sites_and_bad_roles_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    site_add(dir.path(), "shop.example.com");
    let create = |site: &str, role: &str, password: &str| {
        ghosttrack(dir.path())
            .args(["admin", "create", "--site", site, "--email", "ann@shop.example.com", "--role", role])
            .env("GHOSTTRACK_ADMIN_PASSWORD", password)
            .output()
            .unwrap()
    };

    let weak = create("shop.example.com", "owner", "short pass");
    let unknown = create("other.example.com", "owner", "correct horse battery staple");
    let bad_role = create("shop.example.com", "admin", "correct horse battery staple");

    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12 characters"), "{weak:?}");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("site add --domain other.example.com"), "{unknown:?}");
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("owner, analyst or viewer"), "{bad_role:?}");
    assert!(users(dir.path()).is_empty());
}

#[test]
fn demo_without_the_fake_shopify_binary_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-fake-shopify");
    let out = ghosttrack(dir.path()).args(["demo", "--fake-shopify"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist") && stderr.contains("cargo build --release -p fake-shopify"), "{stderr}");
}
