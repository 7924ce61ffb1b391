//! The SSE parser the proxy reads Google's streams with, fed in chunks cut
//! anywhere, then the inner-answer finder on every event.
#![no_main]
use eventsource_stream::Eventsource;
use futures::StreamExt;
use grantpool_fuzz::translate::gemini;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else { return };
    let step = (step as usize % 64) + 1;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = rest.chunks(step).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let events = futures::executor::block_on(futures::stream::iter(chunks).eventsource().collect::<Vec<_>>());
    for e in events.into_iter().flatten() {
        let _ = gemini::response_span(e.data.as_bytes());
        let _ = gemini::parse_upstream_response(e.data.as_bytes());
    }
});
