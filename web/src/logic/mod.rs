//! Page logic as plain structs and functions, tested natively (`cargo test -p ghosttrack-web`):
//! the components only render what these compute.

pub mod alerts;
pub mod billing;
pub mod chart;
pub mod filters;
pub mod format;
pub mod heatmap;
pub mod privacy;
pub mod replay;
pub mod rules;
pub mod world;
