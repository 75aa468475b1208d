//! The contract check of the connector's Zoom calls: every REST request the simulator
//! recorded, and its answer, against Zoom's own OpenAPI description.

use std::collections::HashSet;

use serde_json::Value;
use zoom_sim::ZoomSim;
use zoom_sim::contract::{
    load_zoom_openapi, match_path_template, openapi_request_schema, openapi_response_schema,
};

use crate::catalogue::zoom_calls;

/// Checks every request the connector sent to Zoom's REST API and every answer it got
/// against Zoom's OpenAPI description: the operation exists, the query names declared
/// parameters, a JSON body matches the request schema (with `Content-Type: application/json`
/// and a bearer token), and each answer matches the response schema of its status. Returns the
/// violations (empty when all is well).
pub fn contract_violations(sim: &ZoomSim) -> Vec<String> {
    let spec = load_zoom_openapi();
    let mut failures = Vec::new();
    for r in &zoom_calls(sim) {
        let what = format!("{} {}?{}", r.method, r.path, r.query);
        let Some(template) = match_path_template(&spec, &r.path) else {
            failures.push(format!("{what}: not in Zoom's description"));
            continue;
        };
        let method = r.method.to_ascii_lowercase();
        let Some(operation) = spec["paths"][&template].get(&method) else {
            failures.push(format!("{what}: {template} has no {method}"));
            continue;
        };
        if !r
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ") && a.len() > "Bearer ".len())
        {
            failures.push(format!("{what}: no bearer token"));
        }
        let declared: HashSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for (name, _) in url::form_urlencoded::parse(r.query.as_bytes()) {
            if !declared.contains(name.as_ref()) {
                failures.push(format!("{what}: undeclared query parameter {name}"));
            }
        }
        match openapi_request_schema(&spec, &template, &method) {
            Some(schema) if !r.body.is_empty() => {
                if !r
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json"))
                {
                    failures.push(format!("{what}: JSON body without application/json"));
                }
                match serde_json::from_slice::<Value>(&r.body) {
                    // Formats are not checked on requests: Zoom's schema calls `start_time` a
                    // date-time, but Zoom also takes local times without `Z` (ZOOM.md).
                    Ok(body) => failures.extend(schema_errors(&schema, &body, false, &what)),
                    Err(e) => failures.push(format!("{what}: body is not JSON: {e}")),
                }
            }
            Some(_) if operation["requestBody"]["required"] == true => {
                failures.push(format!("{what}: required body missing"));
            }
            None if !r.body.is_empty() => {
                failures.push(format!("{what}: body sent to an operation without one"));
            }
            _ => {}
        }
        if r.status >= 200 && r.status < 300 {
            match openapi_response_schema(&spec, &template, &method, r.status) {
                Some(schema) => match serde_json::from_slice::<Value>(&r.response_body) {
                    Ok(body) => failures.extend(schema_errors(&schema, &body, true, &what)),
                    Err(e) => failures.push(format!("{what}: answer is not JSON: {e}")),
                },
                None => {
                    if operation["responses"].get(r.status.to_string()).is_none() {
                        failures.push(format!("{what}: undocumented status {}", r.status));
                    }
                    if !r.response_body.is_empty() {
                        failures.push(format!("{what}: {} answer has a body", r.status));
                    }
                }
            }
        }
    }
    failures
}

/// Asserts [`contract_violations`] is empty; returns how many requests were checked.
pub fn check_contract(sim: &ZoomSim) -> usize {
    let failures = contract_violations(sim);
    assert!(
        failures.is_empty(),
        "contract violations:\n{}",
        failures.join("\n")
    );
    zoom_calls(sim).len()
}

fn schema_errors(schema: &Value, body: &Value, formats: bool, what: &str) -> Vec<String> {
    let validator = jsonschema::draft4::options()
        .should_validate_formats(formats)
        .build(schema)
        .expect("Zoom's schema compiles");
    validator
        .iter_errors(body)
        .map(|e| format!("{what}: {} at {}", e.masked(), e.instance_path()))
        .collect()
}
