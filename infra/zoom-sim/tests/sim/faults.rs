use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zoom_sim::{Fault, FaultTarget};

use crate::common::*;

#[tokio::test]
async fn status_faults_count_down() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(2),
    });
    for _ in 0..2 {
        let (status, body) = h.api(Method::GET, "/users/me", &token, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], 503);
    }
    assert_eq!(
        h.api(Method::GET, "/users/me", &token, None).await.0,
        StatusCode::OK
    );

    h.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 500,
        times: None,
    });
    let (status, body) = h.refresh("whatever").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "server_error");
    assert_eq!(
        h.refresh("whatever").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    h.sim.clear_faults();
    assert_eq!(h.refresh("whatever").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hang_makes_the_client_time_out() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.inject(Fault::Hang {
        target: FaultTarget::Api,
        times: Some(1),
    });
    let started = Instant::now();
    let result = h
        .http
        .get(format!("{}/users/me", h.running.api_url()))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let error = result.expect_err("the request hangs");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hanging request is recorded without an answer.
    let last = h.sim.requests().into_iter().last().expect("recorded");
    assert_eq!((last.path.as_str(), last.status), ("/v2/users/me", 0));
    assert_eq!(
        h.api(Method::GET, "/users/me", &token, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_closes_the_connection() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    h.sim.inject(Fault::ResetConnection {
        target: FaultTarget::Token,
        times: Some(1),
    });
    let result = h
        .http
        .post(h.url("/oauth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                str_field(&tokens, "refresh_token").as_str(),
            ),
        ])
        .send()
        .await;
    let error = result.expect_err("no answer");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    // The fault fired before the grant: the refresh token is still good.
    assert_eq!(
        h.refresh(&str_field(&tokens, "refresh_token")).await.0,
        StatusCode::OK
    );

    h.sim.inject(Fault::ResetConnection {
        target: FaultTarget::Api,
        times: Some(1),
    });
    let result = h
        .http
        .get(format!("{}/users/me", h.running.api_url()))
        .bearer_auth("x")
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn rate_limits_carry_zoom_headers() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let response = h
        .http
        .get(format!("{}/users/me", h.running.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&response, "x-ratelimit-type").as_deref(),
        Some("QPS")
    );
    assert_eq!(
        header(&response, "x-ratelimit-category").as_deref(),
        Some("Light")
    );
    assert_eq!(
        header(&response, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert!(header(&response, "x-ratelimit-limit").is_some());
    assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        response.json::<Value>().await.ok(),
        Some(
            json!({"code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."})
        )
    );

    h.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: true,
        times: Some(1),
    });
    let response = h
        .http
        .post(format!("{}/users/me/meetings", h.running.api_url()))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "x-ratelimit-type").as_deref(),
        Some("Daily-limit")
    );
    assert_eq!(
        header(&response, "x-ratelimit-category").as_deref(),
        Some("Medium")
    );
    let retry_after = header(&response, "retry-after").expect("retry-after");
    let at =
        time::OffsetDateTime::parse(&retry_after, &time::format_description::well_known::Rfc3339)
            .expect("an absolute date-time");
    assert!(at > time::OffsetDateTime::now_utc());
    assert!(retry_after.ends_with("T00:00:00Z"));
    assert_eq!(h.sim.meetings_count(), 0);
}

#[tokio::test]
async fn rotate_then_fail_loses_the_answer() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    let (old_access, old_refresh) = (
        str_field(&tokens, "access_token"),
        str_field(&tokens, "refresh_token"),
    );
    h.sim.inject(Fault::RotateThenFail { times: Some(1) });
    let (status, _) = h.refresh(&old_refresh).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // Old tokens are dead; retrying the refresh is reuse.
    assert_eq!(
        h.api(Method::GET, "/users/me", &old_access, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = h.refresh(&old_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "Invalid Token!");
    let counters = h.sim.counters();
    assert_eq!(
        (counters.refresh_grants, counters.refresh_token_reuse),
        (1, 1)
    );
    assert!(h.sim.refresh_grant_times().is_empty());

    // The undelivered tokens were stored and work.
    let lost = h
        .sim
        .latest_tokens("sim-user-1", CLIENT_ID)
        .expect("new tokens exist");
    assert_ne!(lost.refresh_token, old_refresh);
    assert_eq!(
        h.api(Method::GET, "/users/me", &lost.access_token, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(h.refresh(&lost.refresh_token).await.0, StatusCode::OK);
    assert_eq!(h.sim.refresh_grant_times().len(), 1);
}

#[tokio::test]
async fn revoke_faults_and_latency() {
    let h = Harness::start().await;
    let tokens = h.connect().await;
    h.sim.inject(Fault::Status {
        target: FaultTarget::Revoke,
        status: 502,
        times: Some(1),
    });
    let revoke = || {
        h.http
            .post(h.url("/oauth/revoke"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", str_field(&tokens, "refresh_token"))])
            .send()
    };
    assert_eq!(
        revoke().await.expect("answers").status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(h.sim.counters().revocations, 0);

    h.sim
        .set_latency(FaultTarget::Revoke, Duration::from_millis(250));
    let started = Instant::now();
    assert_eq!(revoke().await.expect("answers").status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));
    h.sim.set_latency(FaultTarget::Revoke, Duration::ZERO);
    assert_eq!(h.sim.counters().revocations, 1);
}
