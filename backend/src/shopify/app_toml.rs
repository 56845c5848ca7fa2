//! `shopify.app.toml` as the backend reads it: the paths Shopify will call, checked against
//! the route table by a test, and validated against the CLI's schema rules (spec
//! shopify-auth §4.1) so a broken file fails CI instead of `shopify app deploy`.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct AppToml {
    pub name: String,
    pub client_id: String,
    pub application_url: String,
    pub embedded: bool,
    #[serde(default)]
    pub handle: Option<String>,
    pub access_scopes: AccessScopes,
    pub auth: Auth,
    pub webhooks: Webhooks,
    pub app_proxy: AppProxy,
}

#[derive(Debug, Deserialize)]
pub struct AccessScopes {
    pub scopes: String,
    #[serde(default)]
    pub use_legacy_install_flow: bool,
}

#[derive(Debug, Deserialize)]
pub struct Auth {
    pub redirect_urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Webhooks {
    pub api_version: String,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Deserialize)]
pub struct Subscription {
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub compliance_topics: Vec<String>,
    pub uri: String,
}

#[derive(Debug, Deserialize)]
pub struct AppProxy {
    pub url: String,
    pub subpath: String,
    pub prefix: String,
}

impl AppToml {
    pub fn parse(text: &str) -> Result<Self, String> {
        let app: AppToml = toml::from_str(text).map_err(|e| e.to_string())?;
        app.validate()?;
        Ok(app)
    }

    /// The CLI's rules (zod schemas in `Shopify/cli`, spec §4.1).
    fn validate(&self) -> Result<(), String> {
        let fail = |m: &str| Err(m.to_owned());
        if self.name.is_empty() || self.name.chars().count() > 30 {
            return fail("name is required and at most 30 characters");
        }
        if self.client_id.is_empty() {
            return fail("client_id is required");
        }
        if url::Url::parse(&self.application_url).is_err() {
            return fail("application_url must be a URL");
        }
        if let Some(handle) = &self.handle {
            let ok = !handle.is_empty()
                && handle.len() <= 256
                && !handle.starts_with('-')
                && !handle.ends_with('-')
                && handle.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !ok {
                return fail("handle must be lowercase letters, digits, - and _, not starting or ending with -");
            }
        }
        if self.auth.redirect_urls.is_empty() || self.auth.redirect_urls.iter().any(|u| url::Url::parse(u).is_err()) {
            return fail("[auth] redirect_urls must be a non-empty list of URLs");
        }
        let v = &self.webhooks.api_version;
        let version_ok = v.len() == 7
            && v[..4].parse::<u32>().is_ok()
            && v.as_bytes()[4] == b'-'
            && ["01", "04", "07", "10"].contains(&&v[5..]);
        if !version_ok || v.as_str() < "2026-07" {
            return fail("[webhooks] api_version must be a quarterly version, 2026-07 or later");
        }
        let mut compliance_seen = Vec::new();
        let mut pairs = Vec::new();
        for s in &self.webhooks.subscriptions {
            if s.topics.is_empty() && s.compliance_topics.is_empty() {
                return fail("each subscription needs topics or compliance_topics");
            }
            if !(s.uri.starts_with('/') || s.uri.starts_with("https://") || s.uri.starts_with("pubsub://")) {
                return fail("subscription uri must start with /, https:// or pubsub://");
            }
            for t in &s.compliance_topics {
                if !["customers/redact", "customers/data_request", "shop/redact"].contains(&t.as_str()) {
                    return Err(format!("unknown compliance topic {t}"));
                }
                if compliance_seen.contains(t) {
                    return Err(format!("compliance topic {t} appears in more than one subscription"));
                }
                compliance_seen.push(t.clone());
            }
            for t in &s.topics {
                let pair = (t.clone(), s.uri.trim_end_matches('/').to_owned());
                if pairs.contains(&pair) {
                    return Err(format!("duplicate subscription {t} → {}", s.uri));
                }
                pairs.push(pair);
            }
        }
        let p = &self.app_proxy;
        let subpath_ok = !p.subpath.is_empty()
            && p.subpath.len() <= 30
            && p.subpath.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !["admin", "services", "password", "login"].contains(&p.subpath.as_str());
        if !subpath_ok {
            return fail(
                "[app_proxy] subpath: letters, digits, _ and -, at most 30, not admin|services|password|login",
            );
        }
        if !["a", "apps", "community", "tools"].contains(&p.prefix.as_str()) {
            return fail("[app_proxy] prefix must be one of a, apps, community, tools");
        }
        Ok(())
    }

    /// The path part of a subscription or proxy URL (relative ones are prefixed with the
    /// application URL's origin by the CLI).
    pub fn path_of(&self, uri: &str) -> String {
        if uri.starts_with('/') {
            return uri.trim_end_matches('/').to_owned();
        }
        url::Url::parse(uri).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default()
    }

    /// The subscription URI that receives `topic`.
    pub fn uri_for_topic(&self, topic: &str) -> Option<String> {
        self.webhooks
            .subscriptions
            .iter()
            .find(|s| s.topics.iter().chain(&s.compliance_topics).any(|t| t == topic))
            .map(|s| self.path_of(&s.uri))
    }

    pub fn scopes(&self) -> Vec<&str> {
        self.access_scopes.scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_toml() -> AppToml {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shopify.app.toml");
        AppToml::parse(&std::fs::read_to_string(path).expect("shopify.app.toml at the repo root")).unwrap()
    }

    #[test]
    fn the_repository_app_toml_is_valid_and_routes_agree_with_the_backend() {
        let app = repo_toml();
        assert!(app.embedded);
        assert!(!app.access_scopes.use_legacy_install_flow, "Shopify-managed install");
        assert_eq!(app.webhooks.api_version, super::super::API_VERSION);
        for topic in [
            "orders/create",
            "orders/paid",
            "order_transactions/create",
            "checkouts/create",
            "checkouts/update",
            "carts/create",
            "carts/update",
            "app/uninstalled",
            "app/scopes_update",
            "app_subscriptions/update",
        ] {
            assert_eq!(app.uri_for_topic(topic).as_deref(), Some(crate::api::WEBHOOKS_PATH), "{topic}");
        }
        for topic in super::super::webhooks::COMPLIANCE_TOPICS {
            assert_eq!(app.uri_for_topic(topic).as_deref(), Some(crate::api::COMPLIANCE_WEBHOOKS_PATH), "{topic}");
        }
        assert_eq!(app.path_of(&app.app_proxy.url), crate::api::APP_PROXY_PATH);
        assert_eq!(app.path_of(&app.application_url), crate::api::APP_HOME_PATH);
        for url in &app.auth.redirect_urls {
            assert_eq!(app.path_of(url), crate::api::AUTH_CALLBACK_PATH);
        }
        // Minimal scopes (README "Shopify scopes" justifies each).
        assert_eq!(
            app.scopes(),
            ["write_orders", "write_pixels", "read_customer_events", "read_themes", "write_app_proxy"]
        );
    }

    #[test]
    fn cli_schema_violations_are_caught() {
        let good =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shopify.app.toml"))
                .unwrap();
        for (from, to) in [
            (r#"name = "GhostTrack""#, r#"name = "GhostTrack, with a name far too long for Shopify""#),
            (r#"api_version = "2026-10""#, r#"api_version = "2025-10""#),
            (r#"subpath = "ghosttrack""#, r#"subpath = "admin""#),
            (r#"prefix = "apps""#, r#"prefix = "store""#),
            (r#"uri = "/webhooks/compliance""#, r#"uri = "webhooks/compliance""#),
            (r#""shop/redact"]"#, r#""shop/redact", "shop/redact"]"#),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{from}");
            assert!(AppToml::parse(&bad).is_err(), "{to} should be rejected");
        }
    }
}
