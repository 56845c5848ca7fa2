//! Tenant rule settings made in the panel (enable, shadow mode, threshold and window per rule),
//! stored per site (`storage::rule_settings`) and applied to the running engine: at once on the
//! node that saved them, and by [`run_sync`] on every node (rows newer than its last read).
//! A change is validated by compiling the tenant's rules with it (`Engine::set_policy`), so the
//! bounds are the rule loader's; errors name the field (`threshold`, `window_secs`).
//!
//! The stored map replaces the `rules` of a tenant's `detect.policies_dir` file; bands and
//! allowlists still come from the file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use super::rules::{MAX_THRESHOLD, MAX_WINDOW_SECS, RuleError};
use super::score::RuleOverride;
use super::service::Detector;
use crate::domain::{SiteId, UnixMillis};
use crate::storage::{StorageError, TenantScope, rule_settings as store};

/// How often each node re-reads changed settings.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// One rule as a tenant runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleView {
    pub id: String,
    pub description: String,
    pub enabled: bool,
    pub shadow: bool,
    pub threshold: Option<u32>,
    pub window_secs: Option<u64>,
    /// The rule's own threshold and window (`None`: not tunable).
    pub default_threshold: Option<u32>,
    pub default_window_secs: Option<u64>,
}

/// Bounds of an override (the rule loader's).
pub const THRESHOLD_BOUNDS: (u32, u32) = (1, MAX_THRESHOLD);
pub const WINDOW_BOUNDS: (u64, u64) = (1, MAX_WINDOW_SECS);

/// A tenant's wish for one rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub rule: String,
    pub enabled: bool,
    pub shadow: bool,
    pub threshold: Option<u32>,
    pub window_secs: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A field does not hold: `rule`, `threshold`, `window_secs`.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn invalid(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { field: field.into(), message: message.into() }
}

/// Every loaded rule with the tenant's settings.
pub fn views(detector: &Detector, site: SiteId) -> Vec<RuleView> {
    let policy = detector.policy(site);
    detector.with_rules(|set| {
        set.rules
            .iter()
            .map(|rule| {
                let o = policy.rules.get(rule.id.as_str()).cloned().unwrap_or_default();
                let (default_threshold, default_window_secs) = rule.spec.condition.tunables();
                RuleView {
                    id: rule.id.to_string(),
                    description: rule.description.clone(),
                    enabled: o.enabled.unwrap_or(rule.spec.enabled),
                    shadow: o.shadow,
                    threshold: o.threshold,
                    window_secs: o.window_secs,
                    default_threshold,
                    default_window_secs,
                }
            })
            .collect()
    })
}

/// The override that expresses `change` against the rule's defaults (`None` = no override).
fn override_of(change: &Change, default_enabled: bool) -> Option<RuleOverride> {
    let o = RuleOverride {
        enabled: (change.enabled != default_enabled).then_some(change.enabled),
        shadow: change.shadow,
        threshold: change.threshold,
        window_secs: change.window_secs,
    };
    (o != RuleOverride::default()).then_some(o)
}

/// The field a compile error of an override is about.
fn field_of(e: &RuleError) -> String {
    match e.field.as_str() {
        "condition.threshold" | "condition.min_events" => "threshold".into(),
        "condition.window_secs" => "window_secs".into(),
        other => other.trim_start_matches("condition.").to_owned(),
    }
}

/// Validates and applies one change to the tenant's engine policy, then stores the tenant's
/// rule map. A storage failure puts the engine back as it was.
pub async fn change(
    detector: &Detector,
    db: &DatabaseConnection,
    scope: TenantScope,
    change: Change,
) -> Result<RuleView, SettingsError> {
    let site = scope.site_id();
    let Some((default_enabled, tunables)) =
        detector.with_rules(|set| set.get(&change.rule).map(|r| (r.spec.enabled, r.spec.condition.tunables())))
    else {
        return Err(invalid("rule", format!("`{}` is not a loaded rule", change.rule)));
    };
    if change.threshold.is_some() && tunables.0.is_none() {
        return Err(invalid("threshold", "this rule has no threshold to change"));
    }
    if change.window_secs.is_some() && tunables.1.is_none() {
        return Err(invalid("window_secs", "this rule has no window to change"));
    }
    let wanted = override_of(&change, default_enabled);
    let mut rules_after = BTreeMap::new();
    let before = detector
        .update_policy(site, |policy| {
            match &wanted {
                Some(o) => policy.rules.insert(change.rule.clone(), o.clone()),
                None => policy.rules.remove(&change.rule),
            };
            rules_after = policy.rules.clone();
        })
        .map_err(|errors| {
            let first = &errors[0];
            let field = field_of(first);
            let message = first.constraint.clone();
            invalid(&field, message)
        })?;
    let json = serde_json::to_string(&rules_after).unwrap_or_else(|_| "{}".into());
    if let Err(e) = store::save(db, scope, &json, UnixMillis::now()).await {
        let _ = detector.set_policy(site, before);
        return Err(SettingsError::Storage(e.into()));
    }
    Ok(views(detector, site).into_iter().find(|v| v.id == change.rule).expect("the rule is loaded"))
}

/// Applies stored settings changed at or after `since` that this node has not applied yet;
/// returns the newest `updated_at` read. A map that no longer compiles (a rule removed from the
/// rule set) is skipped with a warning; the tenant keeps what it had.
pub async fn sync(
    detector: &Detector,
    db: &DatabaseConnection,
    since: UnixMillis,
    applied: &mut HashMap<SiteId, UnixMillis>,
) -> Result<UnixMillis, StorageError> {
    let mut newest = since;
    for (site, json, updated_at) in store::changed_since(db, since).await? {
        newest = newest.max(updated_at);
        if applied.get(&site) == Some(&updated_at) {
            continue;
        }
        applied.insert(site, updated_at);
        let rules: BTreeMap<String, RuleOverride> = match serde_json::from_str(&json) {
            Ok(r) => r,
            Err(error) => {
                tracing::warn!(site = site.0, error = %error, "stored rule settings do not parse; skipped");
                continue;
            }
        };
        let loaded = detector.with_rules(|set| rules.keys().all(|id| set.get(id).is_some()));
        let rules: BTreeMap<_, _> = if loaded {
            rules
        } else {
            detector.with_rules(|set| rules.into_iter().filter(|(id, _)| set.get(id).is_some()).collect())
        };
        if let Err(errors) = detector.update_policy(site, |policy| policy.rules = rules) {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            tracing::warn!(site = site.0, errors = %list.join("; "), "stored rule settings do not compile; skipped");
        }
    }
    Ok(newest)
}

/// Keeps this node's engine in step with the stored settings until `stopped`.
pub async fn run_sync(detector: Arc<Detector>, db: DatabaseConnection, mut stopped: watch::Receiver<bool>) {
    let mut since = UnixMillis(0);
    let mut applied = HashMap::new();
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        match sync(&detector, &db, since, &mut applied).await {
            Ok(newest) => since = newest,
            Err(error) => tracing::warn!(error = %error, "could not read rule settings; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::{Body, DetectEvent};
    use crate::detect::score::Decision;
    use crate::storage::sites::{self, SiteKind};

    fn request(ts: i64, i: i64) -> DetectEvent {
        DetectEvent {
            ts,
            session: None,
            visitor: None,
            client_key: Some("203.0.113.5".into()),
            ip_prefix: None,
            device: None,
            asn: None,
            country: None,
            net_flags: 0,
            user_agent: Some("Mozilla/5.0".into()),
            cart_token: None,
            checkout_token: None,
            body: Body::Request { method: "GET".into(), path: format!("/p/{i}"), status: 200 },
        }
    }

    /// Decisions of `n` requests 50 ms apart from one client.
    fn decisions(d: &Detector, site: SiteId, t0: i64, n: i64) -> Vec<Decision> {
        (0..n).map(|i| d.evaluate(site, &request(t0 + i * 50, i)).decision).collect()
    }

    fn detector() -> Arc<Detector> {
        Detector::new(crate::detect::commands::load_rules(None).unwrap(), 10_000, None).unwrap().0
    }

    fn change(rule: &str, threshold: Option<u32>, window_secs: Option<u64>) -> Change {
        Change { rule: rule.into(), enabled: true, shadow: false, threshold, window_secs }
    }

    #[tokio::test]
    async fn a_threshold_override_changes_the_verdict_is_stored_and_reaches_another_node() {
        let db = crate::storage::connect(&crate::settings::DatabaseUrl::new("sqlite::memory:")).await.unwrap();
        crate::storage::migrate(&db).await.unwrap();
        let (site, _) = sites::create(&db, "a.example", SiteKind::Standalone).await.unwrap();
        let scope = TenantScope::verified(site.id);
        let node_a = detector();
        assert_eq!(decisions(&node_a, site.id, 1_000_000, 3), [Decision::Allow; 3], "default: 10 in 2 s");

        let view = change_rule(&node_a, &db, scope, change("rate/burst", Some(3), None)).await;
        assert_eq!((view.threshold, view.default_threshold), (Some(3), Some(10)));
        let after = decisions(&node_a, site.id, 2_000_000, 3);
        assert_eq!(after[2], Decision::Challenge, "{after:?}");
        // Another site keeps the rule's own threshold.
        let other = SiteId(site.id.0 + 1);
        assert_eq!(decisions(&node_a, other, 2_000_000, 3), [Decision::Allow; 3]);

        // A second node (or a restart) applies the stored settings.
        let node_b = detector();
        let mut applied = HashMap::new();
        let newest = sync(&node_b, &db, UnixMillis(0), &mut applied).await.unwrap();
        assert!(newest.0 > 0);
        assert_eq!(decisions(&node_b, site.id, 3_000_000, 3)[2], Decision::Challenge);
        assert_eq!(views(&node_b, site.id).into_iter().find(|v| v.id == "rate/burst").unwrap().threshold, Some(3));

        // Back to the rule's own values: no override is stored for it.
        change_rule(&node_a, &db, scope, change("rate/burst", None, None)).await;
        assert!(node_a.policy(site.id).rules.is_empty());
        assert_eq!(decisions(&node_a, site.id, 4_000_000, 3), [Decision::Allow; 3]);
    }

    async fn change_rule(d: &Detector, db: &DatabaseConnection, scope: TenantScope, c: Change) -> RuleView {
        super::change(d, db, scope, c).await.unwrap()
    }

    #[tokio::test]
    async fn out_of_bounds_or_untunable_overrides_name_the_field_and_change_nothing() {
        let db = crate::storage::connect(&crate::settings::DatabaseUrl::new("sqlite::memory:")).await.unwrap();
        crate::storage::migrate(&db).await.unwrap();
        let (site, _) = sites::create(&db, "a.example", SiteKind::Standalone).await.unwrap();
        let scope = TenantScope::verified(site.id);
        let d = detector();
        let cases = [
            (change("rate/burst", Some(0), None), "threshold"),
            (change("rate/burst", Some(MAX_THRESHOLD + 1), None), "threshold"),
            (change("rate/burst", None, Some(MAX_WINDOW_SECS + 1)), "window_secs"),
            (change("rate/nope", None, None), "rule"),
            (change("ua/automation-library", Some(2), None), "threshold"),
        ];
        for (c, field) in cases {
            match super::change(&d, &db, scope, c.clone()).await {
                Err(SettingsError::Invalid { field: f, .. }) => assert_eq!(f, field, "{c:?}"),
                other => panic!("{c:?}: {other:?}"),
            }
        }
        assert!(d.policy(site.id).rules.is_empty());
        assert_eq!(store::get(&db, scope).await.unwrap(), None);
    }

    #[test]
    fn disabling_or_shadowing_a_rule_is_an_override_and_the_default_is_none() {
        let on = Change { rule: "x".into(), enabled: true, shadow: false, threshold: None, window_secs: None };
        assert_eq!(override_of(&on, true), None);
        let off = Change { enabled: false, ..on.clone() };
        assert_eq!(override_of(&off, true).unwrap().enabled, Some(false));
        let shadow = Change { shadow: true, ..on };
        assert!(override_of(&shadow, true).unwrap().shadow);
    }
}
