//! The `rules` classifier: any config is a compiled table or a refusal, any
//! failure a verdict or none, never a panic; the same failure gets the same
//! verdict; a table without a disabling rule never disables.
#![no_main]
#[allow(dead_code)]
#[path = "../../rules/src/lib.rs"]
mod rules;
use grantpool_plugin_sdk::classifier::{Classifier, Verdict};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(case) = grantpool_plugins_fuzz::case(data) else { return };
    let Ok(mut table) = rules::Rules::configure(&case.config) else { return };
    let first = table.classify(&case.failure);
    let again = table.classify(&case.failure);
    assert_eq!(format!("{first:?}"), format!("{again:?}"), "the same failure, the same verdict");
    if matches!(first, Some(Verdict::Disable(_))) {
        assert!(case.config.contains("disable"), "a disable only from a disabling rule");
    }
});
