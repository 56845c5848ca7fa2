//! The crawler-user-agents list (monperrus/crawler-user-agents, MIT; `backend/rules/data/`),
//! embedded so that rules can name its tags (`search-engine`, `seo`, `monitoring`, …).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

const LIST: &str = include_str!("../../rules/data/crawler-user-agents.json");

#[derive(Deserialize)]
struct Entry {
    pattern: String,
    #[serde(default)]
    tags: Vec<String>,
}

struct Parsed {
    entries: Vec<Entry>,
    tags: BTreeSet<String>,
}

fn parsed() -> &'static Parsed {
    static LIST_PARSED: OnceLock<Parsed> = OnceLock::new();
    LIST_PARSED.get_or_init(|| {
        let entries: Vec<Entry> = serde_json::from_str(LIST).expect("the embedded crawler list is valid JSON");
        let tags = entries.iter().flat_map(|e| e.tags.iter().cloned()).collect();
        Parsed { entries, tags }
    })
}

/// One regex matching every pattern that carries one of `tags`; `Err(tag)` names an unknown tag.
/// Patterns the `regex` crate cannot compile (look-around) are left out.
pub fn regex_for_tags(tags: &[String]) -> Result<Regex, String> {
    let list = parsed();
    if let Some(unknown) = tags.iter().find(|t| !list.tags.contains(*t)) {
        return Err(unknown.clone());
    }
    let patterns: Vec<&str> = list
        .entries
        .iter()
        .filter(|e| e.tags.iter().any(|t| tags.contains(t)))
        .map(|e| e.pattern.as_str())
        .filter(|p| regex_syntax_ok(p))
        .collect();
    let joined = patterns.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|");
    Ok(RegexBuilder::new(&joined).size_limit(64 << 20).build().expect("patterns were checked one by one"))
}

fn regex_syntax_ok(pattern: &str) -> bool {
    RegexBuilder::new(pattern).size_limit(1 << 20).build().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSERS: [&str; 4] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    ];

    #[test]
    fn crawler_tags_match_crawlers_and_not_browsers() {
        let re = regex_for_tags(&["search-engine".into(), "seo".into(), "ai-crawler".into()]).unwrap();
        assert!(re.is_match("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"));
        assert!(re.is_match("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"));
        assert!(re.is_match(
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
        ));
        for ua in BROWSERS {
            assert!(!re.is_match(ua), "{ua}");
        }
    }

    #[test]
    fn unknown_tags_are_named() {
        assert_eq!(regex_for_tags(&["search-engines".into()]).unwrap_err(), "search-engines");
    }
}
