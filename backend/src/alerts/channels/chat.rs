//! Slack and Discord incoming webhooks, each in its own JSON format.

use serde_json::{Value, json};

use super::Envelope;

/// Discord embed colours: red for BLOCK-level and card testing, amber otherwise.
const RED: u32 = 0xD9_3025;
const AMBER: u32 = 0xE8_A317;

fn text_lines(env: &Envelope<'_>) -> Vec<String> {
    let a = env.alert;
    let mut lines = vec![a.summary.clone()];
    if let Some(subject) = &a.subject {
        lines.push(format!("Subject: {subject}"));
    }
    lines.extend(a.details.iter().map(|d| format!("• {d}")));
    if a.suppressed > 0 {
        lines.push(format!("({} similar alerts were suppressed by the cooldown since the last one.)", a.suppressed));
    }
    lines
}

/// Slack: `text` (the notification fallback) plus blocks (header, section, context link).
pub fn slack_body(env: &Envelope<'_>) -> Value {
    let a = env.alert;
    let title = format!("{} — {}", a.title, env.site);
    json!({
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&slack_escape(&text_lines(env).join("\n")), 3000)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("<{}|Open in GhostTrack>", env.link)}
            ]}
        ]
    })
}

/// Discord: `content` plus one embed; mentions disabled.
pub fn discord_body(env: &Envelope<'_>) -> Value {
    let a = env.alert;
    let red = a.decision.as_deref() == Some("BLOCK") || a.kind == super::super::AlertKind::CardTesting;
    let timestamp = chrono::DateTime::from_timestamp_millis(a.at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    json!({
        "content": truncate(&format!("GhostTrack alert for {}: {}", env.site, a.title), 2000),
        "embeds": [{
            "title": truncate(&a.title, 256),
            "description": truncate(&text_lines(env).join("\n"), 4096),
            "url": env.link,
            "color": if red { RED } else { AMBER },
            "timestamp": timestamp,
            "footer": {"text": format!("alert {}", env.alert_id)}
        }],
        "allowed_mentions": {"parse": []}
    })
}

/// Slack mrkdwn control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Alert, AlertKind};

    fn alert() -> Alert {
        Alert {
            kind: AlertKind::CardTesting,
            title: "Card testing detected (BLOCK, score 86)".into(),
            summary: "12 failed payments from 203.0.113.0/24 in 10 min.".into(),
            details: vec!["card/ct1-ip-failures-block: 12 failed payments".into()],
            subject: Some("session 42".into()),
            link_path: "/app/sessions/42".into(),
            decision: Some("BLOCK".into()),
            score: Some(86),
            at: 1_768_176_000_000,
            suppressed: 2,
        }
    }

    fn env(a: &Alert) -> Envelope<'_> {
        Envelope {
            alert: a,
            alert_id: "abc",
            idempotency_key: "gt-abc-1",
            site: "shop.example",
            link: "https://gt.example/app/sessions/42".into(),
            unsubscribe: None,
        }
    }

    #[test]
    fn slack_gets_text_and_blocks_with_the_panel_link() {
        let a = alert();
        let body = slack_body(&env(&a));
        assert_eq!(body["text"], "Card testing detected (BLOCK, score 86) — shop.example");
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(body["blocks"][2]["elements"][0]["text"], "<https://gt.example/app/sessions/42|Open in GhostTrack>");
        let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.contains("Subject: session 42") && section.contains("2 similar alerts"), "{section}");
    }

    #[test]
    fn discord_gets_content_and_one_embed_without_mentions() {
        let a = alert();
        let body = discord_body(&env(&a));
        assert_eq!(body["content"], "GhostTrack alert for shop.example: Card testing detected (BLOCK, score 86)");
        assert_eq!(body["embeds"][0]["url"], "https://gt.example/app/sessions/42");
        assert_eq!(body["embeds"][0]["color"], RED);
        assert_eq!(body["embeds"][0]["timestamp"], "2026-01-12T00:00:00Z");
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    }
}
