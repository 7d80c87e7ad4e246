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
use crate::runtime::unix_now;
use crate::users::LoginError;
use crate::Body;

/// The login body. Debug is not derived: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

/// Checks the credentials and answers with a new token pair of a new family.
pub async fn login(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let in_body = crate::cookies::tokens_in_body(snap.auth.cookies.as_ref(), request.headers());
    let creds: Credentials = body::read_json(request, app.listen.idle_timeout).await?;
    // Throttle on the folded name, so "Alice" and "alice" share one counter.
    let throttle_key = creds.username.to_ascii_lowercase();
    // A password typed into the username field must not reach the log: only names that
    // could exist are logged.
    let logged_user = crate::users::name::canonical(&creds.username)
        .unwrap_or_else(|_| "<invalid name>".to_string());
    let ip = conn.client;
    let now = unix_now();
    if let Err(retry_after) = app.throttle.check(&throttle_key, ip, now).await {
        tracing::info!(target: "audit", event = "login_throttled", user = %logged_user, client = %ip, request_id, retry_after);
        app.metrics.login(LoginOutcome::Throttled);
        return Err(Reject::Throttled(retry_after));
    }
    let user = match app
        .users
        .authenticate(&app.hasher, &creds.username, &creds.password)
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
    app.throttle.reset_user(&throttle_key).await;
    app.metrics.login(LoginOutcome::Ok);
    let family = crate::token::mint::new_id();
    let subject = Subject {
        name: &user.name,
        roles: &user.roles,
        claims: &user.claims,
    };
    let next = crate::revoke::Successor::new(now);
    let pair = tokens::issue_pair(snap, &subject, &family, &next)?;
    tracing::info!(target: "audit", event = "login_ok", user = %user.name, client = %ip, request_id, family = %family);
    Ok(tokens::pair_response(snap, &pair, in_body))
}
