//! Google's rules for a function declaration's `parameters` (an OpenAPI 3.0
//! subset, the `Schema` proto), in two passes as Google has them:
//!
//! 1. JSON → proto parsing ([`parse_errors`]): a key outside the Schema
//!    proto is `Unknown name "<key>" at '<path>'` (map entries of
//!    `properties` are `properties[<index>].value`), a `type` that is not a
//!    Type enum name is `Invalid value at '<path>.type'
//!    (type.googleapis.com/google.cloud.aiplatform.master.Type), <value>`
//!    (facts §5.7: openclaw/openclaw#22222, router-for-me/CLIProxyAPI#1189,
//!    smallmain/vscode-unify-chat-provider#97);
//! 2. semantic checks ([`semantic_lines`]), one `* <path>: <why>\n` line per
//!    violation, paths from `GenerateContentRequest.` with properties by
//!    name (facts §5.7: danny-avila/LibreChat#6971).

use serde_json::{Map, Value};

use super::errors::{invalid_value, unknown_name};
use super::proto::{to_camel, to_snake};

/// The keys of the Schema proto (contract "Tool schemas"), camelCase.
pub(crate) const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The Type enum (any case accepted).
const TYPES: &[&str] = &[
    "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL",
];

const SCHEMA_TYPE: &str = "type.googleapis.com/google.cloud.aiplatform.master.Schema";
const TYPE_TYPE: &str = "type.googleapis.com/google.cloud.aiplatform.master.Type";

/// The Type enum name of a `type` value, upper case; `None` when it is not one.
pub(crate) fn type_name(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let up = s.to_ascii_uppercase();
    TYPES.contains(&up.as_str()).then_some(up)
}

/// `obj[key]` under either spelling of a camelCase key.
fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(&to_snake(camel)))
        .filter(|v| !v.is_null())
}

/// Parse-time violations of the schema at `path` (a `request.…` path), as
/// `(field, description)` pairs.
pub(crate) fn parse_errors(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let Some(obj) = schema.as_object() else {
        if !schema.is_null() {
            out.push((path.to_owned(), invalid_value(path, SCHEMA_TYPE, schema)));
        }
        return;
    };
    for (key, value) in obj {
        let camel = to_camel(key);
        if !SCHEMA_KEYS.contains(&camel.as_str()) {
            out.push((path.to_owned(), unknown_name(key, path)));
            continue;
        }
        if value.is_null() {
            continue;
        }
        match camel.as_str() {
            "type" if type_name(value).is_none() => {
                let at = format!("{path}.type");
                out.push((at.clone(), invalid_value(&at, TYPE_TYPE, value)));
            }
            "properties" => match value.as_object() {
                Some(props) => {
                    for (i, (_, sub)) in props.iter().enumerate() {
                        parse_errors(sub, &format!("{path}.properties[{i}].value"), out);
                    }
                }
                None => {
                    let at = format!("{path}.properties");
                    out.push((at.clone(), invalid_value(&at, SCHEMA_TYPE, value)));
                }
            },
            "items" => parse_errors(value, &format!("{path}.items"), out),
            "anyOf" => match value.as_array() {
                Some(list) => {
                    for (i, sub) in list.iter().enumerate() {
                        parse_errors(sub, &format!("{path}.any_of[{i}]"), out);
                    }
                }
                None => {
                    let at = format!("{path}.any_of");
                    out.push((at.clone(), invalid_value(&at, SCHEMA_TYPE, value)));
                }
            },
            _ => {}
        }
    }
}

/// Semantic violations of a schema that parsed, appended to `out` as
/// `* <path>.<what>: <why>\n` lines. `path` is a `GenerateContentRequest.…`
/// path; `nested` is true inside `properties` / `items`, where a schema
/// needs `type` or `anyOf`.
pub(crate) fn semantic_lines(schema: &Value, path: &str, nested: bool, out: &mut String) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    let ty = get(obj, "type").and_then(type_name);
    let any_of = get(obj, "anyOf").and_then(Value::as_array);
    let props = get(obj, "properties").and_then(Value::as_object);
    if nested && ty.is_none() && any_of.is_none() {
        out.push_str(&format!(
            "* {path}.type: must be specified when not using one_of, any_of or all_of fields\n"
        ));
    }
    if ty.as_deref() == Some("OBJECT") && props.is_some_and(Map::is_empty) {
        out.push_str(&format!(
            "* {path}.properties: should be non-empty for OBJECT type\n"
        ));
    }
    if get(obj, "enum").is_some() && ty.as_deref().is_some_and(|t| t != "STRING") {
        out.push_str(&format!("* {path}.enum: only allowed for STRING type\n"));
    }
    if let Some(required) = get(obj, "required").and_then(Value::as_array) {
        for (k, name) in required.iter().enumerate() {
            let defined = name
                .as_str()
                .is_some_and(|n| props.is_some_and(|p| p.contains_key(n)));
            if !defined {
                out.push_str(&format!(
                    "* {path}.required[{k}]: property is not defined\n"
                ));
            }
        }
    }
    if let Some(props) = props {
        for (name, sub) in props {
            semantic_lines(sub, &format!("{path}.properties[{name}]"), true, out);
        }
    }
    if let Some(items) = get(obj, "items") {
        semantic_lines(items, &format!("{path}.items"), true, out);
    }
    if let Some(list) = any_of {
        for (i, sub) in list.iter().enumerate() {
            semantic_lines(sub, &format!("{path}.any_of[{i}]"), false, out);
        }
    }
}

/// The semantic violations of every function declaration of a Gemini
/// request: [`semantic_lines`] of each `parameters`, and `parameters` with
/// `parametersJsonSchema` (for Claude the latter is already an unknown
/// field).
pub(crate) fn request_lines(request: &Value, claude: bool) -> String {
    let mut out = String::new();
    let tools = super::proto::field(request, "tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, tool) in tools.iter().enumerate() {
        let decls = super::proto::field(tool, "functionDeclarations")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (j, decl) in decls.iter().enumerate() {
            let at = format!("GenerateContentRequest.tools[{i}].function_declarations[{j}]");
            let params = super::proto::field(decl, "parameters");
            if let Some(p) = params {
                semantic_lines(p, &format!("{at}.parameters"), false, &mut out);
            }
            if !claude
                && params.is_some()
                && super::proto::field(decl, "parametersJsonSchema").is_some()
            {
                out.push_str(&format!(
                    "* {at}: parameters and parameters_json_schema are mutually exclusive\n"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "request.tools[0].function_declarations[3].parameters";
    const G: &str = "GenerateContentRequest.tools[0].function_declarations[3].parameters";

    fn parse(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        parse_errors(v, P, &mut out);
        out.into_iter().map(|(_, d)| d).collect()
    }

    fn semantic(v: &Value) -> String {
        let mut out = String::new();
        semantic_lines(v, G, false, &mut out);
        out
    }

    #[test]
    fn unknown_keys_are_named_with_map_entry_paths() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": "string"},
            "c": {"type": "object", "patternProperties": {"x": {}}},
        }, "additionalProperties": false, "$schema": "x"});
        assert_eq!(
            parse(&s),
            vec![
                "Invalid JSON payload received. Unknown name \"patternProperties\" at 'request.tools[0].function_declarations[3].parameters.properties[2].value': Cannot find field.".to_owned(),
                "Invalid JSON payload received. Unknown name \"additionalProperties\" at 'request.tools[0].function_declarations[3].parameters': Cannot find field.".to_owned(),
                "Invalid JSON payload received. Unknown name \"$schema\" at 'request.tools[0].function_declarations[3].parameters': Cannot find field.".to_owned(),
            ]
        );
        // Nested in items and anyOf; snake_case spellings are the same keys.
        let s = json!({"type": "array", "items": {"any_of": [{"type": "string", "const": "x"}], "max_items": 3}});
        assert_eq!(
            parse(&s),
            vec!["Invalid JSON payload received. Unknown name \"const\" at 'request.tools[0].function_declarations[3].parameters.items.any_of[0]': Cannot find field.".to_owned()]
        );
        // Every allowed key passes.
        let all = json!({"type": "OBJECT", "format": "f", "title": "t", "description": "d", "nullable": true,
            "enum": ["a"], "maxItems": 1, "minItems": 0, "properties": {"a": {"type": "string"}}, "required": ["a"],
            "minProperties": 0, "maxProperties": 3, "minLength": 0, "maxLength": 4, "pattern": "x", "example": {"any": 1},
            "anyOf": [{"type": "string"}], "propertyOrdering": ["a"], "default": null, "items": {"type": "string"},
            "minimum": 0, "maximum": 9});
        assert!(parse(&all).is_empty());
    }

    #[test]
    fn type_must_name_the_enum() {
        for ok in ["string", "STRING", "Object", "null", "integer"] {
            assert!(parse(&json!({ "type": ok })).is_empty(), "{ok}");
        }
        assert_eq!(
            parse(&json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})),
            vec!["Invalid value at 'request.tools[0].function_declarations[3].parameters.properties[0].value.type' (type.googleapis.com/google.cloud.aiplatform.master.Type), [\"string\",\"null\"]".to_owned()]
        );
        assert_eq!(
            parse(&json!({"type": "strin"})),
            vec!["Invalid value at 'request.tools[0].function_declarations[3].parameters.type' (type.googleapis.com/google.cloud.aiplatform.master.Type), \"strin\"".to_owned()]
        );
        assert_eq!(
            parse(&json!("object")),
            vec!["Invalid value at 'request.tools[0].function_declarations[3].parameters' (type.googleapis.com/google.cloud.aiplatform.master.Schema), \"object\"".to_owned()]
        );
    }

    #[test]
    fn whole_request_lines() {
        let req = json!({"tools": [
        {"googleSearch": {}},
        {"functionDeclarations": [
            {"name": "ok", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}},
            {"name": "both", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
             "parametersJsonSchema": {"type": "object"}},
            {"name": "bad", "parameters": {"type": "object", "properties": {"command": {}}}},
            {"name": "json", "parametersJsonSchema": {"type": "object", "properties": {"x": {}}, "additionalProperties": false}}
        ]}]});
        assert_eq!(
            request_lines(&req, false),
            concat!(
                "* GenerateContentRequest.tools[1].function_declarations[1]: parameters and parameters_json_schema are mutually exclusive\n",
                "* GenerateContentRequest.tools[1].function_declarations[2].parameters.properties[command].type: must be specified when not using one_of, any_of or all_of fields\n",
            )
        );
        assert_eq!(
            request_lines(&req, true),
            "* GenerateContentRequest.tools[1].function_declarations[2].parameters.properties[command].type: must be specified when not using one_of, any_of or all_of fields\n"
        );
    }

    #[test]
    fn semantic_rules_one_line_each() {
        let s = json!({"type": "object", "properties": {
            "command": {"description": "no type"},
            "opts": {"type": "object", "properties": {}},
            "n": {"type": "integer", "enum": ["1", "2"]},
            "list": {"type": "array", "items": {"description": "no type either"}},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "s": {"type": "string", "enum": ["a"]},
        }, "required": ["command", "missing"]});
        assert_eq!(
            semantic(&s),
            concat!(
                "* GenerateContentRequest.tools[0].function_declarations[3].parameters.required[1]: property is not defined\n",
                "* GenerateContentRequest.tools[0].function_declarations[3].parameters.properties[command].type: must be specified when not using one_of, any_of or all_of fields\n",
                "* GenerateContentRequest.tools[0].function_declarations[3].parameters.properties[opts].properties: should be non-empty for OBJECT type\n",
                "* GenerateContentRequest.tools[0].function_declarations[3].parameters.properties[n].enum: only allowed for STRING type\n",
                "* GenerateContentRequest.tools[0].function_declarations[3].parameters.properties[list].items.type: must be specified when not using one_of, any_of or all_of fields\n",
            )
        );
        // A clean schema, and the root may omit its type.
        assert_eq!(
            semantic(
                &json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]})
            ),
            ""
        );
        assert_eq!(semantic(&json!({})), "");
        // `required` without properties: every name is undefined.
        assert_eq!(
            semantic(&json!({"type": "object", "required": ["x"]})),
            "* GenerateContentRequest.tools[0].function_declarations[3].parameters.required[0]: property is not defined\n"
        );
    }
}
