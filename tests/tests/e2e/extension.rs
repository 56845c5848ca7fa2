//! The theme app extension must pass Shopify's deploy checks (shared/spec/shopify-storefront.md §1):
//! supported folders only, one level deep, allowed asset types, size limits, and block schemas
//! with known attributes and valid settings.

use std::path::Path;

use ghosttrack_tests::workspace_root;
use serde_json::Value;

const FOLDERS: [&str; 4] = ["assets", "blocks", "locales", "snippets"];
const ASSET_EXTENSIONS: [&str; 8] = ["js", "css", "json", "png", "jpg", "jpeg", "svg", "wasm"];
const SCHEMA_KEYS: [&str; 10] =
    ["name", "target", "javascript", "stylesheet", "enabled_on", "disabled_on", "class", "tag", "settings", "default"];
const EMBED_TARGETS: [&str; 4] = ["section", "head", "body", "compliance_head"];
const SETTING_TYPES: [&str; 12] = [
    "text",
    "textarea",
    "checkbox",
    "range",
    "select",
    "radio",
    "number",
    "color",
    "url",
    "richtext",
    "header",
    "paragraph",
];
const LIQUID_BUDGET_BYTES: u64 = 100 * 1024;
const BUNDLE_LIMIT_BYTES: u64 = 10 * 1024 * 1024;
/// Shopify suggests ≤ 10 KB compressed for JS referenced by a block.
const JS_COMPRESSED_BUDGET: usize = 10 * 1024;

fn extension_dir() -> std::path::PathBuf {
    workspace_root().join("extensions/ghosttrack-theme")
}

fn schema_of(liquid: &str) -> Value {
    let start = liquid.find("{% schema %}").expect("block has a schema") + "{% schema %}".len();
    let end = liquid.find("{% endschema %}").expect("schema is closed");
    serde_json::from_str(&liquid[start..end]).expect("schema is strict JSON (no comments, no trailing commas)")
}

#[test]
fn the_extension_has_only_supported_folders_one_level_deep() {
    let dir = extension_dir();
    let toml = std::fs::read_to_string(dir.join("shopify.extension.toml")).unwrap();
    let config: toml::Value = toml.parse().unwrap();
    assert_eq!(config["type"].as_str(), Some("theme"));
    assert!(config.get("name").is_some());

    let (mut total, mut liquid) = (0u64, 0u64);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_file() {
            assert!(name.ends_with(".toml") || name == "package.json", "unexpected top-level file {name}");
            continue;
        }
        assert!(FOLDERS.contains(&name.as_str()), "unsupported folder {name}");
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let file = file.unwrap();
            assert!(file.file_type().unwrap().is_file(), "sub-folder in {name}/: Shopify collects */* only");
            let path = file.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            match name.as_str() {
                "assets" => assert!(ASSET_EXTENSIONS.contains(&ext), "asset type .{ext} not allowed"),
                "blocks" | "snippets" => assert_eq!(ext, "liquid"),
                "locales" => assert_eq!(ext, "json"),
                _ => unreachable!(),
            }
            let size = file.metadata().unwrap().len();
            total += size;
            if ext == "liquid" {
                liquid += size;
            }
        }
    }
    assert!(liquid <= LIQUID_BUDGET_BYTES, "{liquid} bytes of Liquid");
    assert!(total <= BUNDLE_LIMIT_BYTES);
}

#[test]
fn every_block_schema_is_valid_and_the_embed_loads_the_tracker_deferred() {
    let blocks = extension_dir().join("blocks");
    let mut embeds = 0;
    for file in std::fs::read_dir(&blocks).unwrap() {
        let path = file.unwrap().path();
        let liquid = std::fs::read_to_string(&path).unwrap();
        let schema = schema_of(&liquid);
        for key in schema.as_object().unwrap().keys() {
            assert!(SCHEMA_KEYS.contains(&key.as_str()), "{}: unknown schema key {key}", path.display());
        }
        let name = schema["name"].as_str().expect("name");
        assert!(name.len() < 25, "block name {name:?} should stay under 25 characters");
        let target = schema["target"].as_str().expect("target");
        assert!(EMBED_TARGETS.contains(&target));
        for setting in schema["settings"].as_array().into_iter().flatten() {
            check_setting(setting);
        }
        if target != "section" {
            embeds += 1;
            assert_eq!(target, "head", "the tracker embed renders in <head>, never compliance_head");
            assert!(liquid.contains("{%- unless request.design_mode -%}"), "not rendered inside the theme editor");
            assert!(liquid.contains("{{ 'ghosttrack.js' | asset_url }}\" defer"), "tracker loaded with defer");
            assert!(liquid.contains("id=\"ghosttrack-config\""));
        }
    }
    assert_eq!(embeds, 1);
}

fn check_setting(setting: &Value) {
    let kind = setting["type"].as_str().expect("setting type");
    assert!(SETTING_TYPES.contains(&kind), "unknown setting type {kind}");
    if kind != "header" && kind != "paragraph" {
        assert!(setting["id"].is_string() && setting["label"].is_string(), "{setting}");
    }
    if kind == "range" {
        let (min, max, step, default) = (
            setting["min"].as_f64().unwrap(),
            setting["max"].as_f64().unwrap(),
            setting["step"].as_f64().unwrap(),
            setting["default"].as_f64().unwrap(),
        );
        assert!((max - min) / step <= 100.0, "a range may have at most 101 steps");
        assert!((min..=max).contains(&default));
        assert_eq!(((default - min) / step).fract(), 0.0, "default on a step");
    }
    if kind == "select" || kind == "radio" {
        let values: Vec<&str> =
            setting["options"].as_array().unwrap().iter().map(|o| o["value"].as_str().unwrap()).collect();
        assert!(values.contains(&setting["default"].as_str().unwrap()));
    }
}

#[test]
fn the_shipped_tracker_is_within_shopifys_script_budget() {
    let js = std::fs::read(extension_dir().join("assets/ghosttrack.js")).unwrap();
    assert_eq!(js, ghosttrack::tracker::TRACKER_JS.as_bytes(), "assets/ghosttrack.js is the built tracker");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &js).unwrap();
    assert!(enc.finish().unwrap().len() <= JS_COMPRESSED_BUDGET);
    assert!(Path::new(&extension_dir().join("assets")).exists());
}
