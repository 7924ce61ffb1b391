//! OpenAI chat requests: any bytes parse to a request or a field-naming
//! error, never a panic; a parsed request serialises.
#![no_main]
use grantpool_fuzz::translate::openai_chat;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = openai_chat::parse_request(data) {
        let _ = serde_json::to_vec(&req.gemini).expect("a translated request serialises");
    }
});
