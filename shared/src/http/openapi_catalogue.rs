//! `/openapi.json` entries of the actions catalogue: one operation per row, its query
//! parameters and body schema taken from Zoom's own description.

use serde_json::{Value, json};

use super::zoom_actions::route_of;
use crate::zoom::catalogue::{ACTIONS, Action, Shape};

fn responses(action: &Action) -> Value {
    let success = match (action.status, action.shape) {
        (204, _) => "Done (no body)".to_owned(),
        (_, Shape::List(key)) => {
            format!("`{{ \"{key}\": [..], \"next_cursor\" }}`: Zoom's items; `next_cursor` resumes")
        }
        (201, _) => "Zoom's created object".to_owned(),
        _ => "Zoom's answer".to_owned(),
    };
    let mut responses = json!({
        action.status.to_string(): { "description": success },
        "400": { "description": "validation_failed (nothing was sent to Zoom), cursor_expired, or Zoom's 4xx (zoom_error)" },
        "403": { "description": "zoom_scope_missing: the connection lacks a scope this action needs" },
        "404": { "description": "connection_not_found, zoom_not_found" },
        "409": { "description": "connection_needs_reauth / connection_revoked" },
        "429": { "description": "zoom_rate_limited (Retry-After)" },
    });
    if action.is_create() {
        responses["422"] = json!({ "description": "idempotency_key_reused" });
    }
    responses
}

fn operation(action: &Action) -> Value {
    let mut parameters = vec![
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }),
    ];
    for name in action.path_params() {
        parameters.push(json!({
            "name": name, "in": "path", "required": true, "schema": { "type": "string" },
            "description": "A number, or a UUID as Zoom gives it (percent-encoded twice when it holds a `/`)",
        }));
    }
    for param in action.query_params() {
        parameters.push(
            json!({ "name": param.name, "in": "query", "required": false, "schema": param.schema }),
        );
    }
    if action.is_create() {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string" },
            "description": "Retries with the same key and body return the first answer (24 h)",
        }));
    }
    let mut operation = json!({
        "operationId": action.name,
        "tags": ["zoom"],
        "summary": action.summary,
        "description": format!("Zoom's `{} {}`. Scopes (any of): {}.", action.method, action.zoom_path, action.scopes().join(", ")),
        "security": [{ "api_key": [] }],
        "parameters": parameters,
        "responses": responses(action),
    });
    if let Some(schema) = action.body_schema() {
        operation["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    operation
}

/// Adds every catalogue operation to the generated document.
pub fn add_catalogue(document: &mut Value) {
    for action in ACTIONS {
        document["paths"][route_of(action)][action.method.to_ascii_lowercase()] = operation(action);
    }
}
