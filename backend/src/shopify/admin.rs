//! Admin GraphQL client (spec shopify-auth §5): `X-Shopify-Access-Token`, the pinned
//! [`API_VERSION`](super::API_VERSION), and cost-aware throttling — a `THROTTLED` error (HTTP
//! 200) waits until the leaky bucket holds the requested cost again, computed from
//! `extensions.cost.throttleStatus`; an HTTP 429 or 503 waits `Retry-After` (default 1 s).

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;

use super::Shopify;
use super::shop_domain::ShopDomain;
use super::tokens::TokenError;

/// Attempts per operation (the first plus retries after throttling).
const MAX_ATTEMPTS: u32 = 4;
/// Never sleep longer than this for one throttle (a restore rate of 100 pts/s refills 1000 in 10 s).
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The access token was refused (revoked): the shop must be re-authorized.
    #[error("Shopify refused the access token (401)")]
    Unauthorized,
    #[error("still throttled after {MAX_ATTEMPTS} attempts")]
    Throttled,
    #[error("Admin API answered {status}")]
    Http { status: u16 },
    #[error("GraphQL errors: {0}")]
    GraphQl(String),
    #[error("cannot reach Shopify: {0}")]
    Transport(String),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    message: String,
    #[serde(default)]
    extensions: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub requested_query_cost: f64,
    pub throttle_status: ThrottleStatus,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

/// How long until the bucket holds `cost` again.
pub fn wait_for(cost: &Cost) -> Duration {
    let missing = (cost.requested_query_cost - cost.throttle_status.currently_available).max(0.0);
    let rate = cost.throttle_status.restore_rate.max(1.0);
    Duration::from_secs_f64((missing / rate).max(0.05)).min(MAX_WAIT)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, MAX_WAIT.as_secs_f64())))
        .unwrap_or(Duration::from_secs(1))
}

impl Shopify {
    /// Runs one GraphQL operation for a shop and returns `data`.
    pub async fn graphql(
        &self,
        shop: &ShopDomain,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<serde_json::Value, AdminError> {
        let url = format!("{}/admin/api/{}/graphql.json", self.config.shop_base(shop), super::API_VERSION);
        let body = serde_json::json!({ "query": query, "variables": variables });
        for _ in 0..MAX_ATTEMPTS {
            let token = self.tokens.access_token(shop).await?;
            let resp = self
                .tokens
                .http()
                .post(&url)
                .header("X-Shopify-Access-Token", token.expose_secret())
                .json(&body)
                .send()
                .await
                .map_err(|e| AdminError::Transport(e.without_url().to_string()))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(AdminError::Unauthorized);
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                let wait = retry_after(resp.headers());
                tracing::info!(shop = %shop, wait_ms = wait.as_millis() as u64, status = status.as_u16(), "Admin API asked us to wait");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(AdminError::Http { status: status.as_u16() });
            }
            let envelope: Envelope =
                resp.json().await.map_err(|e| AdminError::Transport(e.without_url().to_string()))?;
            let errors = envelope.errors.unwrap_or_default();
            let throttled = errors.iter().any(|e| {
                e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|c| c.as_str()) == Some("THROTTLED")
            });
            if throttled {
                let wait =
                    envelope.extensions.and_then(|x| x.cost).map(|c| wait_for(&c)).unwrap_or(Duration::from_secs(1));
                tracing::info!(shop = %shop, wait_ms = wait.as_millis() as u64, "Admin API throttled; waiting for the bucket");
                tokio::time::sleep(wait).await;
                continue;
            }
            return match envelope.data {
                Some(data) if errors.is_empty() => Ok(data),
                _ => Err(AdminError::GraphQl(errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "))),
            };
        }
        Err(AdminError::Throttled)
    }

    /// `shop { name plan { displayName partnerDevelopment } }`.
    pub async fn shop_info(&self, shop: &ShopDomain) -> Result<ShopInfo, AdminError> {
        let data = self
            .graphql(
                shop,
                "query ShopInfo { shop { name plan { displayName partnerDevelopment } } }",
                serde_json::json!({}),
            )
            .await?;
        serde_json::from_value(data["shop"].clone())
            .map_err(|e| AdminError::GraphQl(format!("unexpected shop shape: {e}")))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ShopInfo {
    pub name: String,
    pub plan: ShopPlan,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShopPlan {
    pub display_name: String,
    pub partner_development: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_waits_until_the_bucket_holds_the_requested_cost() {
        // The documented THROTTLED response: requested 752, 666 available, 50/s → 1.72 s.
        let cost: Cost = serde_json::from_str(
            r#"{"requestedQueryCost":752,"actualQueryCost":null,"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":666,"restoreRate":50.0}}"#,
        )
        .unwrap();
        assert_eq!(wait_for(&cost), Duration::from_secs_f64(1.72));
        let huge = Cost { requested_query_cost: 1e9, ..cost };
        assert_eq!(wait_for(&huge), MAX_WAIT);
    }

    #[test]
    fn retry_after_defaults_to_one_second() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(2));
    }
}
