//! The HTML pages a person sees: the choice page, the result pages, the session error page.
//! Plain, accessible HTML that works without JavaScript; the only script (the result page's
//! postMessage) runs under a per-response CSP nonce.

use crate::app::callback::CallbackErrorCode;
use crate::app::connect::StoredSession;
use crate::domain::AuthType;
use crate::zoom::catalogue::MissingAction;

pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.5}\
h1{font-size:1.4rem}fieldset{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}\
label{display:block;margin:.5rem 0}input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{background:#0b5cff;color:#fff;border:0;border-radius:6px;padding:.6rem 1.4rem;font-size:1rem;cursor:pointer}\
.error{background:#fde8e8;border:1px solid #f5b5b5;padding:.75rem;border-radius:6px}.hint{color:#555;font-size:.9rem}\
ol li{margin:.3rem 0}";

fn layout(title: &str, body_attrs: &str, content: &str, script: Option<(&str, &str)>) -> String {
    let script = script
        .map(|(nonce, code)| format!("<script nonce=\"{nonce}\">{code}</script>"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body {body_attrs}><main>{content}</main>{script}</body></html>",
        title = escape(title)
    )
}

/// The choice page of `GET /connect` (and `POST /connect` with a message when incomplete).
pub fn choice_page(
    session_token: &str,
    session: &StoredSession,
    message: &str,
    webhook_base: &str,
) -> String {
    let byo_fixed = session.auth_type == Some(AuthType::ByoApp);
    let error = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
            escape(message)
        )
    };
    let platform_choice = if byo_fixed {
        String::new()
    } else {
        "<label><input type=\"radio\" name=\"auth_type\" value=\"platform_app\" id=\"auth-platform\" checked> OAuth 2.0 Authorization code\
<span class=\"hint\"> — sign in to Zoom and allow access with our Zoom app.</span></label>"
            .to_owned()
    };
    let byo_checked = if byo_fixed { " checked" } else { "" };
    let repair = if session.repair_credentials {
        "<p class=\"hint\" id=\"repair-hint\" role=\"status\">Zoom no longer accepts the client secret stored for this app, \
or it is gone. Enter the app's current client secret (Zoom App Marketplace → your app → App Credentials) to reconnect.</p>"
    } else {
        ""
    };
    let client_id = escape(session.client_id.as_deref().unwrap_or(""));
    let content = format!(
        "<h1>Connect your Zoom account</h1>{error}{repair}\
<form method=\"post\" action=\"connect\">\
<input type=\"hidden\" name=\"session\" value=\"{session}\">\
<fieldset><legend>How do you want to connect?</legend>{platform_choice}\
<label><input type=\"radio\" name=\"auth_type\" value=\"byo_app\" id=\"auth-byo\"{byo_checked}> Bring your own OAuth 2.0 app\
<span class=\"hint\"> — use a Zoom app from your own Zoom Marketplace account.</span></label>\
<label for=\"client_id\">Client ID</label><input type=\"text\" id=\"client_id\" name=\"client_id\" value=\"{client_id}\" autocomplete=\"off\" spellcheck=\"false\">\
<label for=\"client_secret\">Client secret</label><input type=\"password\" id=\"client_secret\" name=\"client_secret\" autocomplete=\"off\">\
<p class=\"hint\">Only needed for your own app. Its redirect URL must be this connector's callback URL.</p>\
<label for=\"webhook_secret_token\">Webhook secret token (optional)</label><input type=\"password\" id=\"webhook_secret_token\" name=\"webhook_secret_token\" autocomplete=\"off\">\
<p class=\"hint\" id=\"webhook-help\">For Zoom events (triggers) and uninstall notices from your own app: copy the <strong>Secret Token</strong> \
from your Zoom app's <strong>Features → Access</strong> page. After connecting, turn on <strong>Event Subscriptions</strong> there, \
set the <strong>Event notification endpoint URL</strong> to <code id=\"webhook-url\">{webhook_base}<em>your-client-id</em></code> \
and validate it, then tick the events you want: Meeting (created, updated, deleted, started, ended, participant joined and left), \
Recording (all recordings have completed, recording transcript files have completed), User (updated), Webinar events, \
and App → <strong>app deauthorized</strong>. The token is kept once per app: connecting the same app later with another token replaces it.</p>\
</fieldset><button type=\"submit\" id=\"connect\">Connect</button></form>",
        session = escape(session_token),
        webhook_base = escape(webhook_base),
    );
    layout("Connect Zoom", "data-page=\"choice\"", &content, None)
}

/// The page for an unknown, expired or used connect link.
pub fn session_invalid_page() -> String {
    layout(
        "Connect link expired",
        "data-status=\"error\" data-error-code=\"session_invalid\"",
        "<h1>This connect link can't be used</h1><p>It has expired (links are valid for 30 minutes) or was already used.</p>\
<p>Go back to the app you came from and start connecting Zoom again.</p>",
        None,
    )
}

/// A connect form sent from another site (its session stays usable from the real page).
pub fn cross_site_page() -> String {
    layout(
        "Connect form refused",
        "data-status=\"error\" data-error-code=\"cross_site_request\"",
        "<h1>This form was sent from another website</h1><p>The Zoom connect form only accepts what is sent from its own page, so nothing was done.</p>\
<p>Go back to the app you came from and open its Zoom connect window again.</p>",
        None,
    )
}

fn error_text(code: CallbackErrorCode) -> (&'static str, String) {
    match code {
        CallbackErrorCode::StateInvalid => (
            "This sign-in attempt is no longer valid",
            "<p>The attempt expired, was already completed, or was started in another browser.</p><p>Close this window and start connecting Zoom again from the app.</p>".into(),
        ),
        CallbackErrorCode::AccessDenied => (
            "Zoom access was not allowed",
            "<p>The request to access your Zoom account was declined.</p><p>To connect, start again and press <strong>Allow</strong> on Zoom's page.</p>".into(),
        ),
        CallbackErrorCode::AdminPreapprovalRequired => (
            "Your Zoom admin must approve this app first",
            "<p>Your Zoom account only lets people use apps that an administrator has pre-approved.</p>\
<p>Ask your Zoom account admin to do one of these, then connect again:</p><ol>\
<li>Sign in to the <strong>Zoom App Marketplace</strong> as an admin and open <strong>Manage → Permissions</strong>.</li>\
<li>Either turn off the <strong>\"Require pre-approval\"</strong> switch (the pre-approval setting for apps), or</li>\
<li>pre-approve this app: search for it under <strong>Who can install</strong> and approve it for all users, or for the users or groups that need it.</li></ol>".into(),
        ),
        CallbackErrorCode::InvalidClient => (
            "Zoom did not accept the app's credentials",
            "<p>The client ID or client secret is wrong, or the app was deleted or deactivated in the Zoom App Marketplace.</p><p>Check both values in your Zoom app (App credentials) and connect again.</p>".into(),
        ),
        CallbackErrorCode::InvalidGrant => (
            "The sign-in took too long",
            "<p>Zoom's authorization code expired or was already used. Start connecting again.</p>".into(),
        ),
        CallbackErrorCode::ReconnectUserMismatch => (
            "You signed in as another Zoom user",
            "<p>This window reconnects an existing Zoom connection, but Zoom signed you in as a different user or account. Nothing was changed.</p>\
<p>Sign out of Zoom in this browser (or sign in as the connection's user), then start reconnecting again from the app.</p>".into(),
        ),
        CallbackErrorCode::AuthorizationSuperseded => (
            "A newer sign-in replaced this one",
            "<p>You signed in to Zoom again meanwhile (in another window, or by pressing twice). Zoom keeps only the newest sign-in, and that one completes the connection.</p>\
<p>Close this window. If the other window did not report success, connect again.</p>".into(),
        ),
        CallbackErrorCode::CredentialsMissing => (
            "This connection's saved app credentials are gone",
            "<p>The client secret saved for this connection's Zoom app is missing, so the reconnect could not finish. Nothing was changed.</p>\
<p>Start reconnecting again from the app: you will be asked for your Zoom app's client secret (App credentials in the Zoom App Marketplace).</p>".into(),
        ),
        CallbackErrorCode::RedirectUriMismatch => (
            "The app's redirect URL does not match",
            "<p>Zoom refused the redirect URL. In your Zoom app, add this connector's callback URL to <strong>Redirect URL for OAuth</strong> and to the <strong>OAuth allow list</strong>, then connect again.</p>".into(),
        ),
        CallbackErrorCode::ZoomUnavailable => (
            "Zoom is not responding",
            "<p>Zoom could not be reached or answered with an error. Nothing was saved.</p><p>Wait a minute and connect again.</p>".into(),
        ),
        CallbackErrorCode::ZoomError => (
            "Zoom returned an error",
            "<p>Zoom answered in an unexpected way. Nothing was saved. Try connecting again; if it keeps failing, contact support.</p>".into(),
        ),
        CallbackErrorCode::TemporarilyUnavailable => (
            "The service is briefly unavailable",
            "<p>We could not save the connection just now. Nothing was saved.</p><p>Wait a minute and connect again.</p>".into(),
        ),
        CallbackErrorCode::InternalError => (
            "Something went wrong on our side",
            "<p>Nothing was saved. Try connecting again in a minute.</p>".into(),
        ),
    }
}

/// What a connection made with too few scopes cannot do, and the scopes to add in the Zoom
/// app (then reconnect). Empty when nothing is missing.
fn missing_scopes_note(missing: &[MissingAction]) -> String {
    if missing.is_empty() {
        return String::new();
    }
    let items: String = missing
        .iter()
        .map(|(action, scopes)| {
            format!(
                "<li><code>{}</code>: add the scope <code>{}</code></li>",
                escape(action),
                scopes
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join("</code> or <code>")
            )
        })
        .collect();
    format!(
        "<div class=\"notice\" data-missing-actions=\"{}\"><p>Your Zoom app lacks scopes, so some actions will be refused until you add them in the Zoom App Marketplace (your app → Scopes) and connect again:</p><ul>{items}</ul></div>",
        escape(
            &missing
                .iter()
                .map(|(a, _)| *a)
                .collect::<Vec<_>>()
                .join(" ")
        )
    )
}

/// The result page; posts `message` to the opener on each allowed origin, then closes.
pub fn result_page(
    result: Result<(&str, &[MissingAction]), CallbackErrorCode>,
    origins: &[String],
    nonce: &str,
) -> String {
    let (attrs, title, content, message) = match result {
        Ok((connection_id, missing)) => (
            format!(
                "data-status=\"success\" data-connection-id=\"{}\"",
                escape(connection_id)
            ),
            "Zoom connected",
            format!(
                "<h1>Zoom is connected</h1>{}<p>You can close this window.</p>",
                missing_scopes_note(missing)
            ),
            serde_json::json!({ "type": "zoom-connector", "status": "success", "connection_id": connection_id }),
        ),
        Err(code) => {
            let (title, body) = error_text(code);
            (
                format!(
                    "data-status=\"error\" data-error-code=\"{}\"",
                    code.as_str()
                ),
                title,
                format!(
                    "<h1>{}</h1>{body}<p class=\"hint\">Error code: <code>{}</code></p>",
                    escape(title),
                    code.as_str()
                ),
                serde_json::json!({ "type": "zoom-connector", "status": "error", "error": code.as_str() }),
            )
        }
    };
    let origins_json = serde_json::to_string(origins).unwrap_or_else(|_| "[]".into());
    // JSON inside a script: escape '<' so no value can close the script element.
    let message = message.to_string().replace('<', "\\u003c");
    let origins_json = origins_json.replace('<', "\\u003c");
    let close = if result.is_ok() {
        "setTimeout(function(){window.close();},300);"
    } else {
        ""
    };
    let script = format!(
        "(function(){{var m={message};var o={origins_json};if(window.opener){{for(var i=0;i<o.length;i++){{try{{window.opener.postMessage(m,o[i]);}}catch(e){{}}}}{close}}}}})();"
    );
    layout(title, &attrs, &content, Some((nonce, &script)))
}

/// The connect helper's demo page (packages/zoom-connect/demo): a page of the integration UI,
/// served from another origin than the connector's (by the local stack at `/local/demo` and
/// by the browser tests), never by a Lambda.
const CONNECT_DEMO_HTML: &str = include_str!("../../../packages/zoom-connect/demo/index.html");

/// Its script, served beside it as `demo.js`.
pub const CONNECT_DEMO_JS: &str = include_str!("../../../packages/zoom-connect/demo/demo.js");

/// The demo page for one connect URL, and the strict CSP it is served under (scripts only from
/// its own origin and the connector's, no inline script): the helper must work under it.
pub fn connect_demo_page(connector_url: &str, connect_url: &str) -> (String, String) {
    let html = CONNECT_DEMO_HTML
        .replace("{{CONNECTOR_URL}}", &escape(connector_url))
        .replace("{{CONNECT_URL}}", &escape(connect_url));
    let origin = url::Url::parse(connector_url)
        .map(|u| crate::config::origin_of(&u))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self' {origin}; connect-src {origin}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    (html, csp)
}
