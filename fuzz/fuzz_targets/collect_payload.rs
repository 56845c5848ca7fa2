//! The `/collect` body: envelope, then every event on its own, then what the pipeline does to a
//! kept event (security-only stripping, the stored props). Nothing may panic.
#![no_main]

use ghosttrack::ingest::payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = payload::parse_batch(data, 50) else { return };
    assert!(!batch.events.is_empty() && batch.events.len() <= 50);
    for raw in &batch.events {
        let Ok(mut event) = payload::parse_event(raw) else { continue };
        let _ = event.body.kind();
        if let Some(props) = event.body.props_json() {
            // What is stored must be JSON again.
            serde_json::from_str::<serde_json::Value>(&props).expect("props are JSON");
        }
        if event.body.needs_consent() {
            continue;
        }
        event.body.strip_for_security_only();
        let _ = event.body.props_json();
    }
});
