//! Starting the `fake-shopify` binary for the demo and learning its address.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the fake may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Spawns `fake-shopify serve` on a free loopback port; returns the process (killed when
/// dropped) and its base URL.
pub async fn spawn(path: &Path, client_id: &str, client_secret: &str) -> anyhow::Result<(Child, String)> {
    if !path.is_file() {
        bail!(
            "the fake Shopify binary {} does not exist; build it with `cargo build --release -p fake-shopify` \
             (or run `cargo xtask demo`), or pass --fake-shopify PATH",
            path.display()
        );
    }
    let mut child = Command::new(path)
        .args(["--client-id", client_id, "--client-secret", client_secret, "serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();
    // `fake Shopify on http://127.0.0.1:PORT; set GHOSTTRACK_SHOPIFY_API_BASE=…`
    let base = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("fake Shopify on ") {
                return Ok::<_, std::io::Error>(rest.split(';').next().map(str::to_owned));
            }
        }
        Ok(None)
    })
    .await
    .context("the fake Shopify did not start in time")??
    .context("the fake Shopify exited before printing its address")?;
    // Keep draining its stderr so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, base))
}
