//! Policy files: any text is a checked spec or a refusal with a line,
//! never a panic.
#![no_main]
use grantpool_fuzz::policy::spec;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = spec::parse(text) {
        for e in std::iter::once(&s.selector).chain(&s.classifiers) {
            let v: serde_json::Value = serde_json::from_str(&e.config_json).expect("configs are JSON objects");
            assert!(v.is_object());
            assert!(e.line >= 1 && e.config_line >= 1);
        }
    }
});
