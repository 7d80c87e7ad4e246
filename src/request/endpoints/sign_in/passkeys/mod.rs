//! `{prefix}/passkeys`: passkeys (WebAuthn) registered after sign-in and used to sign in
//! without a username. The page lists the signed-in user's passkeys; its script (served
//! here, same origin, so the CSP needs no inline script) asks for a challenge, calls the
//! browser's WebAuthn API and posts the answer back:
//!
//! | path                           | who             | does                                  |
//! |--------------------------------|-----------------|---------------------------------------|
//! | GET  `/passkeys`               | signed in       | the list, add and remove buttons      |
//! | GET  `/passkeys/script.js`     | anyone          | the page script                       |
//! | POST `/passkeys/register-options`, `/register`, `/remove` | signed in + CSRF | registration, removal |
//! | POST `/passkeys/sign-in-options`, `/sign-in` | anyone (same origin) | username-less sign-in |
//! | POST `/passkeys/step-up-options`, `/step-up` | signed in + CSRF | the passkey as second factor |

mod ceremony;
mod manage;
mod sign_in;
mod step_up;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::redirect::Origin;
use crate::config::snapshot::{PasskeySettings, SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::Body;

/// The page script.
const SCRIPT: &str = include_str!("script.js");

/// What every handler here needs.
pub(super) struct Ctx<'a> {
    app: &'a App,
    snap: &'a Snapshot,
    conn: &'a ConnInfo,
    settings: &'a SignInSettings,
    passkeys: &'a PasskeySettings,
    origin: Origin<'a>,
}

/// Answers `{prefix}/passkeys` and the paths below it.
pub async fn passkeys(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let Some(passkeys) = &snap.auth.passkeys else {
        return Err(Reject::NoRoute);
    };
    let host = super::request_origin_host(&request)?;
    let ctx = Ctx {
        app,
        snap,
        conn,
        settings,
        passkeys,
        origin: Origin {
            scheme: conn.proto,
            host: &host,
        },
    };
    let base = format!("{}/passkeys", snap.auth.prefix);
    let rest = request
        .uri()
        .path()
        .strip_prefix(base.as_str())
        .unwrap_or_default();
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    let post = request.method() == Method::POST;
    match rest.trim_end_matches('/') {
        "" if get => manage::page(&ctx, &request).await,
        "/script.js" if get => Ok(script()),
        "/register-options" if post => manage::register_options(&ctx, request).await,
        "/register" if post => manage::register(&ctx, request).await,
        "/remove" if post => manage::remove(&ctx, request).await,
        "/sign-in-options" if post => sign_in::options(&ctx, request).await,
        "/sign-in" if post => sign_in::finish(&ctx, request).await,
        "/step-up-options" if post => step_up::options(&ctx, request).await,
        "/step-up" if post => step_up::finish(&ctx, request).await,
        "" | "/script.js" | "/register-options" | "/register" | "/remove" | "/sign-in-options"
        | "/sign-in" | "/step-up-options" | "/step-up" => Err(Reject::MethodNotAllowed),
        _ => Err(Reject::NoRoute),
    }
}

/// The sign-in page's passkey button, when passkeys are on (the page script drives it).
pub fn sign_in_button(prefix: &str, rd: &str) -> String {
    format!(
        "<p class=\"or\">or</p><div id=\"passkeys\" data-prefix=\"{prefix}\" data-rd=\"{rd}\"></div>\
<button type=\"button\" id=\"passkey-sign-in\">Sign in with a passkey</button>\
<p id=\"passkey-status\" role=\"status\"></p>\
<script src=\"{prefix}/passkeys/script.js\"></script>",
        prefix = super::page::escape(prefix),
        rd = super::page::escape(rd),
    )
}

/// What the page script reads from the page: where the gateway's paths are, where to go
/// afterwards, and the CSRF value and header its POSTs carry.
pub struct Script<'a> {
    /// The gateway's `[auth] prefix`.
    pub prefix: &'a str,
    /// Where the browser goes afterwards (checked again by the gateway).
    pub rd: &'a str,
    /// The session's CSRF value.
    pub csrf: &'a str,
    /// The header that carries it.
    pub header: &'a str,
}

/// The second-factor page's passkey button (the page script drives it).
pub fn step_up_button(data: &Script<'_>) -> String {
    format!(
        "<p>Use the passkey you registered:</p>\
<div id=\"passkeys\" data-prefix=\"{prefix}\" data-rd=\"{rd}\" data-csrf=\"{csrf}\" \
data-header=\"{header}\"></div>\
<button type=\"button\" id=\"passkey-step-up\">Use your passkey</button>\
<p id=\"passkey-status\" role=\"status\"></p><p class=\"or\">or</p>\
<script src=\"{prefix}/passkeys/script.js\"></script>",
        prefix = super::page::escape(data.prefix),
        rd = super::page::escape(data.rd),
        csrf = super::page::escape(data.csrf),
        header = super::page::escape(data.header),
    )
}

/// Lets a page run the gateway's own script and fetch from its own origin (the pages'
/// CSP otherwise allows neither).
pub fn allow_script(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    let csp = headers
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .map(|csp| format!("{csp}; script-src 'self'; connect-src 'self'"));
    if let Some(value) = csp.and_then(|csp| HeaderValue::from_str(&csp).ok()) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
}

fn script() -> Response<Body> {
    let mut response = Response::new(Body::Right(http_body_util::Full::new(Bytes::from_static(
        SCRIPT.as_bytes(),
    ))));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A JSON refusal: `{"error": code, "reason": text}` with `status`.
fn refused(status: StatusCode, code: &str, reason: &str) -> Response<Body> {
    let value = serde_json::json!({ "error": code, "reason": reason });
    super::body::json(status, &value)
}

/// Whether the request's CSRF header repeats the session's CSRF cookie.
fn csrf_ok(ctx: &Ctx<'_>, headers: &HeaderMap) -> bool {
    ctx.snap
        .auth
        .cookies
        .as_ref()
        .is_some_and(|settings| crate::cookies::csrf_matches(settings, headers).is_ok())
}
