//! Requests checked against Zoom's own OpenAPI description before any call, plus the rules
//! its schemas do not say (the `start_time` forms, the passcode alphabet).

use std::sync::LazyLock;

use super::profile;
use crate::domain::error::ApiError;

/// Zoom's published description of the endpoints we call (structure only).
pub const ZOOM_OPENAPI: &str = include_str!("../../zoom/meetings-api-subset.openapi.json");

static ZOOM_SPEC: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(ZOOM_OPENAPI).unwrap_or_default());

/// Zoom's description, parsed once.
pub fn zoom_spec() -> &'static serde_json::Value {
    &ZOOM_SPEC
}

fn request_schema(path: &str, method: &str) -> Option<&'static serde_json::Value> {
    ZOOM_SPEC
        .get("paths")?
        .get(path)?
        .get(method)?
        .get("requestBody")?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

/// Zoom's schemas are OpenAPI 3.0 schema objects, a draft-4 dialect. Formats are not checked:
/// Zoom calls `start_time` a date-time but also takes local times without `Z` (checked below).
fn compile(schema: Option<&serde_json::Value>) -> Option<jsonschema::Validator> {
    let compiled = jsonschema::draft4::options()
        .should_validate_formats(false)
        .build(schema?);
    if let Err(e) = &compiled {
        tracing::error!(error = %e, "Zoom's schema does not compile; validation is off");
    }
    compiled.ok()
}

static CREATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/users/{userId}/meetings", "post")));

static UPDATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/meetings/{meetingId}", "patch")));

static LIVESTREAM_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/meetings/{meetingId}/livestream", "patch")));

/// `{field, message}` for a validation failure; `field` is a dotted path (`settings.audio`).
pub(crate) fn field_error(field: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "field": field, "message": message })
}

pub(crate) fn validation_failed(errors: Vec<serde_json::Value>) -> ApiError {
    let mut fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    fields.dedup();
    ApiError::validation(format!(
        "The request does not match Zoom's schema: {}.",
        fields.join(", ")
    ))
    .with_extra(serde_json::json!({ "errors": errors }))
}

fn schema_errors(
    validator: &jsonschema::Validator,
    body: &serde_json::Value,
) -> Vec<serde_json::Value> {
    validator
        .iter_errors(body)
        .take(10)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let mut path: Vec<String> = pointer
                .split('/')
                .filter(|p| !p.is_empty())
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect();
            // A missing property is reported on its parent object: name the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind()
                && let Some(name) = property.as_str()
            {
                path.push(name.to_owned());
            }
            let field = if path.is_empty() {
                "(body)".to_owned()
            } else {
                path.join(".")
            };
            // `masked` leaves the refused value out: it may be long, or a passcode.
            field_error(&field, &e.masked().to_string())
        })
        .collect()
}

/// Zoom's passcode rule: at most 10 of `[a-z A-Z 0-9 @ - _ *]`.
fn valid_meeting_password(password: &str) -> bool {
    password.chars().count() <= profile::PASSCODE_MAX_CHARS
        && password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || profile::PASSCODE_SYMBOLS.contains(&c))
}

/// Validates a create/update meeting body against Zoom's schema and the `start_time` and
/// passcode rules. Returns a warning when `start_time` ends in `Z` and a `timezone` is given
/// (Zoom then ignores the timezone).
pub fn validate_meeting(
    body: &serde_json::Value,
    create: bool,
) -> Result<Option<String>, ApiError> {
    if !body.is_object() {
        return Err(validation_failed(vec![field_error(
            "(body)",
            "The body must be a JSON object (Zoom's meeting fields).",
        )]));
    }
    let validator = if create {
        &*CREATE_VALIDATOR
    } else {
        &*UPDATE_VALIDATOR
    };
    let mut errors = validator
        .as_ref()
        .map(|v| schema_errors(v, body))
        .unwrap_or_default();
    let named =
        |errors: &[serde_json::Value], field: &str| errors.iter().any(|e| e["field"] == field);
    let mut warning = None;
    if let Some(start) = body.get("start_time").and_then(|v| v.as_str()) {
        if !is_zoom_start_time(start) {
            errors.push(field_error(
                "start_time",
                "must be yyyy-MM-ddTHH:mm:ssZ (UTC) or yyyy-MM-ddTHH:mm:ss (local time in `timezone`)",
            ));
        } else if start.ends_with('Z')
            && body
                .get("timezone")
                .and_then(|v| v.as_str())
                .is_some_and(|t| !t.is_empty())
        {
            warning = Some("start_time ends in Z (UTC), so Zoom ignores `timezone`; drop the Z to mean local time in that timezone.".to_owned());
        }
    }
    if let Some(password) = body.get("password").and_then(|v| v.as_str())
        && !valid_meeting_password(password)
        && !named(&errors, "password")
    {
        errors.push(field_error(
            "password",
            "must be at most 10 characters of a-z, A-Z, 0-9, @, -, _ and *",
        ));
    }
    if errors.is_empty() {
        Ok(warning)
    } else {
        Err(validation_failed(errors))
    }
}

pub fn validate_livestream(body: &serde_json::Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(validation_failed(vec![field_error(
            "(body)",
            "The body must be a JSON object with stream_url, stream_key and page_url.",
        )]));
    }
    checked(LIVESTREAM_VALIDATOR.as_ref(), body)
}

/// `Ok` when `body` meets the schema (or there is none to check against).
fn checked(
    validator: Option<&jsonschema::Validator>,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    let errors = validator
        .map(|v| schema_errors(v, body))
        .unwrap_or_default();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(validation_failed(errors))
    }
}

/// Compiled schemas of the catalogue's bodies, by the schema's address (they are static).
static BODY_VALIDATORS: LazyLock<
    std::sync::Mutex<std::collections::HashMap<usize, Option<&'static jsonschema::Validator>>>,
> = LazyLock::new(Default::default);

/// Validates a body against one of Zoom's request schemas (from its description).
pub fn validate_body(
    schema: &'static serde_json::Value,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(validation_failed(vec![field_error(
            "(body)",
            "The body must be a JSON object (Zoom's fields).",
        )]));
    }
    let validator = *BODY_VALIDATORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(schema as *const _ as usize)
        .or_insert_with(|| compile(Some(schema)).map(|v| &*Box::leak(Box::new(v))));
    checked(validator, body)
}

/// `yyyy-MM-ddTHH:mm:ss` with an optional `Z`, a real calendar date and time.
pub fn is_zoom_start_time(value: &str) -> bool {
    let local = value.strip_suffix('Z').unwrap_or(value);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(local, &format).is_ok()
}
