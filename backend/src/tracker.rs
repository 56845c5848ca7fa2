//! The storefront tracker as served at `/t.js` (minified from `tracker/ghosttrack.js` by
//! `build.rs`) and the HTML snippet that loads it on any website.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use crate::domain::SiteKey;

/// Minified tracker source.
pub const TRACKER_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/ghosttrack.min.js"));

/// Path of the copy shipped in the Shopify theme app extension, relative to the workspace root.
pub const THEME_ASSET_PATH: &str = "extensions/ghosttrack-theme/assets/ghosttrack.js";

/// Strong ETag of the tracker, so browsers revalidate cheaply.
pub static TRACKER_ETAG: LazyLock<String> =
    LazyLock::new(|| format!("\"{}\"", &hex::encode(Sha256::digest(TRACKER_JS.as_bytes()))[..16]));

/// The HTML to paste into a page's `<head>` to track it with site `key`.
pub fn snippet(public_url: &url::Url, key: &SiteKey) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    format!(
        "<script defer src=\"{base}/t.js\" data-site=\"{key}\"></script>\n\
         <noscript><img src=\"{base}/collect.gif?k={key}\" alt=\"\" width=\"1\" height=\"1\" style=\"position:absolute\" referrerpolicy=\"no-referrer-when-downgrade\"></noscript>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Budget from the issue: the tracker must stay small enough to never matter to a page.
    const GZIP_BUDGET_BYTES: usize = 3_000;

    fn gzipped_len(data: &[u8]) -> usize {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap().len()
    }

    #[test]
    fn tracker_fits_the_gzip_size_budget() {
        let size = gzipped_len(TRACKER_JS.as_bytes());
        println!("tracker: {} bytes minified, {size} bytes gzipped", TRACKER_JS.len());
        assert!(size <= GZIP_BUDGET_BYTES, "tracker is {size} B gzipped; budget {GZIP_BUDGET_BYTES} B");
    }

    #[test]
    fn theme_extension_copy_matches_the_built_tracker() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(THEME_ASSET_PATH);
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == TRACKER_JS,
            "{} is stale: run `cargo run -p ghosttrack -- tracker --write` and commit it",
            THEME_ASSET_PATH
        );
    }

    #[test]
    fn snippet_loads_the_tracker_deferred_with_the_site_key() {
        let key = SiteKey::parse("gt_abcdefghijklmnop").unwrap();
        let html = snippet(&url::Url::parse("https://stats.example.com/").unwrap(), &key);
        assert!(
            html.contains(r#"<script defer src="https://stats.example.com/t.js" data-site="gt_abcdefghijklmnop">"#)
        );
        assert!(html.contains("collect.gif?k=gt_abcdefghijklmnop"));
    }
}
