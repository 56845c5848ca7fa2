//! Writing GhostTrack's verdict onto an order with `orderRiskAssessmentCreate` (spec
//! shopify-storefront §4.7): it shows natively on the order page in Shopify admin.
//!
//! Shopify's limits are enforced before the call so a verdict with many reasons still writes:
//! at most [`MAX_FACTS`] facts, each description at most [`MAX_FACT_CHARS`] characters (cut on a
//! character boundary with an ellipsis). An order that is already fulfilled no longer accepts
//! assessments (`ORDER_ALREADY_FULFILLED`): that is an expected outcome, not an error.

use serde::Deserialize;

use super::Shopify;
use super::admin::AdminError;
use super::pixel::UserError;
use super::shop_domain::ShopDomain;
use crate::detect::{Decision, Verdict};

/// `facts` is required and holds at most 20 entries.
pub const MAX_FACTS: usize = 20;
/// Shopify truncates longer descriptions; we cut first so the text stays readable.
pub const MAX_FACT_CHARS: usize = 256;

const CREATE: &str = "mutation OrderRiskAssessmentCreate($input: OrderRiskAssessmentCreateInput!) { orderRiskAssessmentCreate(orderRiskAssessmentInput: $input) { userErrors { field message code } orderRiskAssessment { riskLevel facts { description sentiment } } } }";

/// `RiskAssessmentResult` values GhostTrack writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLevel {
    High,
    Medium,
    Low,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::High => "HIGH",
            RiskLevel::Medium => "MEDIUM",
            RiskLevel::Low => "LOW",
        }
    }

    /// BLOCK is HIGH, CHALLENGE is MEDIUM; ALLOW writes nothing (no assessment is not "LOW").
    pub fn of(decision: Decision) -> Option<RiskLevel> {
        match decision {
            Decision::Block => Some(RiskLevel::High),
            Decision::Challenge => Some(RiskLevel::Medium),
            Decision::Allow => None,
        }
    }
}

/// One `OrderRiskAssessmentFactInput`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub description: String,
    /// `NEGATIVE` raises the risk.
    pub sentiment: &'static str,
}

/// The assessment of a verdict: its level and one negative fact per reason, within Shopify's limits.
pub fn assessment(verdict: &Verdict) -> Option<(RiskLevel, Vec<Fact>)> {
    let level = RiskLevel::of(verdict.decision)?;
    let mut facts: Vec<Fact> = verdict
        .reasons
        .iter()
        .filter(|r| !r.shadow)
        .map(|r| Fact { description: clip(&format!("GhostTrack: {}", r.sentence)), sentiment: "NEGATIVE" })
        .take(MAX_FACTS)
        .collect();
    if facts.is_empty() {
        facts
            .push(Fact { description: format!("GhostTrack risk score {}/100.", verdict.score), sentiment: "NEGATIVE" });
    }
    Some((level, facts))
}

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_FACT_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_FACT_CHARS - 1).collect();
    out.push('…');
    out
}

/// What Shopify did with the assessment.
#[derive(Debug, Clone, PartialEq)]
pub enum RiskOutcome {
    Written,
    /// The order is fulfilled; Shopify accepts no new assessments.
    AlreadyFulfilled,
    /// The order does not exist (deleted, or not this shop's).
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("orderRiskAssessmentCreate refused: {0}")]
    Refused(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    user_errors: Vec<UserError>,
}

impl Shopify {
    /// `orderRiskAssessmentCreate` for `order_id` (the REST id of the webhook).
    pub async fn order_risk_assessment_create(
        &self,
        shop: &ShopDomain,
        order_id: u64,
        level: RiskLevel,
        facts: &[Fact],
    ) -> Result<RiskOutcome, RiskError> {
        let facts: Vec<serde_json::Value> = facts
            .iter()
            .take(MAX_FACTS)
            .map(|f| serde_json::json!({ "description": clip(&f.description), "sentiment": f.sentiment }))
            .collect();
        let input = serde_json::json!({
            "input": {
                "orderId": format!("gid://shopify/Order/{order_id}"),
                "riskLevel": level.as_str(),
                "facts": facts,
            }
        });
        let data = self.graphql(shop, CREATE, input).await?;
        let payload: Payload = serde_json::from_value(data["orderRiskAssessmentCreate"].clone())
            .map_err(|e| RiskError::Refused(format!("unexpected response: {e}")))?;
        match payload.user_errors.first() {
            None => Ok(RiskOutcome::Written),
            Some(e) if e.code.as_deref() == Some("ORDER_ALREADY_FULFILLED") => Ok(RiskOutcome::AlreadyFulfilled),
            Some(e) if e.code.as_deref() == Some("NOT_FOUND") => Ok(RiskOutcome::NotFound),
            Some(e) => Err(RiskError::Refused(format!("{}: {}", e.code.as_deref().unwrap_or("?"), e.message))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::score::Reason;

    fn verdict(decision: Decision, reasons: usize, len: usize) -> Verdict {
        Verdict {
            subject: "session:1".into(),
            decision,
            score: 80,
            reasons: (0..reasons)
                .map(|i| Reason { rule: format!("r{i}"), sentence: "x".repeat(len), shadow: false })
                .collect(),
            ttl: 60,
            evidence: Vec::new(),
            labels: Vec::new(),
            at: 0,
        }
    }

    #[test]
    fn block_is_high_challenge_medium_and_allow_writes_nothing() {
        assert_eq!(assessment(&verdict(Decision::Block, 1, 10)).unwrap().0, RiskLevel::High);
        assert_eq!(assessment(&verdict(Decision::Challenge, 1, 10)).unwrap().0, RiskLevel::Medium);
        assert!(assessment(&verdict(Decision::Allow, 1, 10)).is_none());
    }

    #[test]
    fn facts_stay_within_shopifys_twenty_facts_of_256_characters() {
        let (_, facts) = assessment(&verdict(Decision::Block, 30, 400)).unwrap();
        assert_eq!(facts.len(), MAX_FACTS);
        assert!(facts.iter().all(|f| f.description.chars().count() == MAX_FACT_CHARS && f.sentiment == "NEGATIVE"));
        assert!(facts[0].description.ends_with('…'));
        // Multi-byte text is cut on a character boundary.
        assert_eq!(clip(&"é".repeat(300)).chars().count(), MAX_FACT_CHARS);
    }

    #[test]
    fn shadow_reasons_are_not_written_and_a_verdict_without_reasons_states_its_score() {
        let mut v = verdict(Decision::Challenge, 1, 10);
        v.reasons[0].shadow = true;
        let (_, facts) = assessment(&v).unwrap();
        assert_eq!(facts, vec![Fact { description: "GhostTrack risk score 80/100.".into(), sentiment: "NEGATIVE" }]);
    }
}
