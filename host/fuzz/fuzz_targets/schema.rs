//! Any JSON a client sends as a tool schema becomes a `parameters` schema
//! (or none), never a panic, and cleaning it twice changes nothing more.
#![no_main]
use grantpool_fuzz::translate::schema;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Some(p) = schema::to_parameters(v) {
        let again = schema::sanitize_schema(p.clone());
        assert_eq!(schema::sanitize_schema(again.clone()), again, "cleaning is stable");
    }
});
