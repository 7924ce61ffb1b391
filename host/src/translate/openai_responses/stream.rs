//! Gemini's streamed answer → the Responses streaming events.

use std::fmt;

use serde_json::json;

use super::super::gemini::GenerateContentResponse;
use super::super::outcome::Tally;
use super::super::shared::{new_id, unix_now};
use super::super::sse::SseEvent;
use super::output::Output;
use super::response::{outcome, Head, Usage};
use super::tools::ToolMap;

/// Turns a Gemini stream into Responses streaming events, one Gemini chunk
/// at a time.
///
/// The first events are `response.created` and `response.in_progress`. A
/// message is `response.output_item.added`, `response.content_part.added`,
/// `response.output_text.delta`…, then (when a part of another kind comes,
/// or at the end) `response.output_text.done`, `response.content_part.done`,
/// `response.output_item.done`. Thoughts make a reasoning item the same way
/// with `response.reasoning_summary_part.*` / `reasoning_summary_text.*`.
/// Gemini sends each call whole: `output_item.added`, one
/// `response.function_call_arguments.delta` with all the arguments,
/// `.done`, `output_item.done` (for a custom tool,
/// `response.custom_tool_call_input.*`). [`finish`](Self::finish) closes the
/// open item and sends `response.completed` (or `response.incomplete`) with
/// the whole response and its `usage`. Every event is named
/// (`event: response.…`) and carries `type` and `sequence_number`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created_at: u64,
    started: bool,
    out: OutputState,
    tally: Tally<Usage>,
}

/// [`Output`] behind a `Debug` the translator can derive.
struct OutputState(Output);

impl fmt::Debug for OutputState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("items", &self.0.items.len())
            .field("open", &self.0.open)
            .field("seq", &self.0.sink.seq)
            .finish()
    }
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in the response.
    /// Calls keep Gemini's function names (see [`with_tools`](Self::with_tools)).
    pub fn new(model: &str) -> Self {
        Self::with_tools(model, ToolMap::default())
    }

    /// A translator that gives calls back under the names in `tools` (from
    /// [`parse_request_with_tools`](super::parse_request_with_tools)):
    /// namespaced functions with their `namespace`, custom tools as
    /// `custom_tool_call` items.
    pub fn with_tools(model: &str, tools: ToolMap) -> Self {
        StreamTranslator {
            id: new_id("resp_"),
            model: model.to_owned(),
            created_at: unix_now(),
            started: false,
            out: OutputState(Output::new(tools, true)),
            tally: Tally::new(Usage::from_gemini),
        }
    }

    fn head(&self) -> Head<'_> {
        Head { id: &self.id, model: &self.model, created_at: self.created_at }
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = self.head().object("in_progress", Vec::new(), None, None, None);
        let sink = &mut self.out.0.sink;
        sink.emit("response.created", || json!({"response": response.clone()}));
        sink.emit("response.in_progress", || json!({"response": response}));
    }

    fn take_events(&mut self) -> Vec<SseEvent> {
        std::mem::take(&mut self.out.0.sink.events)
    }

    /// Translates one Gemini stream chunk.
    pub fn push(&mut self, chunk: &GenerateContentResponse) -> Vec<SseEvent> {
        if !self.tally.chunk(chunk) {
            return Vec::new();
        }
        self.start();
        if let Some(meta) = chunk.grounding() {
            self.out.0.grounding(meta);
        }
        for part in chunk.parts() {
            self.out.0.part(part);
        }
        self.out.0.search_ready();
        self.take_events()
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.tally.saw_finish()
    }

    /// Closing events: the open item's `.done` events, then
    /// `response.completed` (or `response.incomplete`, for a `MAX_TOKENS` or
    /// content-filter finish) with every output item and `usage`. Nothing
    /// after the stream already ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        self.start();
        self.out.0.flush_search();
        self.out.0.annotate();
        self.out.0.close();
        let (status, reason) = outcome(self.tally.finish);
        let response = self.head().object(status, self.out.0.items.clone(), Some(self.tally.usage), reason, None);
        let name = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.out.0.sink.emit(name, || json!({"response": response}));
        self.take_events()
    }

    /// Ends the stream with an `error` event and `response.failed`, code
    /// `server_error` (which Codex retries).
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        self.error_with_code("server_error", message)
    }

    /// [`error`](Self::error) with another code, e.g. `rate_limit_exceeded`
    /// or `context_length_exceeded` (Codex does not retry the latter and
    /// says the context window is full).
    pub fn error_with_code(&mut self, code: &str, message: &str) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        self.start();
        let error = json!({"code": code, "message": message});
        let usage = Some(self.tally.usage);
        let response = self.head().object("failed", self.out.0.items.clone(), usage, None, Some(error));
        let sink = &mut self.out.0.sink;
        sink.emit("error", || json!({"code": code, "message": message, "param": null}));
        sink.emit("response.failed", || json!({"response": response}));
        self.take_events()
    }
}
