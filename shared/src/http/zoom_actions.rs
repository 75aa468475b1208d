//! `/connections/{id}/zoom/**` (actions function): one route per row of the actions
//! catalogue (`zoom::catalogue`), all served by one handler.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::common::{JsonBody, no_content, pass};
use crate::app::Connector;
use crate::app::actions::catalogue::ActionRequest;
use crate::domain::error::ApiError;
use crate::zoom::catalogue::{ACTIONS, Action};

/// The full route of an action.
pub fn route_of(action: &Action) -> String {
    format!("/connections/{{id}}/zoom{}", action.route)
}

/// Every catalogue route, its methods on one `MethodRouter` per path.
pub fn routes() -> Router<Connector> {
    let mut by_path: Vec<(String, MethodRouter<Connector>)> = Vec::new();
    for action in ACTIONS {
        let method = Method::from_bytes(action.method.as_bytes())
            .expect("catalogue methods are HTTP methods");
        let filter = MethodFilter::try_from(method).expect("catalogue methods are routable");
        let handler = move |state, path, query, headers, request| {
            run(action, state, path, query, headers, request)
        };
        let path = route_of(action);
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, router)) => *router = std::mem::take(router).on(filter, handler),
            None => by_path.push((path, on(filter, handler))),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(&path, methods)
        })
}

async fn run(
    action: &'static Action,
    State(c): State<Connector>,
    Path(mut params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let id = params.remove("id").unwrap_or_default();
    let body = match action.body_schema() {
        Some(_) => Some(
            JsonBody::<serde_json::Value>::from_request(request, &c)
                .await?
                .0,
        ),
        None => None,
    };
    let request = ActionRequest {
        path: params.into_iter().collect(),
        query,
        body,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let answer = c.run_action(&id, action, request).await?;
    Ok(if action.status == 204 {
        no_content(answer)
    } else {
        pass(answer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On AWS a route the template does not declare answers API Gateway's own 404, never
    /// reaching the function: every catalogue route must be an event of the actions function.
    #[test]
    fn every_catalogue_route_is_declared_in_the_template() {
        let template = include_str!("../../../template.yaml");
        let lines: Vec<&str> = template.lines().map(str::trim).collect();
        let declared: Vec<(&str, &str)> = lines
            .windows(2)
            .filter_map(|w| Some((w[0].strip_prefix("Path: ")?, w[1].strip_prefix("Method: ")?)))
            .collect();
        for action in ACTIONS {
            let route = route_of(action);
            assert!(
                declared.contains(&(route.as_str(), action.method)),
                "template.yaml lacks an HttpApi event {} {route}",
                action.method
            );
        }
    }
}
