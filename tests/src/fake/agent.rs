//! The scripted agent turn, for driving the real CLIs end to end (contract
//! "Scripted agent turn"):
//!
//! 1. the last user text holds `RUN: <shell command>` and the request
//!    declares a shell-like tool → one functionCall to it, arguments built
//!    from its schema;
//! 2. the next request whose last content has a functionResponse for that
//!    call → text `The command printed: <output>`.
//!
//! The shell tools' names and argument shapes are those of the CLIs'
//! captured requests (Claude Code `Bash {command, description}`, Gemini CLI
//! `run_shell_command {command, description?}`, Codex `shell {command: []}` /
//! `exec_command {cmd}`).

use serde_json::{json, Value};

use super::proto::field;
use super::schema_check::type_name;

/// Tool names taken as a shell.
const SHELL_NAMES: &[&str] = &[
    "bash",
    "shell",
    "shell_command",
    "exec_command",
    "local_shell",
    "run_shell_command",
];

/// The command of a `RUN: <cmd>` line in `text` (the rest of that line).
pub(crate) fn run_command(text: &str) -> Option<String> {
    let at = text.find("RUN: ")?;
    let cmd = text[at + 5..].lines().next().unwrap_or("").trim();
    (!cmd.is_empty()).then(|| cmd.to_owned())
}

/// Whether `name` is a shell tool's name.
pub(crate) fn is_shell_name(name: &str) -> bool {
    SHELL_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The declarations of a request, in order.
fn declarations(request: &Value) -> impl Iterator<Item = &Value> {
    field(request, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations").and_then(Value::as_array))
        .flatten()
}

/// The shell-like tool a request declares: by name first, else the first
/// whose description mentions "shell" or "command". Answers its name and
/// schema (`parameters`, else `parametersJsonSchema`).
pub(crate) fn shell_tool(request: &Value) -> Option<(String, Option<&Value>)> {
    let name_of = |d: &Value| d.get("name").and_then(Value::as_str).map(str::to_owned);
    fn schema_of(d: &Value) -> Option<&Value> {
        field(d, "parameters").or_else(|| field(d, "parametersJsonSchema"))
    }
    if let Some(d) = declarations(request).find(|d| name_of(d).is_some_and(|n| is_shell_name(&n))) {
        return Some((name_of(d)?, schema_of(d)));
    }
    let d = declarations(request).find(|d| {
        d.get("description")
            .and_then(Value::as_str)
            .is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.contains("shell") || t.contains("command")
            })
    })?;
    Some((name_of(d)?, schema_of(d)))
}

/// Whether a schema property is of type `want` (a Type enum name or a
/// JSON Schema type, possibly a list of them).
fn prop_is(schema: Option<&Value>, prop: &str, want: &str) -> Option<bool> {
    let p = schema?.get("properties")?.get(prop)?;
    let ty = p.get("type")?;
    Some(match ty {
        Value::Array(list) => list.iter().any(|t| type_name(t).as_deref() == Some(want)),
        t => type_name(t).as_deref() == Some(want),
    })
}

/// The arguments for running `cmd` with a tool of `schema`: a `command`
/// string → `{"command": cmd}` (plus `"description": "run it"` when
/// required); a `command` array → `["bash", "-lc", cmd]`; a `cmd` string
/// → `{"cmd": cmd}`; else `{"command": cmd}`.
pub(crate) fn shell_args(schema: Option<&Value>, cmd: &str) -> Value {
    let required = |name: &str| {
        schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(name)))
    };
    let mut args = match (
        prop_is(schema, "command", "ARRAY"),
        prop_is(schema, "command", "STRING"),
        prop_is(schema, "cmd", "STRING"),
    ) {
        (Some(true), _, _) => json!({"command": ["bash", "-lc", cmd]}),
        (_, Some(true), _) => json!({ "command": cmd }),
        (None, None, Some(true)) => json!({ "cmd": cmd }),
        _ => json!({ "command": cmd }),
    };
    if required("description") {
        args["description"] = json!("run it");
    }
    args
}

/// The text of a value: a string as is, a list of strings or `{text}`
/// parts joined, else its JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(list) => list
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or_else(|| other.to_string(), str::to_owned),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// A functionResponse's output text: the first of `output`, `content`,
/// `result`, `stdout`, else the whole response's JSON; trimmed.
pub(crate) fn output_text(response: &Value) -> String {
    let picked = ["output", "content", "result", "stdout"]
        .iter()
        .find_map(|k| response.get(*k).filter(|v| !v.is_null()));
    match (picked, response) {
        (Some(v), _) => text_of(v),
        (None, Value::String(s)) => s.clone(),
        (None, other) => other.to_string(),
    }
    .trim()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lines() {
        assert_eq!(
            run_command("please RUN: echo MAGIC-4242\nthanks").as_deref(),
            Some("echo MAGIC-4242")
        );
        assert_eq!(run_command("RUN:   ls -la  ").as_deref(), Some("ls -la"));
        assert_eq!(run_command("RUN: "), None);
        assert_eq!(run_command("run: echo"), None);
    }

    #[test]
    fn tools_and_arguments() {
        // Claude Code's Bash: command string, description required.
        let claude = json!({"tools": [{"functionDeclarations": [
            {"name": "Read", "description": "Reads a file"},
            {"name": "Bash", "parameters": {"type": "object", "properties": {
                "command": {"type": "string"}, "description": {"type": "string"}}, "required": ["command", "description"]}}]}]});
        let (name, schema) = shell_tool(&claude).unwrap();
        assert_eq!(name, "Bash");
        assert_eq!(
            shell_args(schema, "echo hi"),
            json!({"command": "echo hi", "description": "run it"})
        );
        // Gemini CLI's run_shell_command, JSON Schema, description optional.
        let gemini = json!({"tools": [{"functionDeclarations": [{"name": "run_shell_command",
            "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}}, "required": ["command"]}}]}]});
        let (name, schema) = shell_tool(&gemini).unwrap();
        assert_eq!(
            (name.as_str(), shell_args(schema, "ls")),
            ("run_shell_command", json!({"command": "ls"}))
        );
        // Codex: command array, or exec_command's cmd.
        let codex = json!({"tools": [{"function_declarations": [{"name": "shell",
            "parameters": {"type": "OBJECT", "properties": {"command": {"type": "ARRAY", "items": {"type": "STRING"}}}}}]}]});
        let (_, schema) = shell_tool(&codex).unwrap();
        assert_eq!(
            shell_args(schema, "ls"),
            json!({"command": ["bash", "-lc", "ls"]})
        );
        let exec = json!({"tools": [{"functionDeclarations": [{"name": "exec_command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]}]});
        let (_, schema) = shell_tool(&exec).unwrap();
        assert_eq!(shell_args(schema, "ls"), json!({"cmd": "ls"}));
        // By description; none at all.
        let described = json!({"tools": [{"functionDeclarations": [{"name": "terminal", "description": "Runs a shell command"}]}]});
        assert_eq!(shell_tool(&described).unwrap().0, "terminal");
        assert!(shell_tool(
            &json!({"tools": [{"functionDeclarations": [{"name": "get_weather"}]}]})
        )
        .is_none());
        assert_eq!(shell_args(None, "x"), json!({"command": "x"}));
    }

    #[test]
    fn outputs() {
        assert_eq!(
            output_text(&json!({"output": "  MAGIC-4242\n"})),
            "MAGIC-4242"
        );
        assert_eq!(
            output_text(&json!({"content": [{"type": "text", "text": "a"}, "b"]})),
            "a\nb"
        );
        assert_eq!(output_text(&json!({"result": "r", "output": null})), "r");
        assert_eq!(output_text(&json!({"stdout": "s"})), "s");
        assert_eq!(output_text(&json!({"exit": 0})), r#"{"exit":0}"#);
        assert_eq!(output_text(&json!("plain")), "plain");
    }
}
