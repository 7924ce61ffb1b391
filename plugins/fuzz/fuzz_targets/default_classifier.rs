//! The default classifier: any failure gets a verdict or none, never a
//! panic, and an account is disabled only when the token endpoint answered
//! a 4xx whose OAuth error is `invalid_grant`; it is taken off the proxy only
//! on an upstream 403; a cooldown is never zero.
#![no_main]
#[allow(dead_code)]
#[path = "../../default/src/lib.rs"]
mod default;
use grantpool_plugin_sdk::classifier::{oauth_error, Classifier, Phase, Verdict};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(case) = grantpool_plugins_fuzz::case(data) else { return };
    let Ok(mut c) = default::Default_::configure(&case.config) else { return };
    let f = &case.failure;
    match c.classify(f) {
        Some(Verdict::Disable(_)) => {
            assert!(matches!(f.phase, Phase::TokenRefresh), "a disable only at the token endpoint");
            assert!(f.status.is_some_and(|s| (400..500).contains(&s)), "a disable only on a 4xx");
            assert_eq!(oauth_error(&f.body).map(|e| e.error), Some("invalid_grant".to_string()), "a disable only on invalid_grant");
        }
        Some(Verdict::ProxyDisable(_)) => {
            assert!(matches!(f.phase, Phase::Upstream) && f.status == Some(403), "off the proxy only on an upstream 403");
        }
        Some(Verdict::Cooldown(cd)) => assert!(cd.duration_ms.is_some_and(|ms| ms >= 1)),
        _ => {}
    }
});
