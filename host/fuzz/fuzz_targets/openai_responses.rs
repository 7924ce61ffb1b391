//! Responses API requests (Codex's shape): parse, tool map, dropped tools.
#![no_main]
use grantpool_fuzz::translate::openai_responses;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = openai_responses::dropped_tools(data);
    if let Ok((req, _tools)) = openai_responses::parse_request_with_tools(data) {
        let _ = serde_json::to_vec(&req.gemini).expect("a translated request serialises");
    }
});
