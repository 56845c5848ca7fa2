//! Bodies of the Privacy page: the tenant's mode, retention as it applies, and the audit of
//! privacy actions. A visitor's export is the JSON document of `ghosttrack privacy export`.

use serde::{Deserialize, Serialize};

wire! {
    /// How long raw data is kept for this site, and where each number comes from.
    pub struct RetentionView {
        /// Raw events are deleted after this many days (by the mode: `privacy.retention_days`, or
        /// `privacy.forensic_retention_days` in forensic mode; server settings).
        pub raw_event_days: u32,
        /// Balanced mode: pointer paths of sessions no verdict flagged are deleted after this many hours.
        pub unflagged_pointer_path_hours: Option<u32>,
        /// Balanced mode: pointer paths of flagged sessions are kept this many days.
        pub flagged_pointer_path_days: Option<u32>,
        /// Strict mode stores no pointer paths at all.
        pub pointer_paths_stored: bool,
        /// The plan's retention in days, when plans are enforced on this server (`billing.enabled`).
        pub plan_retention_days: Option<u32>,
        /// The plan's name (`free`, `pro`, `business`) when plans are enforced.
        pub plan: Option<String>,
    }
}

wire! {
    /// One privacy action of a panel user.
    pub struct AuditEntry {
        pub at: i64,
        /// `user:<id>` or `shopify-user:<id>`.
        pub actor: String,
        /// `privacy_mode`, `payload_encryption`, `visitor_export` or `visitor_delete`.
        pub action: String,
        /// Ids and counts (JSON text).
        pub detail: String,
    }
}

wire! {
    /// The Privacy page.
    pub struct PrivacyView {
        /// `strict`, `balanced` or `forensic`.
        pub mode: String,
        pub retention: RetentionView,
        /// Whether the signed-in user may change the mode and export or delete visitors (owners).
        pub can_manage: bool,
        /// The newest privacy actions, newest first.
        pub audit: Vec<AuditEntry>,
        /// Whether new event payloads are encrypted at rest with the site's data key
        /// (docs/PRIVACY.md, "Encryption at rest").
        pub encrypted_at_rest: bool,
        /// Whether this server can turn encryption on: it has `GHOSTTRACK_SECRET_KEY`. Without
        /// it, `PUT /api/panel/privacy/encryption` answers `400 no_secret_key`.
        pub encryption_available: bool,
    }
}

wire! {
    /// Turn encryption of event payloads at rest on or off.
    pub struct EncryptionChange {
        pub enabled: bool,
    }
}

wire! {
    /// A new privacy mode.
    pub struct PrivacyModeChange {
        /// `strict`, `balanced` or `forensic`.
        pub mode: String,
    }
}

wire! {
    /// What deleting a visitor removed.
    pub struct VisitorDeleted {
        pub visitor_id: i64,
        pub events: u64,
        pub sessions: u64,
        pub visitors: u64,
        pub threats: u64,
    }
}
