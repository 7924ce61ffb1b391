//! The client's tools → Gemini's: function, namespace and custom tools
//! declared as functions under names Gemini accepts ([`ToolMap`] undoes
//! that), `web_search` as Google Search, the other built-in tools dropped.

use serde_json::{json, Value};

use super::super::gemini::{FunctionDeclaration, Tool};
use super::super::schema::function_declaration;
use super::super::search::google_search_tool;
use super::super::shared::{function_tools, non_empty, At, TranslateError};
use super::request_body::ToolIn;

/// The one parameter of a custom (free-form) tool declared as a function.
pub(super) const CUSTOM_INPUT: &str = "input";

/// Longest function name Gemini accepts.
const MAX_NAME: usize = 64;

/// How the client's tools were named to Gemini, to give the model's calls
/// back as the client declared them, and which built-in tools were dropped.
/// Made by [`parse_request_with_tools`](super::parse_request_with_tools);
/// the default (no tools) leaves every name as Gemini sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMap {
    /// Only the tools whose Gemini name or kind differs from a plain function
    /// of the same name: namespaced, custom or renamed ones.
    entries: Vec<ToolEntry>,
    pub(super) dropped: Vec<String>,
    /// The request runs Google Search (its only tool was `web_search`).
    pub(super) search: bool,
    /// A `web_search` tool was left out for the functions.
    search_dropped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolEntry {
    gemini: String,
    namespace: Option<String>,
    name: String,
    custom: bool,
}

/// A function the model called, under the name the client declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientTool<'a> {
    /// The namespace tool it belongs to, if any.
    pub(super) namespace: Option<&'a str>,
    /// Its name (within the namespace).
    pub(super) name: &'a str,
    /// A custom (free-form) tool: its call is a `custom_tool_call`.
    pub(super) custom: bool,
}

impl ToolMap {
    /// The built-in tools this proxy dropped, by type (`web_search`,
    /// `tool_search`, …), for one line of log.
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// Whether a `web_search` tool was left out because the request also
    /// declares functions (Gemini cannot mix them).
    pub fn search_dropped(&self) -> bool {
        self.search_dropped
    }

    /// The client's name for the function Gemini called `gemini`.
    pub(super) fn client_tool<'a>(&'a self, gemini: &'a str) -> ClientTool<'a> {
        match self.entries.iter().find(|e| e.gemini == gemini) {
            Some(e) => ClientTool { namespace: e.namespace.as_deref(), name: &e.name, custom: e.custom },
            None => ClientTool { namespace: None, name: gemini, custom: false },
        }
    }

    /// The Gemini name of a declared tool (or, for one not declared in this
    /// request, the name it would have been given).
    pub(super) fn gemini_name(&self, namespace: Option<&str>, name: &str, custom: bool) -> String {
        self.entries
            .iter()
            .find(|e| e.namespace.as_deref() == namespace && e.name == name && e.custom == custom)
            .map_or_else(|| encode_name(namespace, name), |e| e.gemini.clone())
    }

    /// Declares a tool: returns its Gemini name, unique in this request.
    fn declare(&mut self, namespace: Option<&str>, name: &str, custom: bool, taken: &mut Vec<String>) -> String {
        let mut gemini = encode_name(namespace, name);
        let mut n = 2;
        while taken.contains(&gemini) {
            let suffix = format!("_{n}");
            gemini = encode_name(namespace, name);
            gemini.truncate(MAX_NAME - suffix.len());
            gemini.push_str(&suffix);
            n += 1;
        }
        if namespace.is_some() || custom || gemini != name {
            self.entries.push(ToolEntry {
                gemini: gemini.clone(),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                custom,
            });
        }
        taken.push(gemini.clone());
        gemini
    }
}

/// A tool's Gemini function name: `<namespace>__<name>`, every character
/// outside `[A-Za-z0-9_-]` made `_`, starting with a letter or `_`, and at
/// most 64 characters (longer ones keep 55 and a hash of the whole). The
/// same tool always gets the same name, so replayed calls match.
pub(super) fn encode_name(namespace: Option<&str>, name: &str) -> String {
    let mut out = String::with_capacity(namespace.map_or(0, |n| n.len() + 2) + name.len());
    let mut push = |s: &str| {
        out.extend(s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }))
    };
    if let Some(ns) = namespace {
        push(ns);
        push("__");
    }
    push(name);
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    if out.len() > MAX_NAME {
        // FNV-1a over what the client sent: stable across requests.
        let hash = namespace
            .unwrap_or("")
            .bytes()
            .chain([0])
            .chain(name.bytes())
            .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        out.truncate(MAX_NAME - 9);
        out.push_str(&format!("_{hash:08x}"));
    }
    out
}

/// The Gemini tools: the client's functions, or Gemini's `googleSearch` for
/// a `web_search` tool when there are none (Gemini cannot mix the two).
/// Dropped tools are recorded in `map`.
pub(super) fn translate_tools(tools: Vec<ToolIn<'_>>, map: &mut ToolMap) -> Result<Vec<Tool>, TranslateError> {
    let mut decls = Vec::new();
    let mut taken = Vec::new();
    let mut web_search = false;
    for (j, tool) in tools.into_iter().enumerate() {
        let path = At::root("tools").index(j);
        match tool.kind.as_deref() {
            None | Some("function") => decls.push(declare_function(tool, None, &path, map, &mut taken)?),
            Some("custom") => decls.push(declare_custom(tool, &path, map, &mut taken)?),
            Some("namespace") => {
                let namespace = non_empty(tool.name, path.key("name"))?;
                let about = tool.description.filter(|d| !d.is_empty());
                for (k, member) in tool.tools.unwrap_or_default().into_iter().enumerate() {
                    let member_path = path.key("tools").index(k);
                    match member.kind.as_deref() {
                        None | Some("function") => {
                            let context = Some((namespace.as_str(), about.as_deref()));
                            let mut decl = declare_function(member, context, &member_path, map, &mut taken)?;
                            if decl.description.is_none() {
                                decl.description = about.clone();
                            }
                            decls.push(decl);
                        }
                        Some(other) => map.dropped.push(format!("{namespace}.{other}")),
                    }
                }
            }
            Some(kind) if kind.starts_with("web_search") => web_search = true,
            Some(kind) => map.dropped.push(kind.to_owned()),
        }
    }
    if decls.is_empty() && web_search {
        map.search = true;
        return Ok(vec![google_search_tool()]);
    }
    map.search_dropped = web_search;
    Ok(function_tools(decls))
}

fn declare_function(
    tool: ToolIn<'_>,
    namespace: Option<(&str, Option<&str>)>,
    path: &At<'_>,
    map: &mut ToolMap,
    taken: &mut Vec<String>,
) -> Result<FunctionDeclaration, TranslateError> {
    let name = non_empty(tool.name, path.key("name"))?;
    let gemini = map.declare(namespace.map(|(ns, _)| ns), &name, false, taken);
    let description = match (tool.description.filter(|d| !d.is_empty()), namespace) {
        (Some(d), Some((ns, Some(about)))) => Some(format!("{d}\n\n(From the `{ns}` tools: {about})")),
        (d, _) => d,
    };
    Ok(function_declaration(gemini, description, tool.parameters))
}

/// A custom tool as a function of one string, `input`; its grammar, if it
/// has one, goes in the description for the model to follow.
fn declare_custom(
    tool: ToolIn<'_>,
    path: &At<'_>,
    map: &mut ToolMap,
    taken: &mut Vec<String>,
) -> Result<FunctionDeclaration, TranslateError> {
    let name = non_empty(tool.name, path.key("name"))?;
    let gemini = map.declare(None, &name, true, taken);
    let mut description = tool.description.unwrap_or_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description
        .push_str("Pass the tool's whole free-form text, exactly as the tool expects it (not JSON), in `input`.");
    let format = tool.format.unwrap_or(Value::Null);
    if format.get("type").and_then(Value::as_str) == Some("grammar") {
        if let Some(definition) = format.get("definition").and_then(Value::as_str) {
            let syntax = format.get("syntax").and_then(Value::as_str).unwrap_or("lark");
            description.push_str(&format!(" The text must match this {syntax} grammar:\n{definition}"));
        }
    }
    let schema = json!({
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's free-form input."}},
        "required": [CUSTOM_INPUT],
    });
    Ok(function_declaration(gemini, Some(description), Some(schema)))
}
