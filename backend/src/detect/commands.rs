//! The offline detection commands: `rules check`, `rules list`, `replay`, `explain` and
//! `ingest-log`. None needs a database: they run the same engine the server runs.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::accesslog::{self, LogFormat};
use super::engine::Engine;
use super::replay::{self, VerdictLine};
use super::rules::{RuleError, RuleSet};
use super::score::Policy;
use crate::domain::SiteId;

fn format_errors(errors: &[RuleError]) -> String {
    errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

/// The embedded rules, with `dir` (if any) overriding them.
pub fn load_rules(dir: Option<&Path>) -> anyhow::Result<Arc<RuleSet>> {
    RuleSet::load(dir).map(Arc::new).map_err(|e| anyhow::anyhow!("{} rule error(s):\n{}", e.len(), format_errors(&e)))
}

/// Reads a tenant policy (TOML, `detect::score::Policy`).
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    let policy: Policy = toml::from_str(&text).with_context(|| format!("invalid policy {}", path.display()))?;
    policy.validate().map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
    Ok(policy)
}

/// `ghosttrack rules check DIR`: validates every rule file under DIR; prints a summary.
pub fn rules_check(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    match RuleSet::load_dir(dir) {
        Ok(set) => {
            writeln!(out, "{} rules OK in {}", set.rules.len(), dir.display())?;
            Ok(())
        }
        Err(errors) => bail!("{} error(s) in {}:\n{}", errors.len(), dir.display(), format_errors(&errors)),
    }
}

/// `ghosttrack rules list`: id, key, weight and description of every loaded rule.
pub fn rules_list(rules: &RuleSet, out: &mut impl Write) -> anyhow::Result<()> {
    for r in &rules.rules {
        writeln!(out, "{:32} {:14} w={:.2} c={:.2}  {}", r.id, r.key.as_str(), r.weight, r.confidence, r.description)?;
    }
    Ok(())
}

fn engine_for(rules: Arc<RuleSet>, policy: Option<Policy>) -> anyhow::Result<Engine> {
    let mut engine = Engine::in_memory(rules, 2_000_000);
    if let Some(p) = policy {
        engine.set_policy(SiteId(1), p).map_err(|e| anyhow::anyhow!("policy:\n{}", format_errors(&e)))?;
    }
    Ok(engine)
}

/// `ghosttrack replay FILE [--json]`: verdict changes, one per line.
pub fn replay(
    rules: Arc<RuleSet>,
    policy: Option<Policy>,
    file: &Path,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let outcome = run(rules, policy, file)?;
    for v in &outcome.verdicts {
        if json {
            writeln!(out, "{}", serde_json::to_string(&VerdictLine::from(v))?)?;
        } else {
            let reasons: Vec<&str> = v.reasons.iter().map(|r| r.rule.as_str()).collect();
            writeln!(out, "{} {} {:>3} {}", v.at, v.decision.as_str(), v.score, reasons.join(","))?;
        }
    }
    for (line, error) in &outcome.errors {
        eprintln!("{}:{line}: {error}", file.display());
    }
    Ok(())
}

/// `ghosttrack explain FILE [--subject S]`: which rules fired and why, with the counts.
pub fn explain(
    rules: Arc<RuleSet>,
    policy: Option<Policy>,
    file: &Path,
    subject: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut outcome = run(rules, policy, file)?;
    if let Some(s) = subject {
        outcome.verdicts.retain(|v| v.subject == s);
    }
    write!(out, "{}", replay::explain(&outcome))?;
    Ok(())
}

fn run(rules: Arc<RuleSet>, policy: Option<Policy>, file: &Path) -> anyhow::Result<replay::ReplayOutcome> {
    let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    match policy {
        None => Ok(replay::replay(rules, BufReader::new(input))),
        Some(p) => {
            // The policy applies to the replay's single tenant.
            let mut engine = engine_for(rules, Some(p))?;
            Ok(replay::replay_with(&mut engine, BufReader::new(input)))
        }
    }
}

/// `ghosttrack ingest-log`: streams an access log from byte `offset`, prints one JSON line per
/// client key whose verdict changed, and returns the offset after the last complete line (to
/// resume from). Unparseable lines are counted, never fatal.
pub fn ingest_log(
    rules: Arc<RuleSet>,
    policy: Option<Policy>,
    format: LogFormat,
    file: &Path,
    offset: u64,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<IngestLogSummary> {
    let mut engine = engine_for(rules, policy)?;
    let mut input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    input.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(input);
    let mut summary = IngestLogSummary { next_offset: offset, ..Default::default() };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            // End of file, or a line still being written: resume here next time.
            break;
        }
        summary.next_offset += n as u64;
        let line = String::from_utf8_lossy(&buf);
        match accesslog::parse_line(&line, format) {
            Ok(event) => {
                summary.lines += 1;
                if let Some(v) = engine.observe(SiteId(1), &event).verdict {
                    summary.verdict_changes += 1;
                    if json {
                        writeln!(out, "{}", serde_json::to_string(&VerdictLine::from(&v))?)?;
                    } else {
                        writeln!(
                            out,
                            "{} {} {:>3} {}",
                            v.subject,
                            v.decision.as_str(),
                            v.score,
                            v.reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>().join(",")
                        )?;
                    }
                }
            }
            Err(_) => summary.skipped += 1,
        }
    }
    Ok(summary)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct IngestLogSummary {
    pub lines: u64,
    pub skipped: u64,
    pub verdict_changes: u64,
    pub next_offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Arc<RuleSet> {
        load_rules(None).unwrap()
    }

    #[test]
    fn rules_check_accepts_the_shipped_rules_and_names_broken_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
        let mut out = Vec::new();
        rules_check(Path::new(dir), &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("rules OK"));

        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("rate")).unwrap();
        std::fs::write(tmp.path().join("rate/x.toml"), "id = \"rate/x\"\n").unwrap();
        let error = rules_check(tmp.path(), &mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("rate/x.toml: (document): missing field `description`"), "{error}");
    }

    #[test]
    fn ingest_log_resumes_from_the_returned_offset_and_skips_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("access.log");
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!(
                "203.0.113.9 - - [21/Nov/2026:03:55:{i:02} +0000] \"GET /wp-{i}.php HTTP/1.1\" 404 0 \"-\" \"Mozilla/5.0\"\n"
            ));
        }
        text.push_str("garbage \u{0} line\n");
        text.push_str("203.0.113.9 - - [21/Nov/2026:03:56:00 +0000] \"GET / HTTP/1.1\" 200 0 \"-\" \"Mozi"); // partial
        std::fs::write(&log, &text).unwrap();
        let mut out = Vec::new();
        let summary = ingest_log(rules(), None, LogFormat::Combined, &log, 0, true, &mut out).unwrap();
        assert_eq!((summary.lines, summary.skipped), (12, 1));
        let printed = String::from_utf8(out).unwrap();
        let first: serde_json::Value = serde_json::from_str(printed.lines().next().unwrap()).unwrap();
        assert_eq!(first["client_key"], "client:203.0.113.9");
        assert_eq!(first["decision"], "CHALLENGE");
        assert_eq!(first["reasons"][0]["rule"], "rate/enumeration");
        // The partial last line is not consumed.
        assert_eq!(summary.next_offset as usize, text.rfind("203.0.113.9 - - [21/Nov/2026:03:56").unwrap());
        let again =
            ingest_log(rules(), None, LogFormat::Combined, &log, summary.next_offset, true, &mut Vec::new()).unwrap();
        assert_eq!((again.lines, again.next_offset), (0, summary.next_offset));
    }
}
