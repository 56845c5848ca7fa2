//! Encryption at rest and its keys (docs/PRIVACY.md, "Encryption at rest").
//!
//! - [`aead`]: the one AES-256-GCM seal/open everything else uses.
//! - [`master`]: the master key(s) derived from `GHOSTTRACK_SECRET_KEY` (and, during a change of
//!   secret, `GHOSTTRACK_SECRET_KEY_PREVIOUS`); they seal shop tokens and wrap data keys.
//! - [`events`]: per-tenant data keys and the `gtenc:v1` envelope of `events.props`.
//! - [`rotate`]: `ghosttrack keys status|rotate`.

pub mod aead;
pub mod events;
pub mod master;
pub mod rotate;

pub use events::{DataKey, EventKeys, KeyError};
pub use master::MasterKeys;
