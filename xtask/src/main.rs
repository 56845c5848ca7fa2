//! Build tasks that plain cargo cannot express.
//!
//! - `cargo xtask dist`: builds the admin panel (`web/`) for `wasm32-unknown-unknown` with the
//!   `wasm-release` profile, runs `wasm-bindgen --target web` (installing the CLI into `.tools/`
//!   at exactly Cargo.lock's wasm-bindgen version when missing), and writes `web/dist/`:
//!   `index.html` plus content-hashed assets, each with `.gz` and `.br` siblings.
//! - `cargo xtask run [ARGS…]`: `dist`, then `cargo run --release -p ghosttrack -- serve ARGS…`.
//! - `cargo xtask demo [ARGS…]`: `dist`, builds the `fake-shopify` binary (the demo starts it from
//!   beside `ghosttrack`), then `cargo run --release -p ghosttrack -- demo ARGS…`.
//!
//! No tool is downloaded as a binary and wasm-opt is not used: Debian's binaryen 108 breaks
//! modern wasm-bindgen output, and building binaryen 116 takes minutes (see docs/ARCHITECTURE.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Replaced by the server with the Shopify `<meta>` and App Bridge `<script>` (first in `<head>`).
const HEAD_MARKER: &str = "<!--ghosttrack:head-->";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("dist") => dist().map(|_| ()),
        Some("run") => {
            dist()?;
            let status = Command::new(cargo())
                .current_dir(root())
                .args(["run", "--release", "-p", "ghosttrack", "--", "serve"])
                .args(args)
                .status()
                .context("cannot start cargo run")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Some("demo") => {
            dist()?;
            run(Command::new(cargo()).current_dir(root()).args(["build", "--release", "-p", "fake-shopify"]))?;
            let status = Command::new(cargo())
                .current_dir(root())
                .args(["run", "--release", "-p", "ghosttrack", "--", "demo"])
                .args(args)
                .status()
                .context("cannot start cargo run")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        _ => {
            eprintln!(
                "usage: cargo xtask dist | cargo xtask run [serve arguments] | cargo xtask demo [demo arguments]"
            );
            std::process::exit(2);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// The version of `name` in Cargo.lock (the first entry).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    lock[start..].split('"').next().map(str::to_owned)
}

/// `.tools/bin/wasm-bindgen` at exactly `version`, installed with `cargo install` when missing.
fn wasm_bindgen_cli(version: &str) -> anyhow::Result<PathBuf> {
    let tools = root().join(".tools");
    let bin = tools.join("bin").join("wasm-bindgen");
    let current =
        Command::new(&bin).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if current.as_deref().map(str::trim) == Some(format!("wasm-bindgen {version}").as_str()) {
        return Ok(bin);
    }
    eprintln!("==> installing wasm-bindgen-cli {version} into .tools/ (once; a few minutes)");
    // Not --locked: the CLI's own lock can name crate versions a registry mirror lacks.
    run(Command::new(cargo())
        .args(["install", "wasm-bindgen-cli", "--version", &format!("={version}"), "--root"])
        .arg(&tools)
        .env_remove("CARGO_TARGET_DIR"))?;
    Ok(bin)
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Writes `dir/name` and its `.gz` (level 9) and `.br` (quality 11) siblings; returns the sizes.
fn write_asset(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<(usize, usize, usize)> {
    std::fs::write(dir.join(name), bytes)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    let gz = gz.finish()?;
    std::fs::write(dir.join(format!("{name}.gz")), &gz)?;
    let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 11, 22);
    br.write_all(bytes)?;
    let br = br.into_inner();
    std::fs::write(dir.join(format!("{name}.br")), &br)?;
    Ok((bytes.len(), gz.len(), br.len()))
}

/// rust-toolchain.toml lists the target, but an already-installed toolchain may lack it.
fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(root()).output();
    if let Ok(out) = installed
        && out.status.success()
        && !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        eprintln!("==> rustup target add wasm32-unknown-unknown");
        let _ = Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]).current_dir(root()).status();
    }
}

fn dist() -> anyhow::Result<PathBuf> {
    let root = root();
    let started = Instant::now();
    ensure_wasm_target();
    eprintln!("==> building the admin panel (wasm32-unknown-unknown, profile wasm-release)");
    run(Command::new(cargo()).current_dir(&root).args([
        "build",
        "-p",
        "ghosttrack-web",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]))
    .context("the panel does not build for wasm32 (is the target installed? rust-toolchain.toml lists it)")?;
    let wasm = target_dir().join("wasm32-unknown-unknown/wasm-release/ghosttrack_web.wasm");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    let version = locked_version(&lock, "wasm-bindgen").context("Cargo.lock has no wasm-bindgen")?;
    let bindgen = wasm_bindgen_cli(&version)?;
    let staging = target_dir().join("panel-bindgen");
    let _ = std::fs::remove_dir_all(&staging);
    run(Command::new(&bindgen)
        .args(["--target", "web", "--no-typescript", "--remove-name-section", "--remove-producers-section"])
        .args(["--out-name", "panel", "--out-dir"])
        .arg(&staging)
        .arg(&wasm))?;

    let dist = root.join("web/dist");
    let assets = dist.join("assets");
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&assets)?;
    let js = std::fs::read(staging.join("panel.js"))?;
    let bg = std::fs::read(staging.join("panel_bg.wasm"))?;
    let css = std::fs::read(root.join("web/style.css")).context("web/style.css")?;
    let js_name = format!("panel-{}.js", short_hash(&js));
    let wasm_name = format!("panel-{}.wasm", short_hash(&bg));
    let css_name = format!("style-{}.css", short_hash(&css));
    let (wasm_raw, wasm_gz, wasm_br) = write_asset(&assets, &wasm_name, &bg)?;
    let (js_raw, js_gz, js_br) = write_asset(&assets, &js_name, &js)?;
    write_asset(&assets, &css_name, &css)?;
    let index = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>{HEAD_MARKER}\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>GhostTrack</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/app/assets/{css_name}\">\n\
         <link rel=\"modulepreload\" href=\"/app/assets/{js_name}\">\n\
         <link rel=\"preload\" href=\"/app/assets/{wasm_name}\" as=\"fetch\" type=\"application/wasm\" crossorigin>\n\
         </head>\n<body>\n<noscript><p>GhostTrack's panel needs JavaScript.</p></noscript>\n\
         <script type=\"module\">import init from \"/app/assets/{js_name}\"; \
         init({{ module_or_path: \"/app/assets/{wasm_name}\" }});</script>\n</body>\n</html>\n"
    );
    std::fs::write(dist.join("index.html"), index)?;
    eprintln!(
        "==> web/dist ready in {:.1} s: wasm {wasm_raw} B ({wasm_gz} B gzip, {wasm_br} B brotli), \
         js {js_raw} B ({js_gz} B gzip, {js_br} B brotli)",
        started.elapsed().as_secs_f64()
    );
    Ok(dist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_wasm_bindgen_version_is_read_from_cargo_lock() {
        let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
        let version = locked_version(&lock, "wasm-bindgen").unwrap();
        assert!(version.starts_with("0.2."), "{version}");
        let manifest = std::fs::read_to_string(root().join("web/Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("wasm-bindgen = \"={version}\"")), "web pins the locked version");
    }
}
