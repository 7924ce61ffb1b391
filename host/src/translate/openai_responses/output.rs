//! The output items of one answer, built part by part, whole or streamed:
//! messages, reasoning items, calls, web searches and their events.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::super::gemini::{FunctionCall, Part};
use super::super::search::{char_index, Grounding, GroundingMetadata};
use super::super::shared::{args_json, call_id, new_id};
use super::super::signatures::part_signature;
use super::super::sse::SseEvent;
use super::signatures::{seal, Target};
use super::tools::{ToolMap, CUSTOM_INPUT};

/// The events of one answer, numbered; nothing is made when not streaming.
pub(super) struct Sink {
    live: bool,
    pub(super) seq: u64,
    pub(super) events: Vec<SseEvent>,
}

impl Sink {
    /// An event: `type` and `sequence_number`, then `fields`' entries.
    pub(super) fn emit(&mut self, name: &'static str, fields: impl FnOnce() -> Value) {
        if !self.live {
            return;
        }
        let mut obj = Map::new();
        obj.insert("type".to_owned(), name.into());
        obj.insert("sequence_number".to_owned(), self.seq.into());
        if let Value::Object(fields) = fields() {
            obj.extend(fields);
        }
        self.seq += 1;
        self.events.push(SseEvent::named(name, Value::Object(obj).to_string()));
    }

    /// A text delta, without copying the text into a `Value`.
    fn delta(&mut self, name: &'static str, item_id: &str, output_index: usize, index: DeltaIndex, delta: &str) {
        if !self.live {
            return;
        }
        let (content_index, summary_index, logprobs) = match index {
            DeltaIndex::Content => (Some(0), None, Some([])),
            DeltaIndex::Summary => (None, Some(0), None),
            DeltaIndex::None => (None, None, None),
        };
        let event = DeltaEvent {
            kind: name,
            sequence_number: self.seq,
            item_id,
            output_index,
            content_index,
            summary_index,
            delta,
            logprobs,
        };
        self.seq += 1;
        self.events.push(SseEvent::named(name, serde_json::to_string(&event).expect("event serializes")));
    }
}

#[derive(Clone, Copy)]
enum DeltaIndex {
    /// A message's one `output_text` part.
    Content,
    /// A reasoning item's one summary part.
    Summary,
    /// Call arguments or input.
    None,
}

#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Reasoning,
    Message,
}

/// The output item being streamed: a reasoning summary or a message's text.
#[derive(Debug)]
pub(super) struct Open {
    kind: OpenKind,
    id: String,
    index: usize,
    text: String,
    /// A reasoning item: the signature of its thoughts, for the item after.
    /// A message: the one Gemini sent on its text, sent after it.
    signature: Option<String>,
    /// A message's `url_citation` annotations (a grounded answer's).
    annotations: Vec<Value>,
}

/// The output items of one answer, built part by part. Gemini sends each
/// call whole; text and thoughts come in pieces, so one message or
/// reasoning item at a time stays open until a part of another kind comes.
///
/// With Google Search on (the request's `web_search`), the answer text is
/// held back until Gemini's sources come (with its last events), so that
/// the `web_search_call` items come before the message, as OpenAI orders
/// them.
pub(super) struct Output {
    tools: ToolMap,
    pub(super) items: Vec<Value>,
    pub(super) open: Option<Open>,
    pub(super) sink: Sink,
    grounding: Grounding,
    /// Text parts held back until the search items are out.
    held: Vec<Part>,
    /// The search items are out (or there are none to send).
    searched: bool,
}

impl Output {
    pub(super) fn new(tools: ToolMap, live: bool) -> Self {
        let searched = !tools.search;
        Output {
            tools,
            items: Vec::new(),
            open: None,
            sink: Sink { live, seq: 0, events: Vec::new() },
            grounding: Grounding::default(),
            held: Vec::new(),
            searched,
        }
    }

    /// Takes in one chunk's `groundingMetadata` (read only when the
    /// request runs Google Search).
    pub(super) fn grounding(&mut self, meta: &GroundingMetadata) {
        if self.tools.search {
            self.grounding.add(meta);
        }
    }

    /// The search items once the sources have come (a stream calls this
    /// after each chunk).
    pub(super) fn search_ready(&mut self) {
        if !self.searched && self.grounding.has_sources() {
            self.flush_search();
        }
    }

    /// The `web_search_call` items (one per query Gemini ran, when it
    /// searched), then the text held back.
    pub(super) fn flush_search(&mut self) {
        if std::mem::replace(&mut self.searched, true) {
            return;
        }
        if self.grounding.searched() {
            self.close();
            let mut queries = self.grounding.queries.clone();
            if queries.is_empty() {
                queries.push(String::new());
            }
            for query in queries {
                let id = new_id("ws_");
                let index = self.items.len();
                self.sink.emit("response.output_item.added", || {
                    json!({"output_index": index, "item": {"id": id, "type": "web_search_call", "status": "in_progress",
                           "action": {"type": "search", "query": query}}})
                });
                for stage in [
                    "response.web_search_call.in_progress",
                    "response.web_search_call.searching",
                    "response.web_search_call.completed",
                ] {
                    self.sink.emit(stage, || json!({"item_id": id, "output_index": index}));
                }
                let item = json!({"id": id, "type": "web_search_call", "status": "completed",
                                  "action": {"type": "search", "query": query}});
                self.done(index, item);
            }
        }
        for part in std::mem::take(&mut self.held) {
            self.part(&part);
        }
    }

    /// The `url_citation` annotations of the open message (a grounded
    /// answer's), before it closes: one per cited span and source, at
    /// character offsets.
    pub(super) fn annotate(&mut self) {
        if !self.tools.search || !self.grounding.has_sources() {
            return;
        }
        let Some(open) = self.open.as_mut().filter(|o| o.kind == OpenKind::Message) else {
            return;
        };
        let sources = self.grounding.sources();
        for cited in self.grounding.citations(&open.text) {
            let (start, end) = (char_index(&open.text, cited.range.start), char_index(&open.text, cited.range.end));
            for &i in &cited.sources {
                let annotation = json!({"type": "url_citation", "start_index": start, "end_index": end,
                                        "url": sources[i].url, "title": sources[i].title});
                let (id, index, n) = (&open.id, open.index, open.annotations.len());
                self.sink.emit("response.output_text.annotation.added", || {
                    json!({"item_id": id, "output_index": index, "content_index": 0, "annotation_index": n,
                           "annotation": annotation.clone()})
                });
                open.annotations.push(annotation);
            }
        }
    }

    pub(super) fn part(&mut self, part: &Part) {
        if !self.searched {
            if part.function_call.is_some() {
                self.flush_search();
            } else if part.text.is_some() && !part.is_thought() {
                self.held.push(part.clone());
                return;
            }
        }
        let signature = part_signature(part);
        if part.is_thought() {
            if self.open_kind() != Some(OpenKind::Reasoning) {
                self.close();
                self.open_item(OpenKind::Reasoning, new_id("rs_"));
            }
            self.append(part.text.as_deref().unwrap_or(""));
            if let (Some(open), Some(s)) = (self.open.as_mut(), signature) {
                open.signature = Some(s.to_owned());
            }
        } else if let Some(call) = &part.function_call {
            self.call(call, signature);
        } else if let Some(text) = part.text.as_deref() {
            self.text(text, signature);
        }
        // Other parts (inline data, executable code, …) have no Responses item.
    }

    fn open_kind(&self) -> Option<OpenKind> {
        self.open.as_ref().map(|o| o.kind)
    }

    /// The signature of the open reasoning item's thoughts, which belongs to
    /// the item after them.
    fn take_thought_signature(&mut self) -> Option<String> {
        match self.open.as_mut() {
            Some(open) if open.kind == OpenKind::Reasoning => open.signature.take(),
            _ => None,
        }
    }

    /// Closes the open item before a new one: a reasoning item carries
    /// `sealed`, the signature for the item that follows it.
    fn close_before(&mut self, sealed: Option<String>) {
        match self.open_kind() {
            Some(OpenKind::Reasoning) => self.close_reasoning(sealed),
            other => {
                if other.is_some() {
                    self.close();
                }
                if let Some(sealed) = sealed {
                    self.bare_reasoning(sealed);
                }
            }
        }
    }

    fn call(&mut self, call: &FunctionCall, signature: Option<&str>) {
        let call_id = call_id(call, "call_").into_owned();
        let signature = signature.map(str::to_owned).or_else(|| self.take_thought_signature());
        self.close_before(signature.map(|s| seal(Target::Call(&call_id), &s)));
        let index = self.items.len();
        let tool = self.tools.client_tool(&call.name);
        let (name, namespace) = (tool.name.to_owned(), tool.namespace.map(str::to_owned));
        if tool.custom {
            let id = new_id("ctc_");
            let input = custom_input(call);
            self.sink.emit("response.output_item.added", || {
                json!({"output_index": index, "item": {"id": id, "type": "custom_tool_call", "status": "in_progress",
                       "call_id": call_id, "name": name, "input": ""}})
            });
            if !input.is_empty() {
                self.sink.delta("response.custom_tool_call_input.delta", &id, index, DeltaIndex::None, &input);
            }
            self.sink.emit(
                "response.custom_tool_call_input.done",
                || json!({"item_id": id, "output_index": index, "input": input}),
            );
            let item = json!({"id": id, "type": "custom_tool_call", "status": "completed", "call_id": call_id,
                              "name": name, "input": input});
            self.done(index, item);
        } else {
            let id = new_id("fc_");
            let arguments = args_json(call);
            let item = |status: &str, arguments: &str| {
                let mut item = json!({"id": id, "type": "function_call", "status": status,
                                      "arguments": arguments, "call_id": call_id, "name": name});
                if let Some(ns) = &namespace {
                    item["namespace"] = ns.as_str().into();
                }
                item
            };
            self.sink
                .emit("response.output_item.added", || json!({"output_index": index, "item": item("in_progress", "")}));
            self.sink.delta("response.function_call_arguments.delta", &id, index, DeltaIndex::None, &arguments);
            self.sink.emit(
                "response.function_call_arguments.done",
                || json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments}),
            );
            let done = item("completed", &arguments);
            self.done(index, done);
        }
    }

    fn text(&mut self, text: &str, signature: Option<&str>) {
        if self.open_kind() == Some(OpenKind::Message) {
            self.append(text);
            if let (Some(open), Some(s)) = (self.open.as_mut(), signature) {
                open.signature.get_or_insert_with(|| s.to_owned());
            }
            return;
        }
        if text.is_empty() {
            // A bare signature (Gemini ends some streams so): it belongs to
            // the thoughts being streamed, or to the item just before.
            let Some(s) = signature else { return };
            if let Some(open) = self.open.as_mut() {
                open.signature = Some(s.to_owned());
            } else if let Some(sealed) = self.items.last().and_then(|item| seal_for(item, s)) {
                self.bare_reasoning(sealed);
            }
            return;
        }
        let id = new_id("msg_");
        let signature = signature.map(str::to_owned).or_else(|| self.take_thought_signature());
        self.close_before(signature.map(|s| seal(Target::Message(&id), &s)));
        self.open_item(OpenKind::Message, id);
        self.append(text);
    }

    fn open_item(&mut self, kind: OpenKind, id: String) {
        let index = self.items.len();
        match kind {
            OpenKind::Reasoning => self.sink.emit(
                "response.output_item.added",
                || json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
            ),
            OpenKind::Message => {
                self.sink.emit("response.output_item.added", || {
                    json!({"output_index": index, "item": {"id": id, "type": "message", "status": "in_progress",
                           "role": "assistant", "content": []}})
                });
                self.sink.emit("response.content_part.added", || {
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                           "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
                });
            }
        }
        self.open = Some(Open { kind, id, index, text: String::new(), signature: None, annotations: Vec::new() });
    }

    /// Adds text to the open item.
    fn append(&mut self, text: &str) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        match open.kind {
            OpenKind::Message => {
                self.sink.delta("response.output_text.delta", &open.id, open.index, DeltaIndex::Content, text)
            }
            OpenKind::Reasoning => {
                if open.text.is_empty() {
                    let (id, index) = (&open.id, open.index);
                    self.sink.emit("response.reasoning_summary_part.added", || {
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": ""}})
                    });
                }
                self.sink.delta(
                    "response.reasoning_summary_text.delta",
                    &open.id,
                    open.index,
                    DeltaIndex::Summary,
                    text,
                );
            }
        }
        open.text.push_str(text);
    }

    /// Closes the open item (at the end, or before a part of another kind).
    /// A reasoning item closed so carries no signature: its thoughts'
    /// signature, if any, has no item to go on.
    pub(super) fn close(&mut self) {
        match self.open_kind() {
            None => {}
            Some(OpenKind::Reasoning) => self.close_reasoning(None),
            Some(OpenKind::Message) => {
                let Some(Open { id, index, text, signature, annotations, .. }) = self.open.take() else {
                    return;
                };
                let part = json!({"type": "output_text", "text": text, "annotations": annotations, "logprobs": []});
                self.sink.emit(
                    "response.output_text.done",
                    || json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.sink.emit(
                    "response.content_part.done",
                    || json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                let item = json!({"id": id, "type": "message", "status": "completed", "role": "assistant",
                                  "content": [part]});
                self.done(index, item);
                // A signature Gemini sent on the text comes after it.
                if let Some(s) = signature {
                    self.bare_reasoning(seal(Target::Message(&id), &s));
                }
            }
        }
    }

    fn close_reasoning(&mut self, sealed: Option<String>) {
        let Some(Open { id, index, text, .. }) = self.open.take() else {
            return;
        };
        let summary = if text.is_empty() {
            Vec::new()
        } else {
            let part = json!({"type": "summary_text", "text": text});
            self.sink.emit(
                "response.reasoning_summary_text.done",
                || json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
            );
            self.sink.emit(
                "response.reasoning_summary_part.done",
                || json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
            );
            vec![part]
        };
        let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
        if let Some(sealed) = sealed {
            item["encrypted_content"] = sealed.into();
        }
        self.done(index, item);
    }

    /// A reasoning item with no summary, only a signature to carry.
    fn bare_reasoning(&mut self, sealed: String) {
        let id = new_id("rs_");
        let index = self.items.len();
        self.sink.emit(
            "response.output_item.added",
            || json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
        );
        let item = json!({"id": id, "type": "reasoning", "summary": [], "encrypted_content": sealed});
        self.done(index, item);
    }

    /// `response.output_item.done`, and the item into the output.
    fn done(&mut self, index: usize, item: Value) {
        self.sink.emit("response.output_item.done", || json!({"output_index": index, "item": item.clone()}));
        self.items.push(item);
    }
}

/// `encrypted_content` binding `signature` to an output item already sent.
fn seal_for(item: &Value, signature: &str) -> Option<String> {
    let target = match item.get("type")?.as_str()? {
        "message" => Target::Message(item.get("id")?.as_str()?),
        "function_call" | "custom_tool_call" => Target::Call(item.get("call_id")?.as_str()?),
        _ => return None,
    };
    Some(seal(target, signature))
}

/// A custom tool call's input: the `input` string the model passed (or,
/// should it pass something else, its arguments as JSON).
fn custom_input(call: &FunctionCall) -> String {
    match call.args.as_ref().and_then(|a| a.get(CUSTOM_INPUT)) {
        Some(Value::String(s)) => s.clone(),
        _ => args_json(call),
    }
}
