//! Billing: plans and entitlements (one `entitlements(tenant)` every feature asks), Shopify's
//! Billing API for shops, Stripe for standalone sites, and session quotas. See docs/BILLING.md.

pub mod entitlements;
pub mod plans;
pub mod quota;
pub mod settings;
pub mod shopify;
pub mod stripe;

pub use entitlements::{Denied, Entitlements, entitlements, require};
pub use plans::{Feature, Plan};

use crate::storage::StorageError;

/// Errors of the billing layer; the API maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The plan cannot be subscribed to (free, or already the current plan).
    #[error("{0}")]
    InvalidPlan(String),
    /// The provider refused the request (Shopify userErrors, Stripe error); the message is theirs.
    #[error("{provider} refused the request: {message}")]
    Refused { provider: &'static str, message: String },
    /// The provider could not be reached or answered something unexpected.
    #[error("{provider} is unavailable: {message}")]
    Provider { provider: &'static str, message: String },
    /// The provider is not configured on this server.
    #[error("{0} billing is not configured on this server")]
    NotConfigured(&'static str),
    /// Nothing to act on (no subscription to cancel, no customer for the portal).
    #[error("{0}")]
    NothingToDo(String),
}
