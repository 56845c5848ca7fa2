//! A rule file (TOML) compiled the way `ghosttrack rules check` compiles an override: parse,
//! validate, build matchers. Errors must name file, field and constraint; nothing may panic.
#![no_main]

use ghosttrack::detect::rules::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = RuleSet::from_sources(vec![("fuzz/rule.toml".to_owned(), text.to_owned(), true)]) {
        for e in errors {
            assert_eq!(e.file, "fuzz/rule.toml");
            assert!(!e.field.is_empty() && !e.constraint.is_empty(), "{e:?}");
        }
    }
});
