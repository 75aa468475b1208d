//! Helpers for contract tests against Zoom's OpenAPI 3.0 description (the copy under
//! `shared/zoom/`, beside the library that reads it too). They extract plain JSON Schemas that a draft-4 validator understands
//! (OpenAPI 3.0 schema objects are a draft-4 dialect), so the callers pick their validator.

use serde_json::{Map, Value};

/// Zoom's OpenAPI description of the endpoints the connector uses, compiled in.
pub fn load_zoom_openapi() -> Value {
    const SPEC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/zoom/meetings-api-subset.openapi.json"
    ));
    // The fixture is checked in and covered by this crate's tests; a broken copy is a bug in
    // the repository, not bad input.
    serde_json::from_str(SPEC).expect("shared/zoom/meetings-api-subset.openapi.json is valid JSON")
}

fn operation<'a>(spec: &'a Value, path_template: &str, method: &str) -> Option<&'a Value> {
    spec.get("paths")?
        .get(path_template)?
        .get(method.to_ascii_lowercase())
}

/// The JSON schema of the `application/json` answer with `status` of an operation, with local
/// `$ref`s inlined and OpenAPI's `nullable` turned into JSON Schema. `None` when the operation
/// or status is not described or has no JSON body (e.g. 204).
pub fn openapi_response_schema(
    spec: &Value,
    path_template: &str,
    method: &str,
    status: u16,
) -> Option<Value> {
    let responses = operation(spec, path_template, method)?.get("responses")?;
    let response = responses.get(status.to_string())?;
    let response = resolve(spec, response, 0);
    let schema = json_content(&response)?.get("schema")?;
    Some(to_json_schema(spec, schema))
}

/// The JSON schema of an operation's `application/json` request body (same conversions).
pub fn openapi_request_schema(spec: &Value, path_template: &str, method: &str) -> Option<Value> {
    let body = operation(spec, path_template, method)?.get("requestBody")?;
    let body = resolve(spec, body, 0);
    let schema = json_content(&body)?.get("schema")?;
    Some(to_json_schema(spec, schema))
}

fn json_content(object: &Value) -> Option<&Value> {
    let content = object.get("content")?.as_object()?;
    content.get("application/json").or_else(|| {
        content
            .iter()
            .find(|(media, _)| media.starts_with("application/json"))
            .map(|(_, v)| v)
    })
}

/// Maps a concrete API path (`/meetings/123`, `/v2/meetings/123?x=1`, or a full URL) to the
/// spec's template (`/meetings/{meetingId}`). Literal segments beat parameters.
pub fn match_path_template(spec: &Value, path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = match path.find("://") {
        Some(scheme_end) => {
            let after = &path[scheme_end + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => path,
    };
    let templates = spec.get("paths")?.as_object()?;
    let candidates = [Some(path), path.strip_prefix("/v2")];
    for candidate in candidates.into_iter().flatten() {
        let segments: Vec<&str> = candidate.trim_end_matches('/').split('/').collect();
        let best = templates
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literals = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        literals += 1;
                    } else {
                        return None;
                    }
                }
                Some((literals, template))
            })
            .max_by_key(|(literals, _)| *literals);
        if let Some((_, template)) = best {
            return Some(template.clone());
        }
    }
    None
}

const MAX_REF_DEPTH: usize = 32;

/// Follows a local `$ref` (`#/components/...`) if the object is one.
fn resolve(spec: &Value, value: &Value, depth: usize) -> Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) if depth < MAX_REF_DEPTH => match reference.strip_prefix('#') {
            Some(pointer) => match spec.pointer(pointer) {
                Some(target) => resolve(spec, target, depth + 1),
                None => value.clone(),
            },
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Inlines `$ref`s and rewrites `nullable: true` as a `null` type alternative.
fn to_json_schema(spec: &Value, schema: &Value) -> Value {
    convert(spec, schema, 0)
}

/// Converts one schema object; only the keywords that hold subschemas are descended into, so
/// data (`enum`, `default`, `example`) and property names are never mistaken for schemas.
fn convert(spec: &Value, schema: &Value, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if depth >= MAX_REF_DEPTH {
        return schema.clone();
    }
    if map.contains_key("$ref") {
        let target = resolve(spec, schema, 0);
        if target.get("$ref").is_none() {
            return convert(spec, &target, depth + 1);
        }
    }
    let mut out = Map::new();
    for (key, child) in map {
        let converted = match (key.as_str(), child) {
            ("properties" | "patternProperties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(name, sub)| (name.clone(), convert(spec, sub, depth + 1)))
                    .collect(),
            ),
            ("allOf" | "anyOf" | "oneOf" | "items", Value::Array(subs)) => Value::Array(
                subs.iter()
                    .map(|sub| convert(spec, sub, depth + 1))
                    .collect(),
            ),
            ("items" | "not" | "additionalProperties", Value::Object(_)) => {
                convert(spec, child, depth + 1)
            }
            _ => child.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if out.remove("nullable") == Some(Value::Bool(true)) {
        make_nullable(&mut out);
    }
    Value::Object(out)
}

fn make_nullable(schema: &mut Map<String, Value>) {
    match schema.get("type").cloned() {
        Some(Value::String(kind)) => {
            schema.insert(
                "type".into(),
                Value::Array(vec![Value::String(kind), Value::from("null")]),
            );
        }
        Some(Value::Array(mut kinds)) => {
            if !kinds.contains(&Value::from("null")) {
                kinds.push(Value::from("null"));
            }
            schema.insert("type".into(), Value::Array(kinds));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_match() {
        let spec = load_zoom_openapi();
        assert_eq!(
            match_path_template(&spec, "/meetings/123").as_deref(),
            Some("/meetings/{meetingId}")
        );
        assert_eq!(
            match_path_template(&spec, "/v2/users/me/meetings?page_size=3").as_deref(),
            Some("/users/{userId}/meetings")
        );
        assert_eq!(
            match_path_template(&spec, "https://api.zoom.us/v2/meetings/1/livestream").as_deref(),
            Some("/meetings/{meetingId}/livestream")
        );
        assert_eq!(match_path_template(&spec, "/nothing/here"), None);
    }

    #[test]
    fn schemas_are_found() {
        let spec = load_zoom_openapi();
        assert!(openapi_response_schema(&spec, "/users/{userId}", "GET", 200).is_some());
        assert!(openapi_response_schema(&spec, "/meetings/{meetingId}", "patch", 204).is_none());
        assert!(
            openapi_request_schema(&spec, "/meetings/{meetingId}/livestream", "PATCH").is_some()
        );
        assert!(openapi_request_schema(&spec, "/users/{userId}", "get").is_none());
    }

    #[test]
    fn nullable_and_refs_are_converted() {
        let spec = json!({
            "components": {"schemas": {"Id": {"type": "integer", "nullable": true}}},
            "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"id": {"$ref": "#/components/schemas/Id"}, "s": {"type": "string", "enum": ["a"], "nullable": true}}
            }}}}}}}}
        });
        let schema = openapi_response_schema(&spec, "/x", "get", 200).unwrap_or_default();
        assert_eq!(
            schema["properties"]["id"],
            json!({"type": ["integer", "null"]})
        );
        assert_eq!(
            schema["properties"]["s"],
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
    }
}
