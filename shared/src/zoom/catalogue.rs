//! The actions catalogue: every Zoom action a connection offers, as data. One row names the
//! route below `/connections/{id}/zoom`, the Zoom operation it calls and how its answer is
//! shaped; Zoom's own description (`shared/zoom/meetings-api-subset.openapi.json`) supplies
//! the rest: query parameters and their schemas, the body schema, the scopes. The routes,
//! request validation, `/openapi.json`, docs/api.md's headings and `Connection.capabilities`
//! all come from here. Adding an action is adding a row (and its tests).

use serde_json::Value;

use super::schema::zoom_spec;

/// How an action's request and answer differ from "Zoom's JSON in and out".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Zoom's answer as it is (its status; a 204 stays a 204).
    Plain,
    /// A list: Zoom's `next_page_token` behind one opaque `cursor`; the answer is
    /// `{ "<key>": [..], "next_cursor" }`.
    List(&'static str),
    /// Create a meeting: validated with the `start_time` and passcode rules, exactly once per
    /// `Idempotency-Key` (a retry after an unknown outcome looks at Zoom first).
    CreateMeeting,
    /// Update a meeting: the same rules as creating one.
    UpdateMeeting,
    /// A meeting's recordings; `download_links=true&ttl=` asks Zoom for a download token.
    MeetingRecordings,
    /// Any date range of the user's recordings, walked in Zoom's one-month windows.
    RecordingsWalk,
}

/// One row of the catalogue.
#[derive(Debug)]
pub struct Action {
    /// Its `operationId` in `/openapi.json` and its name in `Connection.capabilities`.
    pub name: &'static str,
    pub method: &'static str,
    /// Below `/connections/{id}/zoom`, with Zoom's parameter names (`{meetingId}`).
    pub route: &'static str,
    /// Zoom's path template, as in its description (`{userId}` is always `me`).
    pub zoom_path: &'static str,
    /// The success status callers get.
    pub status: u16,
    pub shape: Shape,
    /// One of the actions every connection is expected to have (the platform app's scopes);
    /// a bring-your-own app without them is told which scopes to add.
    pub default: bool,
    pub summary: &'static str,
    /// For a create whose answer carries secrets (a host's `start_url`, passcodes): Zoom's
    /// path that reads the created object back, `{id}` standing for the answer's `id`. A
    /// stored answer keeps no secrets; a replay fills them in from there.
    pub read_back: Option<&'static str>,
}

const fn row(
    name: &'static str,
    method: &'static str,
    route: &'static str,
    zoom_path: &'static str,
    status: u16,
    shape: Shape,
    summary: &'static str,
) -> Action {
    Action {
        name,
        method,
        route,
        zoom_path,
        status,
        shape,
        default: false,
        summary,
        read_back: None,
    }
}

const fn reads_back(path: &'static str, action: Action) -> Action {
    Action {
        read_back: Some(path),
        ..action
    }
}

const fn default(action: Action) -> Action {
    Action {
        default: true,
        ..action
    }
}

use Shape::*;

pub const ACTIONS: &[Action] = &[
    default(row(
        "zoom_me",
        "GET",
        "/me",
        "/users/{userId}",
        200,
        Plain,
        "The connected Zoom user",
    )),
    // Meetings
    default(row(
        "list_meetings",
        "GET",
        "/meetings",
        "/users/{userId}/meetings",
        200,
        List("meetings"),
        "The user's meetings",
    )),
    default(reads_back(
        "/meetings/{id}",
        row(
            "create_meeting",
            "POST",
            "/meetings",
            "/users/{userId}/meetings",
            201,
            CreateMeeting,
            "Create a meeting",
        ),
    )),
    default(row(
        "get_meeting",
        "GET",
        "/meetings/{meetingId}",
        "/meetings/{meetingId}",
        200,
        Plain,
        "A meeting (or one occurrence)",
    )),
    default(row(
        "update_meeting",
        "PATCH",
        "/meetings/{meetingId}",
        "/meetings/{meetingId}",
        204,
        UpdateMeeting,
        "Update a meeting (or one occurrence)",
    )),
    default(row(
        "delete_meeting",
        "DELETE",
        "/meetings/{meetingId}",
        "/meetings/{meetingId}",
        204,
        Plain,
        "Delete a meeting (or one occurrence)",
    )),
    row(
        "update_meeting_status",
        "PUT",
        "/meetings/{meetingId}/status",
        "/meetings/{meetingId}/status",
        204,
        Plain,
        "End or recover a meeting",
    ),
    row(
        "get_meeting_invitation",
        "GET",
        "/meetings/{meetingId}/invitation",
        "/meetings/{meetingId}/invitation",
        200,
        Plain,
        "A meeting's invitation text",
    ),
    row(
        "get_livestream",
        "GET",
        "/meetings/{meetingId}/livestream",
        "/meetings/{meetingId}/livestream",
        200,
        Plain,
        "A meeting's live stream settings",
    ),
    row(
        "update_livestream",
        "PATCH",
        "/meetings/{meetingId}/livestream",
        "/meetings/{meetingId}/livestream",
        204,
        Plain,
        "Set a meeting's live stream",
    ),
    row(
        "update_livestream_status",
        "PATCH",
        "/meetings/{meetingId}/livestream/status",
        "/meetings/{meetingId}/livestream/status",
        204,
        Plain,
        "Start or stop a live stream",
    ),
    // Registrants
    row(
        "list_meeting_registrants",
        "GET",
        "/meetings/{meetingId}/registrants",
        "/meetings/{meetingId}/registrants",
        200,
        List("registrants"),
        "A meeting's registrants",
    ),
    row(
        "add_meeting_registrant",
        "POST",
        "/meetings/{meetingId}/registrants",
        "/meetings/{meetingId}/registrants",
        201,
        Plain,
        "Register someone for a meeting",
    ),
    row(
        "update_meeting_registrant_status",
        "PUT",
        "/meetings/{meetingId}/registrants/status",
        "/meetings/{meetingId}/registrants/status",
        204,
        Plain,
        "Approve, deny or cancel registrants",
    ),
    row(
        "delete_meeting_registrant",
        "DELETE",
        "/meetings/{meetingId}/registrants/{registrantId}",
        "/meetings/{meetingId}/registrants/{registrantId}",
        204,
        Plain,
        "Remove a registrant",
    ),
    // Past meetings
    row(
        "get_past_meeting",
        "GET",
        "/past_meetings/{meetingId}",
        "/past_meetings/{meetingId}",
        200,
        Plain,
        "A past meeting's details",
    ),
    row(
        "list_past_meeting_instances",
        "GET",
        "/past_meetings/{meetingId}/instances",
        "/past_meetings/{meetingId}/instances",
        200,
        Plain,
        "The ended instances of a meeting",
    ),
    row(
        "list_past_meeting_participants",
        "GET",
        "/past_meetings/{meetingId}/participants",
        "/past_meetings/{meetingId}/participants",
        200,
        List("participants"),
        "Who attended a past meeting",
    ),
    // Recordings
    default(row(
        "list_recordings",
        "GET",
        "/recordings",
        "/users/{userId}/recordings",
        200,
        RecordingsWalk,
        "The user's cloud recordings over any date range",
    )),
    default(row(
        "meeting_recordings",
        "GET",
        "/meetings/{meetingId}/recordings",
        "/meetings/{meetingId}/recordings",
        200,
        MeetingRecordings,
        "A meeting's recordings, optionally with download links",
    )),
    row(
        "delete_meeting_recordings",
        "DELETE",
        "/meetings/{meetingId}/recordings",
        "/meetings/{meetingId}/recordings",
        204,
        Plain,
        "Trash or delete all of a meeting's recordings",
    ),
    row(
        "delete_meeting_recording",
        "DELETE",
        "/meetings/{meetingId}/recordings/{recordingId}",
        "/meetings/{meetingId}/recordings/{recordingId}",
        204,
        Plain,
        "Trash or delete one recording file",
    ),
    row(
        "get_meeting_summary",
        "GET",
        "/meetings/{meetingId}/meeting_summary",
        "/meetings/{meetingId}/meeting_summary",
        200,
        Plain,
        "A meeting's AI Companion summary",
    ),
    // Webinars
    row(
        "list_webinars",
        "GET",
        "/webinars",
        "/users/{userId}/webinars",
        200,
        List("webinars"),
        "The user's webinars",
    ),
    reads_back(
        "/webinars/{id}",
        row(
            "create_webinar",
            "POST",
            "/webinars",
            "/users/{userId}/webinars",
            201,
            Plain,
            "Create a webinar",
        ),
    ),
    row(
        "get_webinar",
        "GET",
        "/webinars/{webinarId}",
        "/webinars/{webinarId}",
        200,
        Plain,
        "A webinar",
    ),
    row(
        "update_webinar",
        "PATCH",
        "/webinars/{webinarId}",
        "/webinars/{webinarId}",
        204,
        Plain,
        "Update a webinar",
    ),
    row(
        "delete_webinar",
        "DELETE",
        "/webinars/{webinarId}",
        "/webinars/{webinarId}",
        204,
        Plain,
        "Delete a webinar",
    ),
    row(
        "list_webinar_registrants",
        "GET",
        "/webinars/{webinarId}/registrants",
        "/webinars/{webinarId}/registrants",
        200,
        List("registrants"),
        "A webinar's registrants",
    ),
    row(
        "add_webinar_registrant",
        "POST",
        "/webinars/{webinarId}/registrants",
        "/webinars/{webinarId}/registrants",
        201,
        Plain,
        "Register someone for a webinar",
    ),
];

/// Zoom's query parameters a list hides behind `cursor`.
const PAGING_PARAMS: &[&str] = &["next_page_token", "page_number"];

/// A query parameter a caller may send, and the JSON schema of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParam {
    pub name: String,
    pub schema: Value,
    /// Sent to Zoom under this name (`None`: ours only, e.g. `cursor`).
    pub to_zoom: bool,
}

impl Action {
    pub fn by_name(name: &str) -> Option<&'static Action> {
        ACTIONS.iter().find(|a| a.name == name)
    }

    /// Zoom's description of the operation this action calls.
    pub fn zoom_operation(&self) -> Option<&'static Value> {
        zoom_spec()
            .get("paths")?
            .get(self.zoom_path)?
            .get(self.method.to_ascii_lowercase())
    }

    /// The path parameters of the route, in order (`meetingId`, `registrantId`, ...).
    pub fn path_params(&self) -> Vec<&'static str> {
        self.route
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }

    pub fn is_create(&self) -> bool {
        self.method == "POST" && self.status == 201
    }

    /// The JSON schema of the request body, when Zoom's operation takes one.
    pub fn body_schema(&self) -> Option<&'static Value> {
        self.zoom_operation()?
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// The query parameters callers may send.
    pub fn query_params(&self) -> Vec<QueryParam> {
        let ours = |name: &str, schema: Value| QueryParam {
            name: name.to_owned(),
            schema,
            to_zoom: false,
        };
        if self.shape == RecordingsWalk {
            let date = serde_json::json!({ "type": "string", "format": "date" });
            return vec![
                ours("from", date.clone()),
                ours("to", date),
                ours(
                    "page_size",
                    serde_json::json!({ "type": "integer", "minimum": 1, "maximum": 300 }),
                ),
                ours("cursor", serde_json::json!({ "type": "string" })),
            ];
        }
        let mut params: Vec<QueryParam> = self
            .zoom_operation()
            .and_then(|op| op.get("parameters"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| {
                let name = p["name"].as_str()?;
                let hidden = PAGING_PARAMS.contains(&name)
                    || (self.shape == MeetingRecordings && name == "include_fields");
                (!hidden).then(|| QueryParam {
                    name: name.to_owned(),
                    schema: p.get("schema").cloned().unwrap_or(Value::Bool(true)),
                    to_zoom: true,
                })
            })
            .collect();
        if let List(_) = self.shape {
            params.push(ours("cursor", serde_json::json!({ "type": "string" })));
        }
        if self.shape == MeetingRecordings {
            params.push(ours(
                "download_links",
                serde_json::json!({ "type": "boolean" }),
            ));
        }
        params
    }

    /// Zoom's scopes for the operation: classic (`meeting:read`) and granular
    /// (`meeting:read:meeting`), each possibly with `:admin`.
    pub fn scopes(&self) -> Vec<&'static str> {
        let Some(op) = self.zoom_operation() else {
            return Vec::new();
        };
        let mut scopes: Vec<&'static str> = ["x-macro-scopes", "x-granular-scopes"]
            .iter()
            .filter_map(|k| op.get("x-extensions")?.get(*k)?.as_array())
            .flatten()
            .chain(
                op.get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("openapi_oauth")?.as_array())
                    .flatten(),
            )
            .filter_map(Value::as_str)
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes
    }

    /// The scope names to tell a person who must add one: the classic ones (the granular
    /// names when Zoom lists no classic one), or for an app with granular scopes (which can
    /// add no classic one) the granular ones without `:admin` / `:master`.
    pub fn scopes_to_add(&self, granular_app: bool) -> Vec<&'static str> {
        let all = self.scopes();
        let wanted: Vec<&str> = all
            .iter()
            .copied()
            .filter(|s| {
                if granular_app {
                    is_granular(s) && !s.ends_with(":admin") && !s.ends_with(":master")
                } else {
                    s.split(':').count() == 2
                }
            })
            .collect();
        if wanted.is_empty() { all } else { wanted }
    }
}

/// A granular scope name (`meeting:read:meeting`, `..:admin`); classic ones have two parts
/// before an optional `:admin` (`meeting:read`, `meeting:read:admin`).
fn is_granular(scope: &str) -> bool {
    scope
        .strip_suffix(":admin")
        .unwrap_or(scope)
        .split(':')
        .count()
        >= 3
}

/// Does a granted scope allow what `needed` allows? The same name, the `:admin` form of it,
/// or (classic scopes) the write scope of a read one, as at Zoom.
fn grants(granted: &str, needed: &str) -> bool {
    let base = |s: &str| s.strip_suffix(":admin").unwrap_or(s).to_owned();
    let (granted, needed) = (base(granted), base(needed));
    if granted == needed {
        return true;
    }
    // `meeting:write` covers `meeting:read`; granular names (three parts) match exactly.
    match (granted.split_once(':'), needed.split_once(':')) {
        (Some((g_res, "write")), Some((n_res, "read"))) => g_res == n_res,
        _ => false,
    }
}

/// The actions a connection's granted scopes allow (names, catalogue order).
pub fn capabilities(granted: &[String]) -> Vec<&'static str> {
    ACTIONS
        .iter()
        .filter(|a| {
            a.scopes()
                .iter()
                .any(|needed| granted.iter().any(|g| grants(g, needed)))
        })
        .map(|a| a.name)
        .collect()
}

/// A default action a connection's scopes do not allow, and the scopes to add for it.
pub type MissingAction = (&'static str, Vec<&'static str>);

/// The default actions the granted scopes do not allow, with the scopes to add.
pub fn missing_defaults(granted: &[String]) -> Vec<MissingAction> {
    let allowed = capabilities(granted);
    let granular_app = granted.iter().any(|g| is_granular(g));
    ACTIONS
        .iter()
        .filter(|a| a.default && !allowed.contains(&a.name))
        .map(|a| (a.name, a.scopes_to_add(granular_app)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_an_operation_of_zooms_description() {
        for action in ACTIONS {
            assert!(
                action.zoom_operation().is_some(),
                "{} has no Zoom operation",
                action.name
            );
            assert!(!action.scopes().is_empty(), "{} has no scopes", action.name);
        }
        let mut names: Vec<_> = ACTIONS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len(), "action names are unique");
    }

    #[test]
    fn classic_and_granular_scopes_read_alike() {
        let classic = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let platform = capabilities(&classic(&[
            "meeting:write",
            "recording:read",
            "user_info:read",
        ]));
        for name in [
            "zoom_me",
            "list_meetings",
            "create_meeting",
            "get_meeting",
            "meeting_recordings",
            "list_recordings",
        ] {
            assert!(platform.contains(&name), "{name} with the platform scopes");
        }
        assert!(!platform.contains(&"list_webinars"));
        assert!(
            !platform.contains(&"delete_meeting_recordings"),
            "recording:read does not delete"
        );
        let granular = capabilities(&classic(&[
            "meeting:read:list_meetings",
            "meeting:write:meeting",
        ]));
        assert!(granular.contains(&"list_meetings"));
        assert!(granular.contains(&"create_meeting"));
        assert!(!granular.contains(&"get_meeting_summary"));
        let admin = capabilities(&classic(&["webinar:read:admin"]));
        assert!(admin.contains(&"list_webinars") && !admin.contains(&"create_webinar"));
        assert!(capabilities(&[]).is_empty());
    }

    #[test]
    fn a_byo_app_without_recording_scopes_is_told_which_to_add() {
        let missing = missing_defaults(&["meeting:write".to_owned(), "user:read".to_owned()]);
        let names: Vec<_> = missing.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"list_recordings"), "{names:?}");
        let scopes = &missing
            .iter()
            .find(|(n, _)| *n == "list_recordings")
            .unwrap()
            .1;
        assert!(scopes.contains(&"recording:read"), "{scopes:?}");
        // An app with granular scopes is told granular names: it cannot add classic ones.
        let missing = missing_defaults(&[
            "meeting:write:meeting".to_owned(),
            "user:read:user".to_owned(),
        ]);
        let (_, scopes) = missing
            .iter()
            .find(|(n, _)| *n == "list_recordings")
            .unwrap();
        assert_eq!(scopes, &["cloud_recording:read:list_user_recordings"]);
        let (_, scopes) = missing.iter().find(|(n, _)| *n == "get_meeting").unwrap();
        assert_eq!(scopes, &["meeting:read:meeting"]);
    }

    #[test]
    fn lists_hide_zooms_paging_behind_cursor() {
        let list = Action::by_name("list_meetings").unwrap();
        let names: Vec<_> = list.query_params().into_iter().map(|p| p.name).collect();
        assert!(names.contains(&"cursor".to_owned()) && names.contains(&"type".to_owned()));
        assert!(!names.contains(&"next_page_token".to_owned()));
        let recordings = Action::by_name("meeting_recordings").unwrap();
        let names: Vec<_> = recordings
            .query_params()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert!(names.contains(&"download_links".to_owned()) && names.contains(&"ttl".to_owned()));
    }
}
