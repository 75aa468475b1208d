use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use zoom_sim::{SimConfig, SimUser};

use crate::common::*;

#[tokio::test]
async fn full_round_trip_with_pkce() {
    let h = Harness::start().await;
    let (verifier, challenge) = pkce();
    let location = h.authorize_location(&challenge, "allow").await;
    assert!(location.starts_with(REDIRECT));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    let code = query_param(&location, "code").expect("code");

    let (status, tokens) = h.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(
        tokens["scope"],
        "meeting:write recording:read user_info:read"
    );
    assert_eq!(tokens["api_url"], "https://api.zoom.us");
    let access = str_field(&tokens, "access_token");
    let refresh = str_field(&tokens, "refresh_token");
    assert!(access.len() >= 40 && refresh.len() >= 40 && access != refresh);

    let (status, me) = h.api(Method::GET, "/users/me", &access, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], "sim-user-1");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["account_id"], "sim-account-1");

    let counters = h.sim.counters();
    assert_eq!(counters.token_requests, 1);
    assert_eq!(counters.authorization_code_grants, 1);
    // The token request is recorded with its Basic header and form body.
    let token_request = h
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .expect("recorded");
    assert!(
        token_request
            .header("authorization")
            .is_some_and(|v| v.starts_with("Basic "))
    );
    assert_eq!(token_request.form().get("code_verifier"), Some(&verifier));
    assert_eq!(token_request.status, 200);
}

#[tokio::test]
async fn api_url_can_be_left_out_and_ttl_configured() {
    let h = Harness::start_with(SimConfig {
        access_token_ttl_secs: 60,
        api_url_in_token: None,
        ..SimConfig::default()
    })
    .await;
    let tokens = h.connect().await;
    assert_eq!(tokens["expires_in"], 60);
    assert!(tokens.get("api_url").is_none());
}

#[tokio::test]
async fn decline_and_preapproval_redirect_with_access_denied() {
    let h = Harness::start().await;
    let (_, challenge) = pkce();
    let location = h.authorize_location(&challenge, "decline").await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&location, "error_description").as_deref(),
        Some("The user denied the request")
    );
    assert!(location.contains("error_description=The+user+denied+the+request"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));

    h.sim.set_require_preapproval("sim-account-1", true);
    let location = h.authorize_location(&challenge, "allow").await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(
        query_param(&location, "error_description")
            .is_some_and(|d| d.contains("requires admin pre-approval"))
    );
    assert!(query_param(&location, "code").is_none());

    h.sim.set_require_preapproval("sim-account-1", false);
    let location = h.authorize_location(&challenge, "allow").await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn unknown_client_and_foreign_redirect_get_error_pages() {
    let h = Harness::start().await;
    let get = |client: &'static str, redirect: &'static str| {
        h.http
            .get(h.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", redirect),
                ("state", "s"),
            ])
            .send()
    };
    let page = get("nobody", REDIRECT).await.expect("answers");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    assert!(page.text().await.unwrap_or_default().contains("4700"));

    let page = get(CLIENT_ID, "https://evil.example/cb")
        .await
        .expect("answers");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap_or_default().contains("4709"));

    // A forged decision form is checked the same way.
    let answer = h
        .http
        .post(h.url("/oauth/authorize/decision"))
        .form(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "https://evil.example/cb"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn auto_approve_redirects_at_once_for_the_current_user() {
    let h = Harness::start().await;
    h.sim.add_user(SimUser::new(
        "u2",
        "acct-2",
        "grace@example.com",
        "Grace",
        "Hopper",
    ));
    h.sim.set_current_user("u2");
    h.sim.set_auto_approve(true);
    let (verifier, challenge) = pkce();
    let answer = h
        .http
        .get(h.url("/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", "meeting:write"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), StatusCode::FOUND);
    let code = query_param(&location(&answer), "code").expect("code");
    assert!(query_param(&location(&answer), "state").is_none());
    let (_, tokens) = h.exchange(&code, &verifier).await;
    let (_, me) = h
        .api(
            Method::GET,
            "/users/me",
            &str_field(&tokens, "access_token"),
            None,
        )
        .await;
    assert_eq!(me["id"], "u2");
    assert_eq!(me["email"], "grace@example.com");
}

#[tokio::test]
async fn codes_are_single_use_and_expire() {
    let h = Harness::start().await;
    let (verifier, challenge) = pkce();
    let code = h.authorize(&challenge).await;
    assert_eq!(h.exchange(&code, &verifier).await.0, StatusCode::OK);
    let (status, body) = h.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"reason": format!("Invalid authorization code {code}"), "error": "invalid_grant"})
    );

    let code = h.authorize(&challenge).await;
    h.sim.advance_clock(Duration::from_secs(301));
    let (status, body) = h.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_verifier_and_redirect_mismatch() {
    let h = Harness::start().await;
    let (_, challenge) = pkce();
    let code = h.authorize(&challenge).await;
    let (status, body) = h
        .exchange(&code, "not-the-verifier-at-all-0123456789-abcdefgh")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"reason": "Invalid code verifier", "error": "invalid_request"})
    );

    let code = h.authorize(&challenge).await;
    let (status, body) = h
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"reason": "Redirect URI mismatch.", "error": "invalid_request"})
    );

    // No verifier at all is as wrong as a bad one.
    let code = h.authorize(&challenge).await;
    let (status, body) = h
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "Invalid code verifier");
}

#[tokio::test]
async fn missing_method_means_plain_challenge() {
    let h = Harness::start().await;
    h.sim.set_auto_approve(true);
    let authorize = |method: Option<&'static str>| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", "plain-challenge-value"),
        ];
        if let Some(method) = method {
            query.push(("code_challenge_method", method));
        }
        h.http.get(h.url("/oauth/authorize")).query(&query).send()
    };
    let code =
        query_param(&location(&authorize(None).await.expect("answers")), "code").expect("code");
    assert_eq!(
        h.exchange(&code, "plain-challenge-value").await.0,
        StatusCode::OK
    );
    let code = query_param(
        &location(&authorize(Some("S256")).await.expect("answers")),
        "code",
    )
    .expect("code");
    assert_eq!(
        h.exchange(&code, "plain-challenge-value").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn client_authentication_is_basic_only() {
    let h = Harness::start().await;
    let (verifier, challenge) = pkce();
    let code = h.authorize(&challenge).await;
    let invalid =
        json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"});

    // Credentials in the form body: refused, and the code is not burnt.
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<serde_json::Value>().await.ok(),
        Some(invalid.clone())
    );

    // Wrong secret.
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<serde_json::Value>().await.ok(),
        Some(invalid)
    );

    // Garbage Authorization header.
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .header("authorization", "Basic %%%not-base64")
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(h.exchange(&code, &verifier).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unsupported_grant_type() {
    let h = Harness::start().await;
    let (status, body) = h.token_request(&[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"reason": "Unsupported grant type", "error": "unsupported_grant_type"})
    );
    let (status, _) = h.token_request(&[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let h = Harness::start().await;
    let first = h.connect().await;
    let (old_access, old_refresh) = (
        str_field(&first, "access_token"),
        str_field(&first, "refresh_token"),
    );

    let (status, second) = h.refresh(&old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (new_access, new_refresh) = (
        str_field(&second, "access_token"),
        str_field(&second, "refresh_token"),
    );
    assert_ne!(new_access, old_access);
    assert_ne!(new_refresh, old_refresh);

    // The old pair is dead at once; the new one works.
    assert_eq!(
        h.api(Method::GET, "/users/me", &old_access, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.api(Method::GET, "/users/me", &new_access, None).await.0,
        StatusCode::OK
    );
    let (status, body) = h.refresh(&old_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"reason": "Invalid Token!", "error": "invalid_grant"})
    );
    let (status, _) = h.refresh("never-issued").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let counters = h.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 1);
    assert_eq!(h.sim.refresh_grant_times().len(), 1);
}

#[tokio::test]
async fn expired_access_tokens_refresh_fine() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    h.sim.expire_access_tokens();
    let (status, body) = h
        .api(
            Method::GET,
            "/users/me",
            &str_field(&tokens, "access_token"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"code": 124, "message": "Invalid access token."})
    );
    let (status, fresh) = h.refresh(&str_field(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&fresh, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // The natural expiry works on the sim clock too.
    h.sim.advance_clock(Duration::from_secs(3600));
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&fresh, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn reauthorization_revokes_older_tokens() {
    let h = Harness::start().await;
    let first = h.connect().await;
    let second = h.connect().await;
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&first, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.refresh(&str_field(&first, "refresh_token")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&second, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    // Revoked, not rotated: no reuse counted.
    assert_eq!(h.sim.counters().refresh_token_reuse, 0);
}

#[tokio::test]
async fn revoke_kills_the_pair() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    let revoke = |auth: Option<(&'static str, &'static str)>, token: String| {
        let mut request = h
            .http
            .post(h.url("/oauth/revoke"))
            .form(&[("token", token)]);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let response = revoke(None, str_field(&tokens, "access_token"))
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = revoke(
        Some((CLIENT_ID, CLIENT_SECRET)),
        str_field(&tokens, "access_token"),
    )
    .await
    .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<serde_json::Value>().await.ok(),
        Some(json!({"status": "success"}))
    );
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&tokens, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.refresh(&str_field(&tokens, "refresh_token")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h.sim.counters().revocations, 1);
}

#[tokio::test]
async fn revoke_user_tokens_hook() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    h.sim.revoke_user_tokens("sim-user-1");
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&tokens, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.refresh(&str_field(&tokens, "refresh_token")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(h.sim.latest_tokens("sim-user-1", CLIENT_ID).is_none());
}

#[tokio::test]
async fn default_app_accepts_loopback_redirects() {
    let sim = zoom_sim::ZoomSim::with_defaults();
    sim.set_auto_approve(true);
    let running = sim.start().await.expect("starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for redirect in [
        "http://localhost:3000/oauth/callback",
        "http://127.0.0.1:4321/cb",
    ] {
        let answer = http
            .get(format!("{}/oauth/authorize", running.oauth_url()))
            .query(&[
                ("response_type", "code"),
                ("client_id", zoom_sim::DEFAULT_CLIENT_ID),
                ("redirect_uri", redirect),
            ])
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), StatusCode::FOUND, "{redirect}");
        assert!(location(&answer).starts_with(redirect));
    }
    let answer = http
        .get(format!("{}/oauth/authorize", running.oauth_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", zoom_sim::DEFAULT_CLIENT_ID),
            ("redirect_uri", "https://example.com/cb"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(running.api_url().ends_with("/v2"));
}
