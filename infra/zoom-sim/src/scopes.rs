//! Which OAuth scopes let each REST operation through, read from Zoom's OpenAPI description
//! (`security[].openapi_oauth`, `x-extensions.x-macro-scopes` and `x-granular-scopes`) instead of
//! a table per route.
//!
//! Rules on top of the data, as at Zoom:
//! - a classic write scope covers its reads (`meeting:write` lets `GET /meetings/{id}` through,
//!   `recording:write:admin` covers `recording:read:admin`);
//! - the `:admin` form of an accepted classic scope is accepted too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::Value;

/// The scopes one operation accepts.
#[derive(Clone, Debug, Default)]
pub(crate) struct OperationScopes {
    /// Classic ("macro") names, data order first, then the derived ones.
    pub classic: Vec<String>,
    /// Granular names, in the description's order.
    pub granular: Vec<String>,
}

impl OperationScopes {
    pub fn accepts(&self, granted: &[String]) -> bool {
        granted
            .iter()
            .any(|g| self.classic.contains(g) || self.granular.contains(g))
    }

    /// The scope a 4711 answer names: the first non-admin granular scope for an app with
    /// granular scopes, else the first non-admin classic one.
    pub fn named_in_error(&self, granted: &[String]) -> String {
        let granular_app = granted.iter().any(|g| all_granular().contains(g.as_str()));
        let (first, second) = if granular_app {
            (&self.granular, &self.classic)
        } else {
            (&self.classic, &self.granular)
        };
        first
            .iter()
            .chain(second)
            .find(|s| !s.ends_with(":admin") && !s.ends_with(":master"))
            .or_else(|| first.first())
            .cloned()
            .unwrap_or_default()
    }
}

struct Table {
    by_operation: HashMap<(String, String), OperationScopes>,
    granular: HashSet<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn push_unique(list: &mut Vec<String>, scope: String) {
    if !list.contains(&scope) {
        list.push(scope);
    }
}

/// One operation's scopes from its `security` and `x-extensions`.
pub(crate) fn operation_scopes(operation: &Value) -> OperationScopes {
    let extensions = operation.get("x-extensions");
    let granular = strings(extensions.and_then(|x| x.get("x-granular-scopes")));
    let mut classic = strings(extensions.and_then(|x| x.get("x-macro-scopes")));
    // `security` may name scopes the extensions leave out; granular-looking ones go with those.
    for requirement in operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for scope in strings(requirement.get("openapi_oauth")) {
            if !granular.contains(&scope) {
                push_unique(&mut classic, scope);
            }
        }
    }
    let mut derived = Vec::new();
    for scope in &classic {
        let (base, admin) = match scope.strip_suffix(":admin") {
            Some(base) => (base, true),
            None => (scope.as_str(), false),
        };
        let mut forms = vec![];
        if !admin {
            forms.push(format!("{base}:admin"));
        }
        if let Some(resource) = base.strip_suffix(":read") {
            forms.push(format!("{resource}:write"));
            forms.push(format!("{resource}:write:admin"));
        }
        derived.extend(forms);
    }
    for scope in derived {
        push_unique(&mut classic, scope);
    }
    OperationScopes { classic, granular }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let spec = crate::contract::load_zoom_openapi();
        let mut by_operation = HashMap::new();
        let mut granular = HashSet::new();
        for (template, item) in spec["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let scopes = operation_scopes(operation);
                granular.extend(scopes.granular.iter().cloned());
                by_operation.insert((method.to_ascii_uppercase(), template.clone()), scopes);
            }
        }
        Table {
            by_operation,
            granular,
        }
    })
}

fn all_granular() -> &'static HashSet<String> {
    &table().granular
}

/// The scopes of `METHOD template` (template as in the description, e.g. `/meetings/{meetingId}`);
/// `None` for an operation the description does not have.
pub(crate) fn for_operation(method: &str, template: &str) -> Option<&'static OperationScopes> {
    table()
        .by_operation
        .get(&(method.to_ascii_uppercase(), template.to_owned()))
}

/// Every operation of the description as `(METHOD, template)`, sorted.
pub fn described_operations() -> Vec<(String, String)> {
    let set: BTreeSet<(String, String)> = table().by_operation.keys().cloned().collect();
    set.into_iter().collect()
}

/// The scopes (classic, derived and granular) that let `METHOD template` through, or `None` for
/// an operation the description does not have.
pub fn accepted_scopes(method: &str, template: &str) -> Option<Vec<String>> {
    for_operation(method, template)
        .map(|s| s.classic.iter().chain(s.granular.iter()).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn classic_write_covers_reads_and_granular_counts() {
        let get = for_operation("GET", "/meetings/{meetingId}").expect("described");
        assert!(get.accepts(&granted(&["meeting:write"])));
        assert!(get.accepts(&granted(&["meeting:read:meeting"])));
        assert!(get.accepts(&granted(&["meeting:read:meeting:admin"])));
        assert!(!get.accepts(&granted(&["meeting:write:meeting"])));
        assert!(!get.accepts(&granted(&["recording:read"])));
        let recordings =
            for_operation("GET", "/meetings/{meetingId}/recordings").expect("described");
        assert!(recordings.accepts(&granted(&["recording:write"])));
        assert!(recordings.accepts(&granted(&["recording:read:admin"])));
        let create = for_operation("post", "/users/{userId}/meetings").expect("described");
        assert!(!create.accepts(&granted(&["meeting:read"])));
        assert_eq!(
            create.named_in_error(&granted(&["user_info:read"])),
            "meeting:write"
        );
        assert_eq!(
            create.named_in_error(&granted(&["user:read:user"])),
            "meeting:write:meeting"
        );
        let user = for_operation("GET", "/users/{userId}").expect("described");
        assert!(user.accepts(&granted(&["user_info:read"])));
        assert!(for_operation("GET", "/nothing").is_none());
    }

    #[test]
    fn every_operation_has_scopes() {
        let operations = described_operations();
        assert!(operations.len() >= 30, "{operations:?}");
        for (method, template) in operations {
            let scopes = for_operation(&method, &template).expect("listed");
            assert!(!scopes.classic.is_empty(), "{method} {template}");
            assert!(!scopes.granular.is_empty(), "{method} {template}");
        }
    }
}
