//! A self-hosted poem app protected by GhostTrack's detection engine, in process:
//! clients whose verdict is BLOCK get `429 Too Many Requests` with `Retry-After`.
//!
//! ```text
//! cargo run -p ghosttrack --example guarded_app
//! curl -i -A 'sqlmap/1.8' http://127.0.0.1:3000/   # 200: judged after the answer
//! curl -i -A 'sqlmap/1.8' http://127.0.0.1:3000/   # 429, Retry-After: 21600
//! ```

use ghosttrack::detect::commands::load_rules;
use ghosttrack::detect::guard::DetectGuard;
use ghosttrack::detect::service::Detector;
use ghosttrack::domain::SiteId;
use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server, get, handler};

#[handler]
fn index() -> &'static str {
    "hello from a guarded app\n"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The embedded rules (pass a directory to override them), state in process.
    let rules = load_rules(None)?;
    let (detector, verdicts) = Detector::new(rules, 100_000, None)?;
    // A server with a database passes this queue to `detect::service::run_recorder`; this
    // example keeps no history and prints the verdict changes instead.
    tokio::spawn(async move {
        let mut verdicts = verdicts;
        while let Some(change) = verdicts.recv().await {
            println!("verdict change: {} {} {}", change.subject, change.decision, change.score);
        }
    });
    let app = Route::new().at("/", get(index)).with(DetectGuard::new(detector, SiteId(1), Vec::new()));
    Server::new(TcpListener::bind("127.0.0.1:3000")).run(app).await?;
    Ok(())
}
