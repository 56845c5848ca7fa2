//! Golden scenarios: each folder under `tests/scenarios/` holds an `events.jsonl` (first line:
//! what it shows) and the insta snapshot of the verdict changes a replay prints. Replaying twice
//! must print byte-identical output.

use std::path::Path;
use std::sync::Arc;

use ghosttrack::detect::RuleSet;
use ghosttrack::detect::replay::{VerdictLine, replay};

fn scenarios() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

fn run(rules: &Arc<RuleSet>, dir: &Path) -> (Vec<VerdictLine>, String) {
    let file = std::fs::File::open(dir.join("events.jsonl")).unwrap();
    let outcome = replay(rules.clone(), std::io::BufReader::new(file));
    assert!(outcome.errors.is_empty(), "{}: {:?}", dir.display(), outcome.errors);
    let lines: Vec<VerdictLine> = outcome.verdicts.iter().map(VerdictLine::from).collect();
    let printed = lines.iter().map(|l| serde_json::to_string(l).unwrap()).collect::<Vec<_>>().join("\n");
    (lines, printed)
}

#[test]
fn golden_scenarios_match_their_snapshots() {
    let rules = Arc::new(RuleSet::embedded().unwrap());
    let dirs = scenarios();
    assert!(dirs.len() >= 8, "scenario folders missing");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (lines, _) = run(&rules, &dir);
        insta::with_settings!({ snapshot_path => dir.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, lines);
        });
    }
}

#[test]
fn replaying_the_same_input_twice_gives_identical_output() {
    let rules = Arc::new(RuleSet::embedded().unwrap());
    for dir in scenarios() {
        assert_eq!(run(&rules, &dir).1, run(&rules, &dir).1, "{}", dir.display());
    }
}

#[test]
fn expected_decisions_per_scenario() {
    let rules = Arc::new(RuleSet::embedded().unwrap());
    let last = |name: &str| -> Option<String> {
        let (lines, _) = run(&rules, &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(name));
        lines.last().map(|l| l.decision.to_owned())
    };
    // Humans and normal retries never get a verdict change.
    assert_eq!(last("human-buyer"), None);
    assert_eq!(last("card-retry-then-success"), None);
    assert_eq!(last("naive-headless").as_deref(), Some("BLOCK"));
    assert_eq!(last("stealth-headless").as_deref(), Some("BLOCK"));
    assert_eq!(last("scanner-probe").as_deref(), Some("BLOCK"));
    assert_eq!(last("declared-crawler").as_deref(), Some("ALLOW"));
    assert_eq!(last("inventory-probe").as_deref(), Some("CHALLENGE"));
    // Card testing is flagged within 5 attempts.
    let (lines, _) = run(&rules, &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/card-testing-burst"));
    let first_flag = lines.iter().find(|l| l.reasons.iter().any(|r| r.rule.starts_with("card/ct1"))).unwrap();
    assert!(first_flag.client_key.as_str() <= "session:404", "flagged at {}", first_flag.client_key);
}
