//! `ghosttrack ingest-log`: one access-log line. Hostile lines are expected; nothing may panic.
#![no_main]

use ghosttrack::detect::accesslog::{LogFormat, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    for format in [LogFormat::Combined, LogFormat::Nginx] {
        if let Ok(event) = parse_line(&line, format) {
            assert!(event.client_key.is_some() && event.ip_prefix.is_some());
        }
    }
});
