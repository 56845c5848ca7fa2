//! Logs (to stderr, so command output on stdout stays machine-readable) and metrics. Logs carry a readable message plus dotted fields (`site.id`,
//! `duration_ms`) and never personal data: no IPs, user agents, URLs with queries or tokens.

pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber; `RUST_LOG` wins over the configured filter.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
