//! Tool schemas: a client's JSON Schema turned into the OpenAPI 3.0 subset
//! Gemini's function `parameters` accept.

use serde_json::{Map, Value};

use super::gemini::FunctionDeclaration;

/// JSON-schema keywords Gemini's function `parameters` (an OpenAPI 3.0
/// subset) accepts; every other keyword is dropped.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "anyOf",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

/// How many `$ref`s deep a schema is inlined; deeper (recursive) references
/// become a bare `{"type":"object"}`.
const MAX_REF_DEPTH: u8 = 8;

/// Rewrites a client's JSON Schema into what Gemini's function `parameters`
/// accept (Google's rules: every schema names a `type` or an `anyOf`; an
/// `enum` only on strings; an `OBJECT`'s `properties` not empty; an `ARRAY`
/// has `items`; only the OpenAPI 3.0 keywords of [`SCHEMA_KEYS`]), keeping
/// what meaning it can:
///
/// - local `$ref`s (`#/$defs/X`, `#/definitions/X`) are inlined, at most
///   8 levels deep; `oneOf` becomes `anyOf`; `allOf` members are merged;
/// - a `null` type (in a `type` array or an `anyOf` member) becomes
///   `nullable: true`; a `type` array of several types becomes an `anyOf`;
/// - a schema without a type gets the one its keywords imply (`properties`
///   → object, `items` → array, string keywords → string, bounds → number);
///   an "any value" schema (`true`, `{}`, a bare description) becomes a
///   string described as any JSON value;
/// - `const` and non-string `enum`s: a string `const` becomes a one-value
///   `enum`, others become a description hint; an integer's exclusive
///   bounds become inclusive ones;
/// - dropped constraints Gemini has no keyword for (`format`s it does not
///   know, exclusive bounds of numbers, `multipleOf`, `uniqueItems`, …)
///   are said in the `description`, so the model still reads them;
/// - `required` keeps only names that are in `properties`.
pub fn sanitize_schema(mut schema: Value) -> Value {
    let mut defs = Map::new();
    if let Value::Object(root) = &mut schema {
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(map)) = root.remove(key) {
                defs.extend(map);
            }
        }
    }
    sanitize_node(&mut schema, &defs, 0);
    schema
}

/// The `parameters` of a function declaration for `schema`, or `None` when
/// it takes none: Gemini rejects an `OBJECT` whose `properties` are empty.
pub fn to_parameters(schema: Value) -> Option<Value> {
    Some(schema)
        .filter(|s| !s.is_null())
        .map(sanitize_schema)
        .filter(|s| {
            let empty_props = s.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
            !(s.get("type").and_then(Value::as_str) == Some("object") && empty_props) && s.as_object().is_some_and(|o| !o.is_empty())
        })
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

/// Adds `hint` to the schema's description (in parentheses after it).
fn hint(obj: &mut Map<String, Value>, hint: &str) {
    let text = match obj.get("description").and_then(Value::as_str).filter(|d| !d.is_empty()) {
        Some(d) => format!("{d} ({hint})"),
        None => hint.to_string(),
    };
    obj.insert("description".into(), Value::String(text));
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What an "any JSON value" schema becomes.
fn any_value() -> Value {
    serde_json::json!({"type": "string", "description": "any JSON value"})
}

fn sanitize_node(node: &mut Value, defs: &Map<String, Value>, depth: u8) {
    if let Value::Bool(_) = node {
        *node = any_value();
        return;
    }
    let Value::Object(obj) = node else { return };

    if let Some(reference) = obj.remove("$ref") {
        let target = reference
            .as_str()
            .filter(|r| r.starts_with("#/") && depth < MAX_REF_DEPTH)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|name| defs.get(name));
        match target {
            Some(Value::Object(target)) => {
                // Sibling keywords (usually `description`) win over the target's.
                for (k, v) in target {
                    if !obj.contains_key(k) {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                return sanitize_node(node, defs, depth + 1);
            }
            _ => {
                obj.entry("type").or_insert_with(|| "object".into());
            }
        }
    }

    if let Some(Value::Array(members)) = obj.remove("allOf") {
        for mut member in members {
            sanitize_node(&mut member, defs, depth);
            let Value::Object(member) = member else {
                continue;
            };
            for (k, v) in member {
                match (obj.get_mut(&k), v) {
                    (Some(Value::Object(mine)), Value::Object(theirs)) if k == "properties" => {
                        for (name, s) in theirs {
                            mine.entry(name).or_insert(s);
                        }
                    }
                    (Some(Value::Array(mine)), Value::Array(theirs)) if k == "required" => mine.extend(theirs),
                    (Some(_), _) => {}
                    (None, v) => {
                        obj.insert(k, v);
                    }
                }
            }
        }
    }

    if let Some(one_of) = obj.remove("oneOf") {
        obj.entry("anyOf").or_insert(one_of);
    }

    if let Some(Value::Array(mut any)) = obj.remove("anyOf") {
        let before = any.len();
        any.retain(|m| !is_null_schema(m));
        if any.len() < before {
            obj.insert("nullable".into(), true.into());
        }
        if any.len() == 1 {
            // `anyOf: [X, null]` (pydantic's Optional) is just a nullable X.
            if let Some(Value::Object(only)) = any.pop() {
                for (k, v) in only {
                    if !obj.contains_key(&k) {
                        obj.insert(k, v);
                    }
                }
            }
            return sanitize_node(node, defs, depth);
        }
        if !any.is_empty() {
            for member in &mut any {
                sanitize_node(member, defs, depth);
            }
            obj.insert("anyOf".into(), Value::Array(any));
        }
    }

    match obj.get_mut("type") {
        Some(Value::Array(types)) => {
            let nullable = types.iter().any(|t| t == "null");
            let mut kinds: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            match kinds.len() {
                0 => {
                    obj.remove("type");
                }
                1 => {
                    obj.insert("type".into(), kinds.remove(0));
                }
                // Several types: one schema each.
                _ => {
                    obj.remove("type");
                    let members = kinds.into_iter().map(|t| serde_json::json!({ "type": t })).collect();
                    obj.insert("anyOf".into(), Value::Array(members));
                }
            }
            if nullable {
                obj.insert("nullable".into(), true.into());
            }
        }
        Some(Value::String(t)) if t == "null" => {
            obj.remove("type");
            obj.insert("nullable".into(), true.into());
        }
        _ => {}
    }
    let ty = |obj: &Map<String, Value>| obj.get("type").and_then(Value::as_str).map(str::to_ascii_lowercase);

    if let Some(c) = obj.remove("const") {
        if c.is_string() && !obj.contains_key("enum") {
            obj.insert("enum".into(), Value::Array(vec![c]));
        } else {
            hint(obj, &format!("always {}", show(&c)));
        }
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        let strings = values.iter().all(Value::is_string);
        let typed_other = ty(obj).is_some_and(|t| t != "string");
        if !strings || typed_other {
            let list = values.iter().map(show).collect::<Vec<_>>().join(", ");
            obj.remove("enum");
            hint(obj, &format!("one of: {list}"));
        }
    }

    // Exclusive bounds: inclusive ones for integers, a hint for numbers.
    for (key, inclusive, word, step) in [("exclusiveMinimum", "minimum", "greater than", 1i64), ("exclusiveMaximum", "maximum", "less than", -1)] {
        let Some(bound) = obj.remove(key) else { continue };
        match (ty(obj).as_deref(), bound.as_i64(), bound.as_f64()) {
            (Some("integer"), Some(n), _) => {
                obj.insert(inclusive.into(), (n + step).into());
            }
            (_, _, Some(x)) => hint(obj, &format!("{word} {x}")),
            _ => {}
        }
    }
    if let Some(m) = obj.remove("multipleOf") {
        hint(obj, &format!("a multiple of {}", show(&m)));
    }
    if obj.remove("uniqueItems") == Some(Value::Bool(true)) {
        hint(obj, "items are unique");
    }

    if let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_string) {
        let known = matches!(
            (ty(obj).as_deref().unwrap_or(""), format.as_str()),
            ("string", "enum" | "date-time") | ("number", "float" | "double") | ("integer", "int32" | "int64")
        );
        if !known {
            obj.remove("format");
            hint(obj, &format!("format: {format}"));
        }
    }

    obj.retain(|k, _| SCHEMA_KEYS.contains(&k.as_str()));

    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        // A `false` schema is a property that may never be given.
        props.retain(|_, s| *s != Value::Bool(false));
        for schema in props.values_mut() {
            sanitize_node(schema, defs, depth);
        }
    }
    match obj.get_mut("items") {
        Some(items @ (Value::Object(_) | Value::Bool(_))) => sanitize_node(items, defs, depth),
        // Tuple form: Gemini has one `items` schema; keep the first.
        Some(Value::Array(tuple)) => {
            let first = tuple.drain(..).next();
            match first {
                Some(mut first) => {
                    sanitize_node(&mut first, defs, depth);
                    obj.insert("items".into(), first);
                }
                None => {
                    obj.remove("items");
                }
            }
        }
        _ => {}
    }

    if obj.get("properties").and_then(Value::as_object).is_some_and(Map::is_empty) {
        obj.remove("properties");
    }
    if let Some(Value::Array(required)) = obj.get("required") {
        let props = obj.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(|r| matches!((r.as_str(), props), (Some(name), Some(p)) if p.contains_key(name)))
            .cloned()
            .collect();
        if kept.is_empty() {
            obj.remove("required");
        } else if kept.len() != required.len() {
            obj.insert("required".into(), Value::Array(kept));
        }
    }

    // Every schema names a type (or an anyOf): the one its keywords imply.
    if !obj.contains_key("type") && !obj.contains_key("anyOf") {
        let has = |keys: &[&str]| keys.iter().any(|k| obj.contains_key(*k));
        let implied = if has(&["properties", "required", "minProperties", "maxProperties"]) {
            "object"
        } else if has(&["items", "minItems", "maxItems"]) {
            "array"
        } else if has(&["enum", "minLength", "maxLength", "pattern"]) {
            "string"
        } else if has(&["minimum", "maximum"]) {
            "number"
        } else {
            hint(obj, "any JSON value");
            "string"
        };
        obj.insert("type".into(), implied.into());
    }
    if ty(obj).as_deref() == Some("array") && !obj.contains_key("items") {
        obj.insert("items".into(), any_value());
    }
}

/// Builds a function declaration from a client's tool. The client's schema
/// goes as `parametersJsonSchema`, as Gemini CLI sends it; the profiles
/// whose backends need the `parameters` form get it from [`to_parameters`]
/// when the call is made (`upstream::envelope`).
pub fn function_declaration(name: String, description: Option<String>, schema: Option<Value>) -> FunctionDeclaration {
    FunctionDeclaration {
        name,
        description: description.filter(|d| !d.is_empty()),
        parameters: None,
        parameters_json_schema: schema.filter(|s| s.as_object().is_some_and(|o| !o.is_empty())),
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_strips_unsupported_keywords() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {"type": "string", "description": "file", "format": "uri", "examples": ["/a"]},
                "mode": {"type": ["string", "null"], "enum": ["r", "w"]},
                "count": {"type": "integer", "format": "int32", "exclusiveMinimum": 0},
                "kind": {"const": "file"},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}},
                "additionalProperties": {"type": "boolean"}
            },
            "required": ["path", "missing"]
        });
        assert_eq!(
            sanitize_schema(schema),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file (format: uri)"},
                    "mode": {"type": "string", "enum": ["r", "w"], "nullable": true},
                    "count": {"type": "integer", "format": "int32", "minimum": 1},
                    "kind": {"type": "string", "enum": ["file"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    // A *property* called additionalProperties is kept.
                    "additionalProperties": {"type": "boolean"}
                },
                "required": ["path"]
            })
        );
    }

    #[test]
    fn schema_inlines_refs_and_flattens_combinators() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
            },
            "properties": {
                "at": {"$ref": "#/$defs/Point", "description": "where"},
                "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "opt"},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "both": {"allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}}
                ]},
                "list": {"$ref": "#/$defs/Node"},
                "ext": {"$ref": "https://example.com/schema.json"}
            }
        });
        let out = sanitize_schema(schema);
        let props = &out["properties"];
        assert_eq!(
            props["at"],
            json!({"type": "object", "description": "where", "properties": {"x": {"type": "number"}}, "required": ["x"]})
        );
        assert_eq!(
            props["maybe"],
            json!({"type": "string", "description": "opt", "nullable": true})
        );
        assert_eq!(
            props["either"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            props["both"],
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]})
        );
        assert_eq!(props["ext"], json!({"type": "object"}));
        // The recursive reference is cut off, not expanded forever.
        let mut depth = 0;
        let mut node = &props["list"];
        while let Some(next) = node.get("properties").and_then(|p| p.get("next")) {
            node = next;
            depth += 1;
        }
        assert!(depth <= MAX_REF_DEPTH as usize + 1, "depth {depth}");
        assert!(out.get("$defs").is_none());
    }

    #[test]
    fn declaration_drops_empty_object_parameters() {
        let empty = json!({"type": "object", "properties": {}, "additionalProperties": false});
        assert_eq!(to_parameters(empty.clone()), None);
        let d = function_declaration("now".into(), Some("time".into()), Some(empty.clone()));
        assert_eq!(d.parameters_json_schema, Some(empty), "the client's own schema goes as parametersJsonSchema");
        let d = function_declaration("f".into(), Some(String::new()), None);
        assert_eq!(serde_json::to_value(d).unwrap(), json!({"name": "f"}));
    }

    /// Google's rules for a function's `parameters` (the Schema message of
    /// the Gemini API reference, and the 400s it answers: "type: must be
    /// specified when not using one_of, any_of or all_of fields",
    /// "properties: should be non-empty for OBJECT type", "enum: only allowed
    /// for STRING type", "required[i]: property is not defined", an ARRAY
    /// needs `items`, unknown keywords are "Cannot find field").
    fn google_refuses(s: &Value, path: &str, errs: &mut Vec<String>) {
        let Some(obj) = s.as_object() else {
            errs.push(format!("{path}: not an object"));
            return;
        };
        for k in obj.keys() {
            if !SCHEMA_KEYS.contains(&k.as_str()) {
                errs.push(format!("{path}: Unknown name \"{k}\": Cannot find field"));
            }
        }
        let ty = match obj.get("type") {
            None if obj.contains_key("anyOf") => None,
            None => {
                errs.push(format!("{path}.type: must be specified when not using one_of, any_of or all_of fields"));
                None
            }
            Some(Value::String(t)) if ["string", "number", "integer", "boolean", "array", "object", "null"].contains(&t.to_ascii_lowercase().as_str()) => Some(t.to_ascii_lowercase()),
            Some(other) => {
                errs.push(format!("{path}.type: invalid value {other}"));
                None
            }
        };
        if let Some(props) = obj.get("properties") {
            match props.as_object() {
                Some(p) if p.is_empty() => errs.push(format!("{path}.properties: should be non-empty for OBJECT type")),
                Some(p) => p.iter().for_each(|(k, v)| google_refuses(v, &format!("{path}.properties[{k}]"), errs)),
                None => errs.push(format!("{path}.properties: not an object")),
            }
        }
        if let Some(items) = obj.get("items") {
            google_refuses(items, &format!("{path}.items"), errs);
        } else if ty.as_deref() == Some("array") {
            errs.push(format!("{path}.items: missing field"));
        }
        if let Some(e) = obj.get("enum") {
            if ty.as_deref() != Some("string") || !e.as_array().is_some_and(|v| v.iter().all(Value::is_string)) {
                errs.push(format!("{path}.enum: only allowed for STRING type"));
            }
        }
        if let Some(req) = obj.get("required").and_then(Value::as_array) {
            let props = obj.get("properties").and_then(Value::as_object);
            for (i, r) in req.iter().enumerate() {
                if !r.as_str().is_some_and(|n| props.is_some_and(|p| p.contains_key(n))) {
                    errs.push(format!("{path}.required[{i}]: property is not defined"));
                }
            }
        }
        for (i, m) in obj.get("anyOf").and_then(Value::as_array).into_iter().flatten().enumerate() {
            google_refuses(m, &format!("{path}.anyOf[{i}]"), errs);
        }
    }

    /// Every tool schema the real clients send (Claude Code 2.1.197, Codex
    /// 0.171.0, Gemini CLI 0.61.0, captured; common MCP servers) becomes a
    /// `parameters` schema Google accepts, and keeps its properties.
    #[test]
    fn real_client_schemas_become_schemas_google_accepts() {
        let corpus: Value = serde_json::from_str(include_str!("testdata/tool-schemas.json")).unwrap();
        let mut checked = 0;
        for (client, tools) in corpus.as_object().unwrap() {
            for (name, schema) in tools.as_object().unwrap() {
                let Some(params) = to_parameters(schema.clone()) else {
                    // Only a function without arguments has no parameters.
                    let props = schema.get("properties").and_then(Value::as_object);
                    assert!(props.is_none_or(Map::is_empty), "{client} {name}: parameters dropped");
                    continue;
                };
                let mut errs = Vec::new();
                google_refuses(&params, "parameters", &mut errs);
                assert!(errs.is_empty(), "{client} {name}: Google would refuse:\n{}\n{params:#}", errs.join("\n"));
                let before: Vec<&String> = schema.get("properties").and_then(Value::as_object).map(|p| p.keys().collect()).unwrap_or_default();
                let after: Vec<&String> = params.get("properties").and_then(Value::as_object).map(|p| p.keys().collect()).unwrap_or_default();
                let kept_all = before.iter().all(|k| after.contains(k) || schema["properties"][k.as_str()] == Value::Bool(false));
                assert!(kept_all, "{client} {name}: lost properties {before:?} → {after:?}");
                checked += 1;
            }
        }
        assert!(checked >= 50, "only {checked} schemas checked");
    }

    #[test]
    fn any_value_and_type_unions_are_kept_as_meaning() {
        let out = sanitize_schema(json!({
            "type": "object",
            "properties": {
                "args": {"description": "anything the skill takes"},
                "blob": true,
                "id": {"type": ["string", "integer", "null"]},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "ratio": {"type": "number", "exclusiveMaximum": 1, "multipleOf": 0.5},
                "list": {"type": "array"},
                "empty": {"type": "object", "properties": {}}
            }
        }));
        let p = &out["properties"];
        assert_eq!(p["args"], json!({"type": "string", "description": "anything the skill takes (any JSON value)"}));
        assert_eq!(p["blob"], json!({"type": "string", "description": "any JSON value"}));
        assert_eq!(p["id"], json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": true}));
        assert_eq!(p["level"], json!({"type": "integer", "description": "one of: 1, 2, 3"}));
        assert_eq!(p["ratio"], json!({"type": "number", "description": "less than 1 (a multiple of 0.5)"}));
        assert_eq!(p["list"]["items"]["type"], "string");
        assert_eq!(p["empty"], json!({"type": "object"}));
        let mut errs = Vec::new();
        google_refuses(&out, "parameters", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }
}
