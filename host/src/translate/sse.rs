//! Server-sent events as the client protocols frame them.

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` line (Anthropic names every event; OpenAI none).
    pub event: Option<&'static str>,
    /// The `data:` payload, usually one line of JSON.
    pub data: String,
}

impl SseEvent {
    /// An unnamed event.
    pub fn data(data: String) -> Self {
        SseEvent { event: None, data }
    }

    /// A named event.
    pub fn named(event: &'static str, data: String) -> Self {
        SseEvent {
            event: Some(event),
            data,
        }
    }

    /// The wire form: `event: …\ndata: …\n\n` (one `data:` line per line of
    /// `data`, so a payload with newlines stays one event).
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = String::with_capacity(self.data.len() + 24);
        if let Some(event) = self.event {
            out.push_str("event: ");
            out.push_str(event);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        bytes::Bytes::from(out)
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_wire_form() {
        let e = SseEvent::named("message_stop", r#"{"type":"message_stop"}"#.into());
        assert_eq!(
            &e.to_bytes()[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(
            &SseEvent::data("[DONE]".into()).to_bytes()[..],
            b"data: [DONE]\n\n"
        );
        assert_eq!(
            &SseEvent::data("a\nb".into()).to_bytes()[..],
            b"data: a\ndata: b\n\n"
        );
    }
}
