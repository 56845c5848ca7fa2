//! GhostTrack: privacy-first security analytics for online stores.
//!
//! Start at `startup` (how the server is assembled), `api` (the route table) and `ingest`
//! (the collect pipeline). `docs/ARCHITECTURE.md` is the map.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod billing;
pub mod cli;
pub mod demo;
pub mod detect;
pub mod domain;
pub mod ingest;
pub mod keys;
pub mod panel;
pub mod privacy;
pub mod settings;
pub mod shopify;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tracker;
