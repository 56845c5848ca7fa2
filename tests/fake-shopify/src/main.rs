//! `fake-shopify`: run the fake for manual testing and the demo, or use its helpers from a
//! shell (mint an id token, build an embedded app-load URL, deliver a signed webhook).

use std::time::Duration;

use clap::{Parser, Subcommand};
use fake_shopify::{AppRegistration, FakeShopify};

#[derive(Parser)]
#[command(name = "fake-shopify", about = "A strict local stand-in for Shopify (OAuth, id tokens, webhooks, app proxy)")]
struct Cli {
    /// The app's client id (API key).
    #[arg(long, env = "GHOSTTRACK_SHOPIFY_API_KEY", default_value = "ghosttrack-dev")]
    client_id: String,
    /// The app's client secret.
    #[arg(long, env = "GHOSTTRACK_SHOPIFY_API_SECRET", default_value = "ghosttrack-dev-secret")]
    client_secret: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OAuth endpoints under http://LISTEN/{shop}/admin/oauth/… until Ctrl-C.
    Serve {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
        /// Allowed redirect_uri of the authorize endpoint (repeatable).
        #[arg(long)]
        redirect_url: Vec<String>,
    },
    /// Print a fresh 60 s id token for a shop.
    MintIdToken {
        #[arg(long)]
        shop: String,
        #[arg(long, default_value_t = 1)]
        user_id: u64,
    },
    /// Print the URL the Shopify admin iframe would load.
    AppLoadUrl {
        #[arg(long)]
        app_url: String,
        #[arg(long)]
        shop: String,
    },
    /// Deliver a signed webhook (with Shopify's retry policy, compressed to --backoff-ms).
    SendWebhook {
        #[arg(long)]
        url: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        shop: String,
        /// JSON body; `-` reads stdin.
        #[arg(long)]
        body: String,
        #[arg(long, default_value_t = 1000)]
        backoff_ms: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut app = AppRegistration::new(&cli.client_id, &cli.client_secret);
    let listen = match &cli.command {
        Command::Serve { listen, redirect_url } => {
            app.redirect_urls = redirect_url.clone();
            *listen
        }
        _ => "127.0.0.1:0".parse()?,
    };
    let fake = FakeShopify::start(app, listen).await?;
    match cli.command {
        Command::Serve { .. } => {
            eprintln!(
                "fake Shopify on {}; set GHOSTTRACK_SHOPIFY_API_BASE={}",
                fake.base_url,
                fake.api_base_template()
            );
            tokio::signal::ctrl_c().await?;
        }
        Command::MintIdToken { shop, user_id } => println!("{}", fake.mint_id_token(&shop, user_id)),
        Command::AppLoadUrl { app_url, shop } => println!("{}", fake.embedded_load_url(&app_url, &shop)),
        Command::SendWebhook { url, topic, shop, body, backoff_ms } => {
            let body = if body == "-" { std::io::read_to_string(std::io::stdin())? } else { body };
            let delivery = fake.webhook(&topic, &shop, &body);
            let (attempts, ok) = fake.deliver_with_retries(&url, &delivery, Duration::from_millis(backoff_ms)).await;
            println!("webhook_id={} attempts={attempts} delivered={ok}", delivery.webhook_id);
            if !ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
