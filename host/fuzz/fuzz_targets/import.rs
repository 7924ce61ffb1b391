//! Antigravity-Manager account files: any JSON reads as an account to
//! import or a cause, never a panic; the import rules apply to any pair.
#![no_main]
use grantpool_fuzz::store::import::imported_from_value;
use grantpool_fuzz::store::upsert::import_decision;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(src) = imported_from_value(&v) {
        let created = import_decision(None, &src, 1_700_000_000);
        let again = import_decision(Some(&created.account), &src, 1_700_000_001);
        assert!(!again.created);
        assert!(!again.changed, "importing the same file twice changes nothing");
    }
});
