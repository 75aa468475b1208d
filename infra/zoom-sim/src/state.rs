//! The simulator's state behind the mutex, and the token bookkeeping that OAuth and the API
//! share. Nothing here awaits, so the lock is never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use time::{Date, OffsetDateTime};

use crate::types::{
    Counters, Fault, FaultTarget, RecordedRequest, SimConfig, SimRecording, SimUser,
};
use crate::util::random_secret;

pub(crate) use crate::entities::{
    DownloadToken, LiveInstance, OccurrenceOverride, PageToken, PastInstance, Registrant,
    StoredSummary,
};

/// Scopes every simulated app is granted unless told otherwise.
pub(crate) const DEFAULT_SCOPES: [&str; 3] = ["meeting:write", "recording:read", "user_info:read"];

/// Oldest recorded requests are dropped beyond this, so a long `make dev` session stays small.
const MAX_RECORDED_REQUESTS: usize = 10_000;

pub(crate) struct App {
    pub secret: String,
    pub redirect_uris: HashSet<String>,
    /// Any `http(s)://127.0.0.1|localhost|[::1][:port]/...` redirect URI is allowed.
    pub allow_loopback: bool,
    pub scopes: Vec<String>,
}

impl App {
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        if self.redirect_uris.contains(redirect_uri) {
            return true;
        }
        if !self.allow_loopback {
            return false;
        }
        match url::Url::parse(redirect_uri) {
            Ok(url) => {
                matches!(url.scheme(), "http" | "https")
                    && matches!(
                        url.host_str(),
                        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
                    )
            }
            Err(_) => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChallengeMethod {
    Plain,
    S256,
}

pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub challenge: Option<(String, ChallengeMethod)>,
    pub scopes: Vec<String>,
    pub expires_at: OffsetDateTime,
}

pub(crate) struct AccessToken {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: OffsetDateTime,
    /// Tokens issued together share a grant number, so revoking one revokes its pair.
    pub grant: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshState {
    Active,
    /// Replaced by a refresh grant; using it again is "reuse".
    Rotated,
    Revoked,
}

pub(crate) struct RefreshToken {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub grant: u64,
    pub state: RefreshState,
}

pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub scopes: Vec<String>,
}

/// A token-endpoint refusal: `{"reason", "error"}` with a status.
pub(crate) struct TokenError {
    pub status: u16,
    pub error: &'static str,
    pub reason: String,
}

impl TokenError {
    fn new(status: u16, error: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            error,
            reason: reason.into(),
        }
    }
}

#[derive(Clone, Default)]
pub(crate) struct Livestream {
    pub stream_url: String,
    pub stream_key: String,
    pub page_url: String,
    pub resolution: String,
    /// The last `PATCH .../livestream/status` action (`start`, `stop`, `mode`), if any.
    pub status: Option<String>,
}

/// A meeting or webinar. Webinars live in `Inner::webinars` with the same shape.
pub(crate) struct Meeting {
    pub id: i64,
    pub host_id: String,
    /// The meeting as Zoom renders it (id, uuid, topic, settings, ...); PATCH merges into it.
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub livestream: Livestream,
    pub occurrence_overrides: HashMap<String, OccurrenceOverride>,
    pub registrants: Vec<Registrant>,
    pub live: Option<LiveInstance>,
}

pub(crate) struct StoredRecording {
    pub user_id: String,
    pub recording: SimRecording,
    /// Moved to the trash (`action=trash`): hidden from listings, restorable at Zoom.
    pub trashed: bool,
    /// Files moved to the trash one by one.
    pub trashed_files: HashSet<String>,
}

/// Where a recordings listing continues; `next_page_token` points at one of these.
#[derive(Clone)]
pub(crate) struct PageCursor {
    pub user_id: String,
    pub from: Date,
    pub to: Date,
    pub page_size: usize,
    pub offset: usize,
    pub expires_at: OffsetDateTime,
}

struct ActiveFault {
    fault: Fault,
    remaining: Option<u32>,
}

pub(crate) struct Inner {
    pub config: SimConfig,
    pub apps: HashMap<String, App>,
    pub users: Vec<SimUser>,
    pub current_user: Option<String>,
    pub auto_approve: bool,
    pub preapproval_accounts: HashSet<String>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    next_grant: u64,
    faults: Vec<ActiveFault>,
    pub latency: HashMap<FaultTarget, Duration>,
    requests: Vec<(u64, RecordedRequest)>,
    next_request_id: u64,
    pub counters: Counters,
    pub refresh_grant_times: Vec<OffsetDateTime>,
    pub meetings: HashMap<i64, Meeting>,
    pub next_meeting_uuids: std::collections::VecDeque<String>,
    pub recordings: Vec<StoredRecording>,
    pub page_cursors: HashMap<String, PageCursor>,
    pub pages: HashMap<String, PageToken>,
    /// Deleted meetings and when, for `PUT /meetings/{id}/status` `recover`.
    pub deleted_meetings: HashMap<i64, (Meeting, OffsetDateTime)>,
    pub past_meetings: Vec<PastInstance>,
    pub summaries: Vec<StoredSummary>,
    pub download_tokens: HashMap<String, DownloadToken>,
    pub webinars: HashMap<i64, Meeting>,
    /// Added to the wall clock for every expiry decision (codes, tokens, page tokens).
    pub clock_offset: Duration,
}

impl Inner {
    pub fn new(config: SimConfig) -> Self {
        let ada = SimUser::ada();
        Self {
            config,
            apps: HashMap::new(),
            current_user: Some(ada.id.clone()),
            users: vec![ada],
            auto_approve: false,
            preapproval_accounts: HashSet::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            next_grant: 1,
            faults: Vec::new(),
            latency: HashMap::new(),
            requests: Vec::new(),
            next_request_id: 1,
            counters: Counters::default(),
            refresh_grant_times: Vec::new(),
            meetings: HashMap::new(),
            next_meeting_uuids: std::collections::VecDeque::new(),
            recordings: Vec::new(),
            page_cursors: HashMap::new(),
            pages: HashMap::new(),
            deleted_meetings: HashMap::new(),
            past_meetings: Vec::new(),
            summaries: Vec::new(),
            download_tokens: HashMap::new(),
            webinars: HashMap::new(),
            clock_offset: Duration::ZERO,
        }
    }

    /// The simulator's clock: wall clock plus whatever tests advanced it by.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// An 11-digit id no meeting or webinar has.
    pub fn fresh_meeting_id(&self) -> i64 {
        loop {
            let id = crate::util::random_meeting_id();
            if !self.meetings.contains_key(&id)
                && !self.webinars.contains_key(&id)
                && !self.deleted_meetings.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// The queued UUID (see `ZoomSim::set_next_meeting_uuid`) or a random one.
    pub fn next_uuid(&mut self) -> String {
        self.next_meeting_uuids
            .pop_front()
            .unwrap_or_else(crate::util::random_meeting_uuid)
    }

    pub fn user(&self, user_id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == user_id)
    }

    pub fn upsert_user(&mut self, user: SimUser) {
        match self.users.iter_mut().find(|u| u.id == user.id) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
    }

    // ---- faults -------------------------------------------------------------------------

    pub fn add_fault(&mut self, fault: Fault) {
        let remaining = fault.times();
        if remaining == Some(0) {
            return;
        }
        self.faults.push(ActiveFault { fault, remaining });
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Takes the first fault matching `pred`, counting down its `times`.
    pub fn take_fault(&mut self, pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let index = self.faults.iter().position(|f| pred(&f.fault))?;
        let entry = &mut self.faults[index];
        let fault = entry.fault.clone();
        if let Some(remaining) = entry.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.faults.remove(index);
            }
        }
        Some(fault)
    }

    pub fn take_transport_fault(&mut self, target: FaultTarget) -> Option<Fault> {
        self.take_fault(|f| f.transport_target() == Some(target))
    }

    // ---- request log --------------------------------------------------------------------

    pub fn begin_request(&mut self, request: RecordedRequest) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        if request.path.starts_with("/v2") {
            self.counters.api_requests += 1;
        } else if request.path == "/oauth/token" {
            self.counters.token_requests += 1;
        }
        self.requests.push((id, request));
        if self.requests.len() > MAX_RECORDED_REQUESTS {
            let excess = self.requests.len() - MAX_RECORDED_REQUESTS;
            self.requests.drain(..excess);
        }
        id
    }

    pub fn finish_request(&mut self, id: u64, status: u16, response_body: Vec<u8>) {
        if let Some((_, request)) = self.requests.iter_mut().rev().find(|(i, _)| *i == id) {
            request.status = status;
            request.response_body = response_body;
        }
    }

    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().map(|(_, r)| r.clone()).collect()
    }

    // ---- tokens -------------------------------------------------------------------------

    fn issue_tokens(
        &mut self,
        user_id: &str,
        client_id: &str,
        scopes: Vec<String>,
    ) -> IssuedTokens {
        let grant = self.next_grant;
        self.next_grant += 1;
        let access_token = random_secret();
        let refresh_token = random_secret();
        let ttl = Duration::from_secs(self.config.access_token_ttl_secs);
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                user_id: user_id.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                expires_at: self.now() + ttl,
                grant,
            },
        );
        self.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                user_id: user_id.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                grant,
                state: RefreshState::Active,
            },
        );
        IssuedTokens {
            access_token,
            refresh_token,
            scopes,
        }
    }

    /// Kills every token of one grant (an access token and its refresh token).
    fn revoke_grant(&mut self, grant: u64) {
        self.access_tokens.retain(|_, t| t.grant != grant);
        for token in self.refresh_tokens.values_mut() {
            if token.grant == grant && token.state == RefreshState::Active {
                token.state = RefreshState::Revoked;
            }
        }
    }

    /// Kills every live token of a user, for one app or (client `None`) for all of them.
    /// Returns the client ids that had live tokens.
    pub fn revoke_user(&mut self, user_id: &str, client_id: Option<&str>) -> Vec<String> {
        let matches = |uid: &str, cid: &str| uid == user_id && client_id.is_none_or(|c| c == cid);
        let mut clients: Vec<String> = Vec::new();
        let mut note = |cid: &str| {
            if !clients.iter().any(|c| c == cid) {
                clients.push(cid.to_owned());
            }
        };
        for token in self.access_tokens.values() {
            if matches(&token.user_id, &token.client_id) {
                note(&token.client_id);
            }
        }
        for token in self.refresh_tokens.values_mut() {
            if matches(&token.user_id, &token.client_id) && token.state == RefreshState::Active {
                token.state = RefreshState::Revoked;
                note(&token.client_id);
            }
        }
        self.access_tokens
            .retain(|_, t| !matches(&t.user_id, &t.client_id));
        clients
    }

    pub fn expire_access_tokens(&mut self) {
        let past = self.now() - Duration::from_secs(1);
        for token in self.access_tokens.values_mut() {
            token.expires_at = past;
        }
    }

    /// Checks `Authorization: Basic` credentials and returns the app's client id. Accepts them
    /// raw or form-urlencoded (RFC 6749 §2.3.1 asks clients to encode them; Zoom's ids need no
    /// encoding anyway).
    pub fn authenticate_client(&self, client_id: &str, client_secret: &str) -> Option<String> {
        let check = |id: &str, secret: &str| {
            self.apps
                .get(id)
                .is_some_and(|app| constant_time_eq(app.secret.as_bytes(), secret.as_bytes()))
        };
        if check(client_id, client_secret) {
            return Some(client_id.to_owned());
        }
        let (id, secret) = (form_decode(client_id)?, form_decode(client_secret)?);
        check(&id, &secret).then_some(id)
    }

    pub fn authorization_code_grant(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<IssuedTokens, TokenError> {
        let invalid_code = || {
            TokenError::new(
                400,
                "invalid_grant",
                format!("Invalid authorization code {code}"),
            )
        };
        let now = self.now();
        let Some(grant) = self.codes.get(code) else {
            return Err(invalid_code());
        };
        // A code presented by another app is not consumed: that app cannot burn it.
        if grant.client_id != client_id {
            return Err(invalid_code());
        }
        // Single use: whatever happens next, this code is gone.
        let Some(grant) = self.codes.remove(code) else {
            return Err(invalid_code());
        };
        if grant.expires_at <= now {
            return Err(invalid_code());
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::new(
                400,
                "invalid_request",
                "Redirect URI mismatch.",
            ));
        }
        if let Some((challenge, method)) = &grant.challenge {
            let ok = code_verifier.is_some_and(|v| pkce_matches(v, challenge, *method));
            if !ok {
                return Err(TokenError::new(
                    400,
                    "invalid_request",
                    "Invalid code verifier",
                ));
            }
        }
        if self.user(&grant.user_id).is_none() {
            return Err(invalid_code());
        }
        // Re-authorization: the newest tokens win, older ones of this user and app die (4741).
        self.revoke_user(&grant.user_id, Some(client_id));
        self.counters.authorization_code_grants += 1;
        Ok(self.issue_tokens(&grant.user_id, client_id, grant.scopes))
    }

    pub fn refresh_token_grant(
        &mut self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<IssuedTokens, TokenError> {
        let invalid = || TokenError::new(400, "invalid_grant", "Invalid Token!");
        let Some(token) = self.refresh_tokens.get_mut(refresh_token) else {
            return Err(invalid());
        };
        if token.client_id != client_id {
            return Err(invalid());
        }
        match token.state {
            RefreshState::Active => {}
            RefreshState::Rotated => {
                self.counters.refresh_token_reuse += 1;
                return Err(invalid());
            }
            RefreshState::Revoked => return Err(invalid()),
        }
        // Rotation: the old refresh token and its access token die immediately.
        token.state = RefreshState::Rotated;
        let (user_id, scopes, grant) = (token.user_id.clone(), token.scopes.clone(), token.grant);
        self.access_tokens.retain(|_, t| t.grant != grant);
        self.counters.refresh_grants += 1;
        Ok(self.issue_tokens(&user_id, client_id, scopes))
    }

    /// Revokes an access or refresh token of `client_id` and its pair; unknown tokens are
    /// ignored (RFC 7009: the answer is the same).
    pub fn revoke_token(&mut self, client_id: &str, token: &str) {
        let grant = self
            .access_tokens
            .get(token)
            .filter(|t| t.client_id == client_id)
            .map(|t| t.grant)
            .or_else(|| {
                self.refresh_tokens
                    .get(token)
                    .filter(|t| t.client_id == client_id)
                    .map(|t| t.grant)
            });
        if let Some(grant) = grant {
            self.revoke_grant(grant);
        }
    }

    /// The user and scopes behind a live access token.
    pub fn authenticate_bearer(&self, access_token: &str) -> Option<(SimUser, Vec<String>)> {
        let token = self.access_tokens.get(access_token)?;
        if token.expires_at <= self.now() {
            return None;
        }
        let user = self.user(&token.user_id)?.clone();
        Some((user, token.scopes.clone()))
    }
}

pub(crate) fn pkce_matches(verifier: &str, challenge: &str, method: ChallengeMethod) -> bool {
    use base64::Engine;
    use sha2::Digest;
    let expected = match method {
        ChallengeMethod::Plain => verifier.to_owned(),
        ChallengeMethod::S256 => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes())),
    };
    constant_time_eq(expected.as_bytes(), challenge.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn form_decode(value: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={value}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ChallengeMethod::S256
        ));
        assert!(!pkce_matches(
            "wrong",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ChallengeMethod::S256
        ));
        assert!(pkce_matches("abc", "abc", ChallengeMethod::Plain));
    }

    #[test]
    fn faults_count_down() {
        let mut inner = Inner::new(SimConfig::default());
        inner.add_fault(Fault::Status {
            target: FaultTarget::Api,
            status: 503,
            times: Some(2),
        });
        assert!(inner.take_transport_fault(FaultTarget::Token).is_none());
        assert!(inner.take_transport_fault(FaultTarget::Api).is_some());
        assert!(inner.take_transport_fault(FaultTarget::Api).is_some());
        assert!(inner.take_transport_fault(FaultTarget::Api).is_none());
    }

    #[test]
    fn loopback_redirects() {
        let app = App {
            secret: "s".into(),
            redirect_uris: HashSet::new(),
            allow_loopback: true,
            scopes: vec![],
        };
        assert!(app.allows_redirect("http://127.0.0.1:3000/oauth/callback"));
        assert!(app.allows_redirect("http://localhost/cb"));
        assert!(!app.allows_redirect("https://evil.example/cb"));
        assert!(!app.allows_redirect("not a url"));
    }
}
