//! The offline detection commands as a user runs them: `rules check`, `replay --json`,
//! `explain` and `ingest-log --json`.

use std::path::Path;
use std::process::Command;

fn ghosttrack() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ghosttrack"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    cmd
}

fn manifest(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

#[test]
fn rules_check_passes_on_the_shipped_rules_and_fails_naming_file_field_and_constraint() {
    let ok = ghosttrack().args(["rules", "check", &manifest("rules")]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // One rule per `.toml` file under backend/rules/<family>/.
    let shipped = std::fs::read_dir(manifest("rules"))
        .unwrap()
        .flat_map(|family| std::fs::read_dir(family.unwrap().path()).into_iter().flatten())
        .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "toml"))
        .count();
    assert!(shipped >= 36, "{shipped} rule files");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains(&format!("{shipped} rules OK")), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rate")).unwrap();
    let bad =
        std::fs::read_to_string(manifest("rules/rate/burst.toml")).unwrap().replace("threshold = 10", "threshold = 0");
    std::fs::write(dir.path().join("rate/burst.toml"), bad).unwrap();
    std::fs::write(dir.path().join("rate/burst.md"), "# x").unwrap();
    let out = ghosttrack().args(["rules", "check", dir.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rate/burst.toml: condition.threshold: must be between 1 and 1000"), "{err}");
}

#[test]
fn replay_json_prints_one_verdict_change_per_line_and_explain_gives_the_counts() {
    let events = manifest("tests/scenarios/scanner-probe/events.jsonl");
    let out = ghosttrack().args(["replay", "--site", "gt_abcdefghij", &events, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["client_key"], "client:203.0.113.77");
    assert_eq!(lines[1]["decision"], "BLOCK");

    let explain = ghosttrack().args(["explain", &events]).output().unwrap();
    let text = String::from_utf8(explain.stdout).unwrap();
    assert!(text.contains("rate/enumeration: 10 distinct paths answered 4xx"), "{text}");
    assert!(text.contains("ip_prefix:203.0.113.0/24 = 10 (threshold 10, window 10 s)"), "{text}");

    let bad_site = ghosttrack().args(["replay", "--site", "nope", &events]).output().unwrap();
    assert_eq!(bad_site.status.code(), Some(1));
}

#[test]
fn ingest_log_reads_a_combined_log_and_prints_the_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "198.51.100.4 - - [21/Nov/2026:03:55:0{i} +0000] \"GET /?id=1' HTTP/1.1\" 200 5 \"-\" \"sqlmap/1.8#stable\"\n"
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let out = ghosttrack().args(["ingest-log", "--format", "nginx", log.to_str().unwrap(), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["client_key"], "client:198.51.100.4");
    assert_eq!(first["decision"], "BLOCK");
    assert_eq!(first["reasons"][0]["rule"], "ua/scanner");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("next offset {}", text.len())), "{err}");
}
