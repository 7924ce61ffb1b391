//! Google's answers (whole, and as a stream of events split anywhere) back
//! into every client protocol: never a panic; the stream translators close
//! whatever they opened.
#![no_main]
use grantpool_fuzz::translate::{anthropic, gemini, openai_chat, openai_responses};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte splits the rest into events.
    let Some((&cut, rest)) = data.split_first() else { return };
    let _ = gemini::response_span(rest);
    let events: Vec<&[u8]> = rest.split(|b| *b == cut).collect();
    let mut chat = openai_chat::StreamTranslator::new("m");
    let mut claude = anthropic::StreamTranslator::new("m");
    let mut responses = openai_responses::StreamTranslator::new("m");
    for e in &events {
        if let Ok(g) = gemini::parse_upstream_response(e) {
            let _ = openai_chat::response_from_gemini(&g, "m");
            let _ = anthropic::response_from_gemini(&g, "m");
            let _ = openai_responses::response_from_gemini(&g, "m");
            let _ = chat.push(&g);
            let _ = claude.push(&g);
            let _ = responses.push(&g);
        }
    }
    let _ = chat.finish();
    let _ = claude.finish();
    let _ = responses.finish();
    let _ = chat.error("cut");
});
