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
/// accept:
///
/// - keywords outside Gemini's subset are dropped (`$schema`,
///   `additionalProperties`, `$id`, `examples`, `not`, `if`, `strict`, …);
/// - local `$ref`s (`#/$defs/X`, `#/definitions/X`) are inlined, at most
///   8 levels deep;
/// - `oneOf` becomes `anyOf`; `allOf` members are merged into their parent;
/// - a `null` type (in a `type` array or an `anyOf` member) becomes
///   `nullable: true`, and a `type` array keeps its first other type;
/// - `const` (a string) becomes a one-value `enum`; an `enum` with
///   non-string values is dropped (Gemini enums are strings);
/// - `format` is kept only where Gemini knows it (`enum`/`date-time` on
///   strings, `float`/`double`, `int32`/`int64`);
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

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn sanitize_node(node: &mut Value, defs: &Map<String, Value>, depth: u8) {
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
                    (Some(Value::Array(mine)), Value::Array(theirs)) if k == "required" => {
                        mine.extend(theirs)
                    }
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
            let first = types.iter().find(|t| *t != "null").cloned();
            match first {
                Some(t) => {
                    obj.insert("type".into(), t);
                }
                None => {
                    obj.remove("type");
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

    if let Some(c) = obj.remove("const") {
        if c.is_string() && !obj.contains_key("enum") {
            obj.insert("enum".into(), Value::Array(vec![c]));
        }
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        if !values.iter().all(Value::is_string) {
            obj.remove("enum");
        }
    }

    if let Some(format) = obj.get("format").and_then(Value::as_str) {
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let known = matches!(
            (ty, format),
            ("string", "enum" | "date-time")
                | ("number", "float" | "double")
                | ("integer", "int32" | "int64")
        );
        if !known {
            obj.remove("format");
        }
    }

    obj.retain(|k, _| SCHEMA_KEYS.contains(&k.as_str()));

    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for schema in props.values_mut() {
            sanitize_node(schema, defs, depth);
        }
    }
    match obj.get_mut("items") {
        Some(items @ Value::Object(_)) => sanitize_node(items, defs, depth),
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

    if let Some(Value::Array(required)) = obj.get("required") {
        let props = obj.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(
                |r| matches!((r.as_str(), props), (Some(name), Some(p)) if p.contains_key(name)),
            )
            .cloned()
            .collect();
        if kept.is_empty() {
            obj.remove("required");
        } else if kept.len() != required.len() {
            obj.insert("required".into(), Value::Array(kept));
        }
    }
}

/// Builds a function declaration from a client's tool, with its schema
/// cleaned by [`sanitize_schema`]. An object schema without properties is left
/// out: Gemini rejects `OBJECT` parameters whose `properties` are empty.
pub fn function_declaration(
    name: String,
    description: Option<String>,
    schema: Option<Value>,
) -> FunctionDeclaration {
    let parameters = schema
        .filter(|s| !s.is_null())
        .map(sanitize_schema)
        .filter(|s| {
            let empty_props = s
                .get("properties")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            !(s.get("type").and_then(Value::as_str) == Some("object") && empty_props)
                && s.as_object().is_some_and(|o| !o.is_empty())
        });
    FunctionDeclaration {
        name,
        description: description.filter(|d| !d.is_empty()),
        parameters,
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
                    "path": {"type": "string", "description": "file"},
                    "mode": {"type": "string", "enum": ["r", "w"], "nullable": true},
                    "count": {"type": "integer", "format": "int32"},
                    "kind": {"enum": ["file"]},
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
        let d = function_declaration(
            "now".into(),
            Some("time".into()),
            Some(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        );
        assert_eq!(d.parameters, None);
        let d = function_declaration("f".into(), Some(String::new()), None);
        assert_eq!(serde_json::to_value(d).unwrap(), json!({"name": "f"}));
    }
}
