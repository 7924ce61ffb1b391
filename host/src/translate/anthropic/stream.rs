//! Gemini's streamed answer → Anthropic Messages streaming events.

use std::borrow::Cow;

use serde::Serialize;

use super::super::gemini::GenerateContentResponse;
use super::super::outcome::Tally;
use super::super::search::Grounding;
use super::super::shared::{args_json, new_id};
use super::super::signatures::part_signature;
use super::super::sse::SseEvent;
use super::message::{search_input, tool_use_id, Citation, ServerToolUsage, Usage, WebSearchResult, STOP_REASONS};
use super::signature::wrap_signature;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockStart<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Usage,
    },
    MessageStop,
    Error {
        error: ErrorBody<'a>,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
        }
    }

    fn sse(&self) -> SseEvent {
        SseEvent::named(
            self.name(),
            serde_json::to_string(self).expect("event serializes"),
        )
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: Usage,
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: EmptyObject,
    },
    ServerToolUse {
        id: &'a str,
        name: &'static str,
        input: EmptyObject,
    },
    WebSearchToolResult {
        tool_use_id: &'a str,
        content: Vec<WebSearchResult>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the wire names all end in `_delta`
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: String },
    InputJsonDelta { partial_json: String },
    CitationsDelta { citation: Citation },
}

#[derive(Serialize)]
struct MessageDeltaBody {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking { signed: bool },
}

/// Turns a Gemini stream into Anthropic Messages streaming events, one
/// Gemini chunk at a time.
///
/// The first chunk opens with `message_start`. Each run of one kind of part
/// (text, thought) is one content block — `content_block_start`, its deltas
/// (`text_delta`, `thinking_delta`, `signature_delta`), `content_block_stop`
/// when the kind changes — with indexes counting up from 0. Gemini sends
/// each function call whole, so a call is a `tool_use` block opened, given
/// its complete arguments in one `input_json_delta`, and closed at once.
/// [`finish`](Self::finish) closes the open block and sends `message_delta`
/// (stop reason, usage) and `message_stop`.
///
/// For a request that runs Google Search ([`with_search`](Self::with_search))
/// the answer text is held back until Gemini's sources come (Gemini sends
/// its `groundingMetadata` with the last events), so that the blocks come
/// in Anthropic's order: a `server_tool_use` block (its input as one
/// `input_json_delta`), a `web_search_tool_result` block given whole in
/// its `content_block_start`, then the text, whose citations come as
/// `citations_delta` events before its `content_block_stop`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    started: bool,
    open: Option<OpenBlock>,
    next_index: u32,
    tool_use: bool,
    tally: Tally<Usage>,
    /// The request runs Google Search.
    search: bool,
    grounding: Grounding,
    /// Text held back until the search blocks are out.
    held: String,
    /// The search blocks are out (or there were none to send).
    searched: bool,
    /// The text sent since the search blocks (what Gemini's supports index).
    answer: String,
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in `message_start`.
    pub fn new(model: &str) -> Self {
        Self::with_search(model, false)
    }

    /// A translator that shows Google Search grounding as Anthropic's web
    /// search tool when `search` (the request ran `googleSearch`).
    pub fn with_search(model: &str, search: bool) -> Self {
        StreamTranslator {
            id: new_id("msg_"),
            model: model.to_owned(),
            started: false,
            open: None,
            next_index: 0,
            tool_use: false,
            tally: Tally::new(Usage::from_gemini),
            search,
            grounding: Grounding::default(),
            held: String::new(),
            searched: !search,
            answer: String::new(),
        }
    }

    /// The search blocks (when Gemini searched), then the text held back.
    fn flush_search(&mut self, out: &mut Vec<SseEvent>) {
        if std::mem::replace(&mut self.searched, true) {
            return;
        }
        if self.grounding.searched() {
            self.close(out);
            let sources = self.grounding.sources();
            let id = new_id("srvtoolu_");
            let index = self.next_index;
            self.next_index += 2;
            let start = BlockStart::ServerToolUse { id: &id, name: "web_search", input: EmptyObject {} };
            out.push(Event::ContentBlockStart { index, content_block: start }.sse());
            let partial_json = search_input(&self.grounding).to_string();
            out.push(Event::ContentBlockDelta { index, delta: BlockDelta::InputJsonDelta { partial_json } }.sse());
            out.push(Event::ContentBlockStop { index }.sse());
            let content = sources.iter().map(WebSearchResult::of).collect();
            let result = BlockStart::WebSearchToolResult { tool_use_id: &id, content };
            out.push(Event::ContentBlockStart { index: index + 1, content_block: result }.sse());
            out.push(Event::ContentBlockStop { index: index + 1 }.sse());
            self.tally.usage.server_tool_use = Some(ServerToolUsage { web_search_requests: self.grounding.requests() });
        }
        let held = std::mem::take(&mut self.held);
        self.text(&held, out);
    }

    /// A piece of answer text, into the open text block.
    fn text(&mut self, text: &str, out: &mut Vec<SseEvent>) {
        if text.is_empty() {
            return;
        }
        let index = self.ensure(OpenBlock::Text, out);
        out.push(Event::ContentBlockDelta { index, delta: BlockDelta::TextDelta { text } }.sse());
        if self.search {
            self.answer.push_str(text);
        }
    }

    /// The citations of the open text block of a grounded answer, before
    /// it closes.
    fn citations(&mut self, out: &mut Vec<SseEvent>) {
        if !self.search || self.open != Some(OpenBlock::Text) || !self.grounding.has_sources() {
            return;
        }
        let index = self.next_index - 1;
        let sources = self.grounding.sources();
        for cited in self.grounding.citations(&self.answer) {
            let span = &self.answer[cited.range.clone()];
            for &i in &cited.sources {
                let citation = Citation::of(&sources[i], span);
                out.push(Event::ContentBlockDelta { index, delta: BlockDelta::CitationsDelta { citation } }.sse());
            }
        }
    }

    fn start(&mut self, out: &mut Vec<SseEvent>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        out.push(
            Event::MessageStart {
                message: StartMessage {
                    id: &self.id,
                    kind: "message",
                    role: "assistant",
                    model: &self.model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage: self.tally.usage,
                },
            }
            .sse(),
        );
    }

    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if self.open.take().is_some() {
            out.push(
                Event::ContentBlockStop {
                    index: self.next_index - 1,
                }
                .sse(),
            );
        }
    }

    /// Opens a block of `kind` unless one is already open; returns its index.
    fn ensure(&mut self, kind: OpenBlock, out: &mut Vec<SseEvent>) -> u32 {
        let same = matches!(
            (self.open, kind),
            (Some(OpenBlock::Text), OpenBlock::Text)
                | (Some(OpenBlock::Thinking { .. }), OpenBlock::Thinking { .. })
        );
        if !same {
            self.close(out);
            let content_block = match kind {
                OpenBlock::Text => BlockStart::Text { text: "" },
                OpenBlock::Thinking { .. } => BlockStart::Thinking { thinking: "" },
            };
            out.push(
                Event::ContentBlockStart {
                    index: self.next_index,
                    content_block,
                }
                .sse(),
            );
            self.next_index += 1;
            self.open = Some(kind);
        }
        self.next_index - 1
    }

    fn signature(&mut self, signature: &str, out: &mut Vec<SseEvent>) {
        out.push(
            Event::ContentBlockDelta {
                index: self.next_index - 1,
                delta: BlockDelta::SignatureDelta {
                    signature: wrap_signature(signature),
                },
            }
            .sse(),
        );
        self.open = Some(OpenBlock::Thinking { signed: true });
    }

    /// Translates one Gemini stream chunk.
    pub fn push(&mut self, chunk: &GenerateContentResponse) -> Vec<SseEvent> {
        if !self.tally.chunk(chunk) {
            return Vec::new();
        }
        if let (true, Some(meta)) = (self.search, chunk.grounding()) {
            self.grounding.add(meta);
        }
        let mut out = Vec::new();
        self.start(&mut out);
        for part in chunk.parts() {
            let signature = part_signature(part);
            let text = part.text.as_deref().unwrap_or("");
            if part.is_thought() {
                // A signature closes its thinking block; later thoughts start another.
                if self.open == Some(OpenBlock::Thinking { signed: true }) {
                    self.close(&mut out);
                }
                let index = self.ensure(OpenBlock::Thinking { signed: false }, &mut out);
                if !text.is_empty() {
                    out.push(
                        Event::ContentBlockDelta {
                            index,
                            delta: BlockDelta::ThinkingDelta { thinking: text },
                        }
                        .sse(),
                    );
                }
                if let Some(s) = signature {
                    self.signature(s, &mut out);
                }
                continue;
            }
            // A signature on the part after the thoughts belongs to them.
            if let (Some(OpenBlock::Thinking { signed: false }), Some(s)) = (self.open, signature) {
                self.signature(s, &mut out);
            }
            if let Some(call) = &part.function_call {
                self.flush_search(&mut out);
                self.close(&mut out);
                let index = self.next_index;
                self.next_index += 1;
                self.tool_use = true;
                out.push(
                    Event::ContentBlockStart {
                        index,
                        content_block: BlockStart::ToolUse {
                            id: tool_use_id(call),
                            name: &call.name,
                            input: EmptyObject {},
                        },
                    }
                    .sse(),
                );
                out.push(
                    Event::ContentBlockDelta {
                        index,
                        delta: BlockDelta::InputJsonDelta {
                            partial_json: args_json(call),
                        },
                    }
                    .sse(),
                );
                out.push(Event::ContentBlockStop { index }.sse());
            } else if !self.searched {
                self.held.push_str(text);
            } else {
                self.text(text, &mut out);
            }
        }
        if !self.searched && self.grounding.has_sources() {
            self.flush_search(&mut out);
        }
        out
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.tally.saw_finish()
    }

    /// Closing events: `content_block_stop` for an open block, `message_delta`
    /// (stop reason, usage), `message_stop`. Nothing after the stream ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(4);
        self.start(&mut out);
        self.flush_search(&mut out);
        self.citations(&mut out);
        self.close(&mut out);
        out.push(
            Event::MessageDelta {
                delta: MessageDeltaBody {
                    stop_reason: STOP_REASONS.of(self.tally.finish, self.tool_use),
                    stop_sequence: None,
                },
                usage: self.tally.usage,
            }
            .sse(),
        );
        out.push(Event::MessageStop.sse());
        out
    }

    /// Ends the stream with an `error` event
    /// (`{"type":"error","error":{"type":"api_error","message":…}}`).
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        vec![Event::Error {
            error: ErrorBody {
                kind: "api_error",
                message,
            },
        }
        .sse()]
    }
}
