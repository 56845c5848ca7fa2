//! The built panel (`web/dist`, written by `cargo xtask dist`), loaded once at start-up: the
//! `index.html` template and the content-hashed assets with their precompressed `.br` / `.gz`
//! siblings. A missing build is not an error: `/app` then says how to make one.
//!
//! The page's `script-src` is computed here too: the sha256 of each inline script of the
//! build's `index.html` (the module script that boots the WASM), so no other inline script
//! runs, plus `'wasm-unsafe-eval'` (compiling the panel's WASM needs it once `script-src` is
//! set) and, inside Shopify admin, App Bridge's origin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::shopify::embedded::html_escape;

/// Where the server puts the Shopify `<meta>` and App Bridge `<script>` (first in `<head>`).
pub const HEAD_MARKER: &str = "<!--ghosttrack:head-->";

/// One hashed asset and its precompressed forms.
pub struct Asset {
    pub content_type: &'static str,
    pub raw: Vec<u8>,
    pub gzip: Option<Vec<u8>>,
    pub brotli: Option<Vec<u8>>,
}

/// A content coding the client accepts and we have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }
}

impl Asset {
    /// The best body for an `Accept-Encoding` header: brotli, then gzip, then raw.
    pub fn negotiate(&self, accept_encoding: &str) -> (Coding, &[u8]) {
        let accepts = |name: &str| {
            accept_encoding.split(',').any(|part| {
                let mut it = part.split(';');
                let coding = it.next().unwrap_or("").trim();
                let refused =
                    it.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                coding.eq_ignore_ascii_case(name) && !refused
            })
        };
        match (&self.brotli, &self.gzip) {
            (Some(br), _) if accepts("br") => (Coding::Brotli, br),
            (_, Some(gz)) if accepts("gzip") => (Coding::Gzip, gz),
            _ => (Coding::Identity, &self.raw),
        }
    }
}

pub struct PanelAssets {
    dist_dir: PathBuf,
    index: Option<String>,
    /// `'sha256-…'` of each inline script of `index`.
    script_hashes: Vec<String>,
    assets: HashMap<String, Asset>,
}

/// The CSP hash sources of the inline `<script>` elements of an HTML page (those without `src`).
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else { break };
        let open_tag = &after[..open_end];
        let body_and_more = &after[open_end + 1..];
        let Some(close) = body_and_more.find("</script>") else { break };
        if !open_tag.contains(" src=") {
            let digest = Sha256::digest(&body_and_more.as_bytes()[..close]);
            hashes.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &body_and_more[close + "</script>".len()..];
    }
    hashes
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

impl PanelAssets {
    /// Reads `dist_dir`; anything missing or unreadable leaves the panel unavailable.
    pub fn load(dist_dir: &Path) -> PanelAssets {
        let index = std::fs::read_to_string(dist_dir.join("index.html")).ok();
        let mut assets = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(dist_dir.join("assets")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".gz") || name.ends_with(".br") {
                    continue;
                }
                let Ok(raw) = std::fs::read(entry.path()) else { continue };
                let sibling = |ext: &str| std::fs::read(dist_dir.join("assets").join(format!("{name}.{ext}"))).ok();
                let asset =
                    Asset { content_type: content_type(&name), raw, gzip: sibling("gz"), brotli: sibling("br") };
                assets.insert(name, asset);
            }
        }
        let script_hashes = index.as_deref().map(inline_script_hashes).unwrap_or_default();
        PanelAssets { dist_dir: dist_dir.to_owned(), index, script_hashes, assets }
    }

    /// The page's `script-src` directive: its own assets, its inline boot script by hash, WASM
    /// compilation, and App Bridge's origin when the page loads it (inside Shopify admin).
    pub fn script_src(&self, app_bridge_url: Option<&str>) -> String {
        let mut directive = String::from("script-src 'self'");
        for hash in &self.script_hashes {
            directive.push(' ');
            directive.push_str(hash);
        }
        directive.push_str(" 'wasm-unsafe-eval'");
        let origin = app_bridge_url.and_then(|u| url::Url::parse(u).ok()).map(|u| u.origin());
        if let Some(origin) = origin.filter(|o| o.is_tuple()) {
            directive.push(' ');
            directive.push_str(&origin.ascii_serialization());
        }
        directive.push(';');
        directive
    }

    pub fn is_built(&self) -> bool {
        self.index.is_some()
    }

    /// What to tell whoever opens `/app` on a server without a panel build.
    pub fn missing_message(&self) -> String {
        format!(
            "The admin panel is not built: {} has no index.html. Build it with `cargo xtask dist` (or start the \
             server with `cargo xtask run`), or point panel.dist_dir (GHOSTTRACK_PANEL__DIST_DIR) at a build.",
            self.dist_dir.display()
        )
    }

    /// `index.html` with `head` at the marker (empty standalone).
    pub fn index_html(&self, head: &str) -> Option<String> {
        self.index.as_ref().map(|i| i.replacen(HEAD_MARKER, head, 1))
    }

    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.get(name)
    }
}

/// The embedded panel's first `<head>` elements (spec shopify-auth §6.1): the API key meta and
/// App Bridge, a plain blocking script (no async/defer, no module).
pub fn embedded_head(api_key: &str, app_bridge_url: &str) -> String {
    format!(
        "<meta name=\"shopify-api-key\" content=\"{}\"><script src=\"{}\"></script>",
        html_escape(api_key),
        html_escape(app_bridge_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> Asset {
        Asset {
            content_type: "application/wasm",
            raw: b"raw".to_vec(),
            gzip: Some(b"gz".to_vec()),
            brotli: Some(b"br".to_vec()),
        }
    }

    #[test]
    fn brotli_is_preferred_then_gzip_then_identity() {
        let a = asset();
        assert_eq!(a.negotiate("gzip, deflate, br, zstd").0, Coding::Brotli);
        assert_eq!(a.negotiate("gzip").0, Coding::Gzip);
        assert_eq!(a.negotiate("br;q=0, gzip").0, Coding::Gzip);
        assert_eq!(a.negotiate("").0, Coding::Identity);
        assert_eq!(a.negotiate("identity").1, b"raw");
        let plain = Asset { gzip: None, brotli: None, ..asset() };
        assert_eq!(plain.negotiate("br, gzip").0, Coding::Identity);
    }

    #[test]
    fn a_missing_build_says_how_to_make_one_and_a_build_gets_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PanelAssets::load(dir.path());
        assert!(!missing.is_built());
        assert!(missing.missing_message().contains("cargo xtask dist"));

        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), format!("<head>{HEAD_MARKER}<meta charset=\"utf-8\">")).unwrap();
        std::fs::write(dir.path().join("assets/panel-1.wasm"), b"w").unwrap();
        std::fs::write(dir.path().join("assets/panel-1.wasm.br"), b"b").unwrap();
        let built = PanelAssets::load(dir.path());
        let head = embedded_head("key\"x", "https://cdn.example/app-bridge.js");
        let html = built.index_html(&head).unwrap();
        assert!(html.starts_with("<head><meta name=\"shopify-api-key\" content=\"key&quot;x\"><script src=\"https://cdn.example/app-bridge.js\"></script><meta charset"), "{html}");
        let wasm = built.asset("panel-1.wasm").unwrap();
        assert_eq!(
            (wasm.content_type, wasm.brotli.as_deref(), wasm.gzip.as_deref()),
            ("application/wasm", Some(&b"b"[..]), None)
        );
        assert!(built.asset("panel-1.wasm.br").is_none(), "siblings are not assets of their own");
    }

    #[test]
    fn script_src_allows_exactly_the_inline_boot_script_by_hash_and_app_bridge_by_origin() {
        let boot = r#"import init from "/app/assets/panel-1.js"; init();"#;
        let html = format!(
            "<head><script src=\"https://cdn.example/x.js\"></script></head><body><script type=\"module\">{boot}</script></body>"
        );
        let expected =
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(boot.as_bytes())));
        assert_eq!(inline_script_hashes(&html), std::slice::from_ref(&expected));
        // Known answer: sha256("") in base64.
        assert_eq!(
            inline_script_hashes("<script></script>"),
            ["'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"]
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), &html).unwrap();
        let built = PanelAssets::load(dir.path());
        assert_eq!(
            built.script_src(Some("https://cdn.shopify.com/shopifycloud/app-bridge.js")),
            format!("script-src 'self' {expected} 'wasm-unsafe-eval' https://cdn.shopify.com;")
        );
        assert_eq!(built.script_src(None), format!("script-src 'self' {expected} 'wasm-unsafe-eval';"));
    }
}
