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

// The web pixel app extension (shared/spec/shopify-storefront.md §2).

const PIXEL_BUNDLE_LIMIT_BYTES: u64 = 128 * 1024;
const SALE_OF_DATA: [&str; 3] = ["enabled", "disabled", "ldu"];
/// Names a strict-sandbox pixel cannot use (web worker: no DOM, no window, no storage; the
/// deprecated `browser.sendBeacon` is replaced by `fetch` with `keepalive`).
const NOT_IN_STRICT_SANDBOX: [&str; 9] = [
    "document",
    "window",
    "navigator",
    "localStorage",
    "sessionStorage",
    "XMLHttpRequest",
    "importScripts",
    "eval",
    "parent",
];
/// Checkout fields that hold personal data; the pixel must not read them.
const PERSONAL_FIELDS: [&str; 11] = [
    "email",
    "phone",
    "billingAddress",
    "shippingAddress",
    "firstName",
    "lastName",
    "address1",
    "message",
    "customer",
    "lineItems",
    "transactions",
];

fn pixel_dir() -> std::path::PathBuf {
    workspace_root().join("extensions/ghosttrack-pixel")
}

/// Whether `js` uses `name` as an identifier of its own (not as `x.name`) followed by `.`, `(` or `[`.
fn uses_global(js: &str, name: &str) -> bool {
    js.match_indices(name).any(|(i, _)| {
        let before = js[..i].chars().next_back();
        let after = js[i + name.len()..].chars().next();
        !before.is_some_and(|c| c == '.' || c.is_alphanumeric() || c == '_' || c == '$')
            && matches!(after, Some('.' | '(' | '['))
    })
}

/// Whether `js` reads `.field` (property access).
fn reads_field(js: &str, field: &str) -> bool {
    js.match_indices(&format!(".{field}")).any(|(i, _)| {
        let after = js[i + field.len() + 1..].chars().next();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    }) || js.contains(&format!("['{field}']"))
        || js.contains(&format!("[\"{field}\"]"))
}

/// Runs the pixel's `src/index.js` in node the way the strict sandbox would (fresh context, no
/// DOM) with a fake `register` and fetch; answers the fetch calls it made.
pub(super) fn run_pixel(scenario: &Value) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("gt-pixel-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let out = std::process::Command::new("node")
        .arg(workspace_root().join("tests/fixtures/pixel-harness.js"))
        .arg(pixel_dir().join("src/index.js"))
        .arg(&path)
        .output()
        .expect("node runs the pixel harness");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "pixel harness failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn the_pixel_extension_is_a_strict_web_pixel_with_declared_privacy_and_settings() {
    let dir = pixel_dir();
    let config: toml::Value =
        std::fs::read_to_string(dir.join("shopify.extension.toml")).unwrap().parse().expect("valid TOML");
    assert_eq!(config["type"].as_str(), Some("web_pixel_extension"));
    assert!(config["name"].is_str());
    assert_eq!(config["runtime_context"].as_str(), Some("strict"), "app pixels always run strict");
    assert!(config.get("configuration").is_none(), "`configuration` is refused at deploy (use settings)");

    let privacy = config["customer_privacy"].as_table().expect("[customer_privacy] declared explicitly");
    let keys: Vec<&str> = privacy.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in ["analytics", "marketing", "preferences"] {
        assert!(privacy[key].is_bool(), "{key} is a boolean");
    }
    assert!(SALE_OF_DATA.contains(&privacy["sale_of_data"].as_str().unwrap()));
    assert_eq!(privacy["marketing"].as_bool(), Some(false), "a security pixel needs no marketing consent");

    assert_eq!(config["settings"]["type"].as_str(), Some("object"));
    let fields = config["settings"]["fields"].as_table().expect("settings.fields");
    for key in ["accountID", "collectorUrl"] {
        let field = &fields[key];
        assert!(field["name"].is_str(), "{key} has a name");
        assert_eq!(field["type"].as_str(), Some("single_line_text_field"), "{key}");
    }

    let mut top: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    top.sort();
    assert_eq!(top, ["package.json", "shopify.extension.toml", "src"]);
    let package: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    assert!(package["dependencies"]["@shopify/web-pixels-extension"].is_string());
    let size = std::fs::metadata(dir.join("src/index.js")).unwrap().len();
    assert!(size <= PIXEL_BUNDLE_LIMIT_BYTES, "{size} bytes");
}

#[test]
fn the_pixel_uses_only_strict_sandbox_apis_and_reads_no_personal_data() {
    let js = std::fs::read_to_string(pixel_dir().join("src/index.js")).unwrap();
    let imports: Vec<&str> = js.lines().filter(|l| l.trim_start().starts_with("import ")).collect();
    assert_eq!(imports, ["import {register} from '@shopify/web-pixels-extension';"]);
    assert!(!js.contains("require("));
    for name in NOT_IN_STRICT_SANDBOX {
        assert!(!uses_global(&js, name), "index.js uses `{name}`, unavailable in the strict sandbox");
    }
    assert!(!js.contains("sendBeacon"), "browser.sendBeacon is deprecated: fetch with keepalive");
    assert!(!js.contains("browser.cookie"), "no identifier is stored in the browser");
    for field in PERSONAL_FIELDS {
        assert!(!reads_field(&js, field), "index.js reads `.{field}` (personal data)");
    }
    for event in ["checkout_started", "payment_info_submitted", "alert_displayed", "checkout_completed"] {
        assert!(js.contains(&format!("analytics.subscribe('{event}'")), "subscribes to {event}");
    }
    // The checks above can see what they look for.
    assert!(uses_global("const t = document.title;", "document"));
    assert!(!uses_global("event.context.document.location", "document"));
    assert!(reads_field("checkout.email", "email") && !reads_field("checkout.emails2", "email"));
}

#[test]
fn the_pixel_sends_checkout_steps_and_payment_alerts_in_the_collect_format() {
    use ghosttrack::ingest::payload::{EventBody, parse_batch, parse_event};

    let scenario = serde_json::json!({
        "settings": {"accountID": "gt_abcdefghij", "collectorUrl": "https://collect.example/collect"},
        "events": [
            {"name": "page_viewed", "data": {}},
            {"name": "checkout_started", "ts_ms": 1_800_000_000_000i64,
             "data": {"checkout": {"token": "tok-1", "email": "someone@example.com", "phone": "+15550100"}}},
            {"name": "payment_info_submitted", "ts_ms": 1_800_000_010_000i64, "data": {"checkout": {"token": "tok-1"}}},
            {"name": "alert_displayed", "ts_ms": 1_800_000_011_000i64,
             "data": {"alert": {"type": "PAYMENT_ERROR", "message": "Card 4242 was declined", "target": "x"}}},
            {"name": "alert_displayed", "ts_ms": 1_800_000_012_000i64,
             "data": {"alert": {"type": "INPUT_INVALID", "message": "Enter a valid zip", "value": "SW1A"}}},
            {"name": "checkout_completed", "ts_ms": 1_800_000_020_000i64, "data": {"checkout": {"token": "tok-1"}}},
        ]
    });
    let sent = run_pixel(&scenario);
    assert!(!sent.is_empty());
    let mut kinds = Vec::new();
    for call in &sent {
        assert_eq!(call["url"], "https://collect.example/collect");
        assert_eq!((call["method"].as_str(), call["keepalive"].as_bool()), (Some("POST"), Some(true)));
        let body = call["body"].as_str().unwrap();
        for personal in ["someone", "5550100", "4242", "declined", "zip", "SW1A", "?x=1"] {
            assert!(!body.contains(personal), "{personal} sent: {body}");
        }
        let batch = parse_batch(body.as_bytes(), 50).expect("a valid collect batch");
        assert_eq!(batch.site_key, Some("gt_abcdefghij"));
        assert!(batch.consent);
        for raw in batch.events {
            let event = parse_event(raw).expect("a valid event");
            match &event.body {
                EventBody::CheckoutStarted(s)
                | EventBody::PaymentInfoSubmitted(s)
                | EventBody::CheckoutCompleted(s) => {
                    assert_eq!(s.ck.as_deref(), Some("tok-1"))
                }
                EventBody::AlertDisplayed(a) => {
                    assert_eq!((a.at.as_str(), a.ck.as_deref()), ("PAYMENT_ERROR", Some("tok-1")))
                }
                other => panic!("unexpected {other:?}"),
            }
            kinds.push((event.body.kind(), event.ts));
        }
    }
    assert_eq!(
        kinds,
        [("co", 1_800_000_000_000), ("pi", 1_800_000_010_000), ("al", 1_800_000_011_000), ("cc", 1_800_000_020_000)]
    );

    // Without its settings (not activated yet) the pixel sends nothing.
    let mut unset = scenario.clone();
    unset["settings"] = serde_json::json!({});
    assert!(run_pixel(&unset).is_empty());
}
