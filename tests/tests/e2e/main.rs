//! End-to-end tests: one binary, the real server on port 0, real databases, a real browser.

mod accounts;
mod alerts;
mod billing;
mod billing_stripe;
mod browser;
mod collect;
mod demo;
mod detect;
mod encryption;
mod extension;
mod hardening;
mod infra;
mod migrations;
mod page_rollups;
mod panel;
mod panel_login;
mod panel_manage;
mod panel_maps;
mod pixel;
mod privacy;
mod rollups;
mod shopify;
mod stats;
mod storage_story;
mod threat_reads;
