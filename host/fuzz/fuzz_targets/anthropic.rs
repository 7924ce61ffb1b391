//! Anthropic messages requests (Claude Code's shape).
#![no_main]
use grantpool_fuzz::translate::anthropic;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = anthropic::parse_request(data) {
        let _ = serde_json::to_vec(&req.gemini).expect("a translated request serialises");
    }
});
