//! Google Search grounding, as the client protocols show a web search.
//!
//! A request whose only tool is a web search (Anthropic's
//! `web_search_20250305`, OpenAI's `web_search`) runs with Gemini's
//! `googleSearch` tool; Gemini then answers plain text plus a candidate's
//! `groundingMetadata`: the queries it ran (`webSearchQueries`), the pages
//! it used (`groundingChunks[].web.{uri,title}`) and which spans of the
//! text each page supports (`groundingSupports[]`). Clients count searches
//! from structured blocks, not from text: Claude Code says "Did 0
//! searches" without `server_tool_use` / `web_search_tool_result` blocks
//! (CLIProxyAPI issues #842 and #883, gcli2api #208 describe the same).
//! [`Grounding`] gathers the metadata of one answer (a stream spreads it
//! over its last events) for the translators to write those blocks. The
//! `groundingMetadata` types themselves are Gemini's, in
//! [`gemini`](super::gemini) (re-exported here); this file reads them and
//! is not read by it.

use std::sync::atomic::{AtomicBool, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::gemini::{GenerateContentRequest, Tool};
pub use super::gemini::{GroundingChunk, GroundingMetadata, GroundingSupport, Segment, WebChunk};

/// A web page, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its address.
    pub url: String,
    /// Its title (the address when Gemini gave none).
    pub title: String,
}

impl Source {
    /// An opaque token standing for the page (Anthropic's
    /// `encrypted_content`); this proxy reads none back, a replayed
    /// `web_search_tool_result` is dropped.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.url)
    }
}

/// A cited span of the answer text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cited {
    /// Byte range in the text (on char boundaries).
    pub range: std::ops::Range<usize>,
    /// Indexes into [`Grounding::sources`].
    pub sources: Vec<usize>,
}

/// The grounding of one answer, gathered from its chunks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grounding {
    /// The queries, in order, without repeats.
    pub queries: Vec<String>,
    chunks: Vec<GroundingChunk>,
    supports: Vec<GroundingSupport>,
}

impl Grounding {
    /// Adds one chunk's metadata. Queries add up; sources and supports are
    /// taken from the latest chunk that has any (supports index the
    /// sources of the same metadata).
    pub fn add(&mut self, meta: &GroundingMetadata) {
        for q in &meta.web_search_queries {
            if !q.is_empty() && !self.queries.contains(q) {
                self.queries.push(q.clone());
            }
        }
        if !meta.grounding_chunks.is_empty() {
            self.chunks = meta.grounding_chunks.clone();
            self.supports.clear();
        }
        if !meta.grounding_supports.is_empty() {
            self.supports = meta.grounding_supports.clone();
        }
    }

    /// Whether Gemini searched at all.
    pub fn searched(&self) -> bool {
        !self.queries.is_empty() || !self.chunks.is_empty()
    }

    /// Whether the sources have come (a stream sends them at its end).
    pub fn has_sources(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// The number of searches to report: the queries, at least one when
    /// there are sources.
    pub fn requests(&self) -> u64 {
        (self.queries.len() as u64).max(u64::from(self.has_sources()))
    }

    /// The web pages, in Gemini's order (other kinds of chunk are skipped,
    /// so indexes are remapped by [`citations`](Self::citations)).
    pub fn sources(&self) -> Vec<Source> {
        self.chunks.iter().filter_map(web_source).collect()
    }

    /// The cited spans of `text` (the answer's whole text), in order,
    /// without overlaps; a span whose offsets do not fit `text` is looked
    /// up by its text instead, and skipped when not found.
    pub fn citations(&self, text: &str) -> Vec<Cited> {
        // Chunk index → source index (web chunks only).
        let mut remap = Vec::with_capacity(self.chunks.len());
        let mut n = 0;
        for c in &self.chunks {
            remap.push(web_source(c).map(|_| {
                n += 1;
                n - 1
            }));
        }
        let mut out: Vec<Cited> = Vec::new();
        for s in &self.supports {
            let sources: Vec<usize> = s
                .grounding_chunk_indices
                .iter()
                .filter_map(|&i| remap.get(i).copied().flatten())
                .collect();
            let Some(seg) = &s.segment else { continue };
            if sources.is_empty() {
                continue;
            }
            let Some(range) = span(text, seg) else { continue };
            if out.last().is_some_and(|c| c.range.end > range.start) {
                continue; // overlapping spans: the first one stands
            }
            out.push(Cited { range, sources });
        }
        out.sort_by_key(|c| c.range.start);
        out.dedup_by(|b, a| a.range.end > b.range.start);
        out
    }
}

fn web_source(chunk: &GroundingChunk) -> Option<Source> {
    let web = chunk.web.as_ref()?;
    let url = web.uri.clone().filter(|u| !u.is_empty())?;
    let title = web.title.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| url.clone());
    Some(Source { url, title })
}

/// A segment's byte range in `text`: its offsets when they fit (and, when
/// it has a text, match it), else where its text first occurs.
fn span(text: &str, seg: &Segment) -> Option<std::ops::Range<usize>> {
    let start = seg.start_index.unwrap_or(0);
    if let Some(end) = seg.end_index {
        let fits = start < end && text.get(start..end).is_some();
        if fits && seg.text.as_deref().is_none_or(|t| text.get(start..end) == Some(t)) {
            return Some(start..end);
        }
    }
    let t = seg.text.as_deref().filter(|t| !t.is_empty())?;
    let at = text.find(t)?;
    Some(at..at + t.len())
}

/// Gemini's `googleSearch` tool, for a request whose only tool is a web
/// search (Gemini cannot mix it with functions).
pub(crate) fn google_search_tool() -> Tool {
    let mut extra = Map::with_capacity(1);
    extra.insert("googleSearch".to_owned(), Value::Object(Map::new()));
    Tool { function_declarations: None, extra }
}

/// Whether a translated request runs Google Search.
pub fn uses_google_search(req: &GenerateContentRequest) -> bool {
    req.tools.iter().any(|t| t.extra.contains_key("googleSearch"))
}

/// Says, once per process at `warn` (then at `debug`), that a request's
/// web search tool was left out because it also declares functions:
/// Gemini refuses `googleSearch` next to function declarations, and the
/// functions matter more to an agent.
pub fn log_search_dropped(route: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            route,
            "the request declares functions and a web search tool; Gemini cannot mix them, so web search is left out and the functions kept (said once; later cases log at debug)"
        );
    } else {
        tracing::debug!(route, "web search tool left out: the request also declares functions");
    }
}

/// A character index (what OpenAI's annotation offsets count) of a byte
/// offset in `text`.
pub fn char_index(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or_else(|| text.chars().count(), |s| s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> GroundingMetadata {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sources_and_citations() {
        let text = "Zürich is big. Bern is the capital.";
        let mut g = Grounding::default();
        g.add(&meta(json!({"webSearchQueries": ["swiss capital"]})));
        assert!(g.searched() && !g.has_sources());
        g.add(&meta(json!({
            "webSearchQueries": ["swiss capital", "bern"],
            "groundingChunks": [
                {"web": {"uri": "https://a.example.org/1", "title": "a.example.org"}},
                {"retrievedContext": {}},
                {"web": {"uri": "https://b.example.org/2"}}
            ],
            "groundingSupports": [
                {"segment": {"endIndex": 15, "text": "Zürich is big."}, "groundingChunkIndices": [0]},
                // Wrong offsets: found by its text.
                {"segment": {"startIndex": 2, "endIndex": 5, "text": "Bern is the capital."}, "groundingChunkIndices": [2, 0]},
                {"segment": {"startIndex": 0, "endIndex": 3}, "groundingChunkIndices": [1]}
            ]
        })));
        assert_eq!(g.queries, ["swiss capital", "bern"]);
        assert_eq!(g.requests(), 2);
        let sources = g.sources();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].title, "https://b.example.org/2");
        let cites = g.citations(text);
        assert_eq!(cites.len(), 2);
        assert_eq!(&text[cites[0].range.clone()], "Zürich is big.");
        assert_eq!(cites[1].sources, [1, 0]);
        assert_eq!(&text[cites[1].range.clone()], "Bern is the capital.");
        assert_eq!(char_index(text, cites[1].range.start), 15);
    }
}
