//! Orders as the fake Shopify knows them: ids registered by the order webhooks it sends,
//! fulfilment, `orderRiskAssessmentCreate` with Shopify's input rules and user errors (spec
//! shopify-storefront §4.7), and the protected-customer-data switch that redacts webhook
//! payloads the way Shopify does for apps without approved access (§4.5).

use std::collections::{HashMap, HashSet};

/// An assessment as Shopify stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskAssessment {
    pub order_id: u64,
    pub risk_level: String,
    /// `(description, sentiment)`.
    pub facts: Vec<(String, String)>,
}

#[derive(Default)]
pub(crate) struct Orders {
    known: HashMap<String, HashSet<u64>>,
    fulfilled: HashMap<String, HashSet<u64>>,
    pub(crate) assessments: HashMap<String, Vec<RiskAssessment>>,
    /// Shops whose webhooks are redacted (no protected customer data access).
    pub(crate) redacted: HashSet<String>,
}

const RISK_LEVELS: &[&str] = &["HIGH", "MEDIUM", "LOW", "NONE", "PENDING"];
const SENTIMENTS: &[&str] = &["NEGATIVE", "NEUTRAL", "POSITIVE"];
const MAX_FACTS: usize = 20;
const MAX_FACT_CHARS: usize = 256;

impl Orders {
    /// Registers the order of an `orders/*` webhook body the fake sends.
    pub(crate) fn observe_webhook(&mut self, topic: &str, shop: &str, body: &[u8]) {
        if !topic.starts_with("orders/") {
            return;
        }
        if let Some(id) = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v["id"].as_u64()) {
            self.known.entry(shop.to_owned()).or_default().insert(id);
        }
    }

    pub(crate) fn fulfil(&mut self, shop: &str, order_id: u64) {
        self.fulfilled.entry(shop.to_owned()).or_default().insert(order_id);
    }

    /// `orderRiskAssessmentCreate(orderRiskAssessmentInput: $input)`: the mutation's payload.
    pub(crate) fn risk_assessment_create(&mut self, shop: &str, input: &serde_json::Value) -> serde_json::Value {
        let error = |code: &str, field: &[&str], message: &str| {
            serde_json::json!({ "orderRiskAssessmentCreate": {
                "userErrors": [{ "code": code, "field": field, "message": message }],
                "orderRiskAssessment": null } })
        };
        let Some(order_id) =
            input["orderId"].as_str().and_then(|g| g.strip_prefix("gid://shopify/Order/")).and_then(|n| n.parse().ok())
        else {
            return error("INVALID", &["orderRiskAssessmentInput", "orderId"], "Order id is invalid.");
        };
        let level = input["riskLevel"].as_str().unwrap_or("");
        if !RISK_LEVELS.contains(&level) {
            return error("INVALID", &["orderRiskAssessmentInput", "riskLevel"], "Risk level is invalid.");
        }
        let Some(facts) = input["facts"].as_array() else {
            return error("INVALID", &["orderRiskAssessmentInput", "facts"], "Facts are required.");
        };
        if facts.len() > MAX_FACTS {
            return error("TOO_MANY_FACTS", &["orderRiskAssessmentInput", "facts"], "Too many facts.");
        }
        let mut kept = Vec::new();
        for fact in facts {
            let (Some(description), Some(sentiment)) = (fact["description"].as_str(), fact["sentiment"].as_str())
            else {
                return error("INVALID", &["orderRiskAssessmentInput", "facts"], "Fact is invalid.");
            };
            if !SENTIMENTS.contains(&sentiment) {
                return error("INVALID", &["orderRiskAssessmentInput", "facts"], "Sentiment is invalid.");
            }
            // Shopify truncates long descriptions.
            kept.push((description.chars().take(MAX_FACT_CHARS).collect::<String>(), sentiment.to_owned()));
        }
        if !self.known.get(shop).is_some_and(|k| k.contains(&order_id)) {
            return error("NOT_FOUND", &["orderRiskAssessmentInput", "orderId"], "Order does not exist.");
        }
        if self.fulfilled.get(shop).is_some_and(|f| f.contains(&order_id)) {
            return error(
                "ORDER_ALREADY_FULFILLED",
                &["orderRiskAssessmentInput", "orderId"],
                "Risk assessments cannot be created for fulfilled orders.",
            );
        }
        let facts_json: Vec<serde_json::Value> =
            kept.iter().map(|(d, s)| serde_json::json!({ "description": d, "sentiment": s })).collect();
        self.assessments.entry(shop.to_owned()).or_default().push(RiskAssessment {
            order_id,
            risk_level: level.to_owned(),
            facts: kept,
        });
        serde_json::json!({ "orderRiskAssessmentCreate": { "userErrors": [],
            "orderRiskAssessment": { "riskLevel": level, "facts": facts_json } } })
    }
}

/// Protected customer data fields of order, checkout and transaction payloads, removed for apps
/// without approved access (name, email, phone, addresses, browser IP and client details).
const PROTECTED: &[&str] = &[
    "email",
    "contact_email",
    "phone",
    "browser_ip",
    "client_details",
    "billing_address",
    "shipping_address",
    "customer_locale",
];

/// The payload as an app without protected-customer-data access receives it: protected fields
/// are `null`, the customer keeps only its id.
pub fn redact_payload(body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else { return body.to_vec() };
    if let Some(obj) = v.as_object_mut() {
        for key in PROTECTED {
            if obj.contains_key(*key) {
                obj.insert((*key).to_owned(), serde_json::Value::Null);
            }
        }
        if let Some(customer) = obj.get_mut("customer").and_then(|c| c.as_object_mut()) {
            customer.retain(|k, _| k == "id" || k == "admin_graphql_api_id");
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}
