//! POST /auth/login: credentials in, a token pair out; throttled per username and IP.

use http::Request;
use hyper::body::Incoming;
use serde::Deserialize;

use super::body;
use super::tokens::{self, Subject};
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::control::metrics::LoginOutcome;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::revoke::sessions::Session;
use crate::runtime::unix_now;
use crate::users::{LoginError, User};
use crate::Body;

/// The login body. Debug is not derived: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    /// The one-time code, for a user with a second factor.
    #[serde(default)]
    otp: Option<String>,
}

/// Checks the credentials and answers with a new token pair of a new family.
pub async fn login(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let user_agent = user_agent(request.headers()).to_string();
    let in_body = crate::cookies::tokens_in_body(snap.auth.cookies.as_ref(), request.headers());
    let creds: Credentials = body::read_json(request, app.listen.idle_timeout).await?;
    let user = check_credentials(app, conn, &creds.username, &creds.password, &request_id).await?;
    let otp = creds.otp.as_deref();
    let authn = super::second_factor::check(app, snap, conn, &user, otp, &request_id).await?;
    let pair = start_session(app, snap, conn, &user, &authn, &request_id, &user_agent).await?;
    Ok(tokens::pair_response(snap, &pair, in_body))
}

/// The password check every sign-in shares: throttle, user store, audit and metrics.
pub(super) async fn check_credentials(
    app: &App,
    conn: &ConnInfo,
    username: &str,
    password: &str,
    request_id: &str,
) -> Result<User, Reject> {
    // Throttle on the folded name, so "Alice" and "alice" share one counter.
    let throttle_key = username.to_ascii_lowercase();
    // A password typed into the username field must not reach the log: only names that
    // could exist are logged.
    let logged_user =
        crate::users::name::canonical(username).unwrap_or_else(|_| "<invalid name>".to_string());
    let ip = conn.client;
    let now = unix_now();
    // No Redis master reachable (the mirror lost its subscription): the throttle would fail
    // open and the new session could not be ended by a logout, so `on_error` decides.
    if !app.revocations.in_sync() && app.on_error == crate::revoke::OnError::Deny {
        app.metrics.login(LoginOutcome::Unavailable);
        return Err(Reject::Unavailable("revocation store unavailable"));
    }
    if let Err(retry_after) = app.throttle.check(&throttle_key, ip, now).await {
        tracing::info!(target: "audit", event = "login_throttled", user = %logged_user, client = %ip, request_id, retry_after);
        app.metrics.login(LoginOutcome::Throttled);
        return Err(Reject::Throttled(retry_after));
    }
    let user = match app
        .users
        .authenticate(&app.hasher, username, password)
        .await
    {
        Ok(user) => user,
        Err(LoginError::BadCredentials) => {
            app.throttle.record_failure(&throttle_key, ip, now).await;
            app.metrics.login(LoginOutcome::Failed);
            tracing::info!(target: "audit", event = "login_failed", user = %logged_user, client = %ip, request_id);
            return Err(Reject::BadCredentials);
        }
        Err(LoginError::Busy) => {
            app.metrics.login(LoginOutcome::Unavailable);
            return Err(Reject::Unavailable("too many logins in progress"));
        }
        Err(LoginError::Unavailable(reason)) => {
            app.metrics.login(LoginOutcome::Unavailable);
            tracing::warn!(reason, "user store unavailable");
            return Err(Reject::Unavailable("user store unavailable"));
        }
    };
    // With a second factor the counter is cleared only once the code passes too: else the
    // right password would wipe each wrong code's failure and codes could be guessed freely.
    if user.totp.is_none() {
        app.throttle.reset_user(&throttle_key).await;
    }
    app.metrics.login(LoginOutcome::Ok);
    Ok(user)
}

/// The User-Agent as the sessions page shows it ("" when absent or not text).
pub(super) fn user_agent(headers: &http::HeaderMap) -> &str {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Notes a sign-in or refresh of `fam` for the sessions page (only when the pages are on).
/// Only what the page shows: a failure is logged, and the session goes on.
pub(super) async fn note_session(
    app: &App,
    snap: &Snapshot,
    user: &str,
    fam: &str,
    conn: &ConnInfo,
    user_agent: &str,
    amr: &[String],
) {
    if snap.auth.sign_in.is_none() {
        return;
    }
    let now = unix_now();
    let until = now + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    let seen =
        Session::seen(fam, now, until, conn.client.to_string(), user_agent).signed_in_with(amr);
    if let Err(err) = app.sessions.record(user, seen).await {
        tracing::warn!(error = %err, user, "the sessions page missed a sign-in or refresh");
    }
}

/// A new token family for a user whose credentials were just checked.
pub(super) async fn start_session(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    user: &User,
    authn: &crate::token::Authn,
    request_id: &str,
    user_agent: &str,
) -> Result<crate::revoke::Pair, Reject> {
    let subject = Subject {
        name: &user.name,
        roles: &user.roles,
        claims: &user.claims,
        authn,
    };
    let started = start_family(app, snap, conn, &subject, request_id, user_agent).await?;
    Ok(started.0)
}

/// A new token family for a subject whose sign-in was just checked (here or at a provider):
/// its first pair and the family's id.
pub(super) async fn start_family(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    subject: &Subject<'_>,
    request_id: &str,
    user_agent: &str,
) -> Result<(crate::revoke::Pair, String), Reject> {
    let now = unix_now();
    let family = crate::token::mint::new_id();
    let next = crate::revoke::Successor::new(now);
    let pair = tokens::issue_pair(snap, subject, &family, &next)?;
    let idp = subject.authn.idp.as_deref();
    tracing::info!(target: "audit", event = "login_ok", user = %subject.name, idp, client = %conn.client, request_id, family = %family);
    let amr = &subject.authn.amr;
    note_session(app, snap, subject.name, &family, conn, user_agent, amr).await;
    Ok((pair, family))
}
