//! Replays a JSONL event file through a fresh engine: the `replay` and `explain` commands and
//! the golden scenario tests. Deterministic: the same input gives byte-identical output.

use std::io::BufRead;
use std::sync::Arc;

use serde::Serialize;

use super::engine::Engine;
use super::event::DetectEvent;
use super::rules::RuleSet;
use super::score::{Reason, Verdict};
use crate::domain::SiteId;

/// One verdict change, as printed by `ghosttrack replay --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictLine {
    /// The judged subject: `session:ID`, `client:KEY`, `ip:PREFIX`, `checkout:TOKEN`, …
    pub client_key: String,
    pub decision: &'static str,
    pub score: u8,
    pub reasons: Vec<Reason>,
    pub at: i64,
}

impl From<&Verdict> for VerdictLine {
    fn from(v: &Verdict) -> Self {
        VerdictLine {
            client_key: v.subject.clone(),
            decision: v.decision.as_str(),
            score: v.score,
            reasons: v.reasons.clone(),
            at: v.at,
        }
    }
}

/// Everything a replay produced.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    pub events: usize,
    /// Verdict changes in event order.
    pub verdicts: Vec<Verdict>,
    /// Lines that were not valid events: (line number, error).
    pub errors: Vec<(usize, String)>,
}

/// Most bytes of one input line; longer lines are reported, not parsed.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads events line by line (blank lines and `#` comments skipped) and feeds them in order.
pub fn replay(rules: Arc<RuleSet>, input: impl BufRead) -> ReplayOutcome {
    replay_with(&mut Engine::in_memory(rules, 1_000_000), input)
}

/// Like [`replay`], on a prepared engine (e.g. with a tenant policy for site 1).
pub fn replay_with(engine: &mut Engine, input: impl BufRead) -> ReplayOutcome {
    let mut out = ReplayOutcome::default();
    for (i, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.errors.push((i + 1, e.to_string()));
                break;
            }
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.len() > MAX_LINE_BYTES {
            out.errors.push((i + 1, format!("line longer than {MAX_LINE_BYTES} bytes")));
            continue;
        }
        match serde_json::from_str::<DetectEvent>(trimmed) {
            Ok(event) => {
                out.events += 1;
                if let Some(v) = engine.observe(SiteId(1), &event).verdict {
                    out.verdicts.push(v);
                }
            }
            Err(e) => out.errors.push((i + 1, e.to_string())),
        }
    }
    out
}

/// Human-readable explanation of a replay: per subject, the rules that fired and why.
pub fn explain(outcome: &ReplayOutcome) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let _ = writeln!(text, "{} events, {} verdict changes", outcome.events, outcome.verdicts.len());
    for v in &outcome.verdicts {
        let _ = writeln!(
            text,
            "\n{} → {} (score {}, ttl {} s) at {}",
            v.subject,
            v.decision.as_str(),
            v.score,
            v.ttl,
            v.at
        );
        for (reason, evidence) in v.reasons.iter().zip(&v.evidence) {
            let shadow = if reason.shadow { " [shadow]" } else { "" };
            let _ = writeln!(text, "  - {}{}: {}", reason.rule, shadow, reason.sentence);
            let _ = writeln!(
                text,
                "      {} = {} (threshold {}, window {} s), last event: {}",
                evidence.key, evidence.count, evidence.threshold, evidence.window_secs, evidence.sample
            );
        }
        for label in &v.labels {
            let _ = writeln!(text, "  label: {label}");
        }
    }
    for (line, error) in &outcome.errors {
        let _ = writeln!(text, "line {line}: {error}");
    }
    text
}
