//! What a route demands of a request: token -> revocation -> policy, with every denial
//! audited once. Shared by the proxy and forward-auth, so both decide the same way.

use std::sync::Arc;

use crate::config::snapshot::{Route, Snapshot};
use crate::control::app::App;
use crate::policy::Policy;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::revoke::OnError;
use crate::runtime::unix_now;
use crate::token::Claims;

/// The first route in file order for a normalized path, or 404.
///
/// Shared by the proxy and forward-auth, so both decide on the same route.
pub fn find_route<'s>(
    snap: &'s Snapshot,
    host: Option<&str>,
    method: &http::Method,
    normalized: &str,
) -> Result<&'s Route, Reject> {
    snap.routes
        .find(host, method, normalized)
        .map(|(_, route)| route)
        .ok_or(Reject::NoRoute)
}

/// What a route demands of a request: nothing for a public route, else the CSRF check
/// (cookie mode) and `authorize`.
///
/// Shared by the proxy and forward-auth; the claims are None on a public route.
pub async fn authorize_route(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    route: &Route,
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<Option<Arc<Claims>>, Reject> {
    if !route.policy.requires_token() {
        return Ok(None);
    }
    if let Err(rejected) = crate::cookies::check_csrf(snap.auth.cookies.as_ref(), method, headers) {
        app.metrics.auth_decision(Some(rejected.deny_reason()));
        audit_denied(conn, route, None, rejected);
        return Err(rejected);
    }
    authorize(app, snap, conn, route, headers).await.map(Some)
}

/// Token, revocation, then policy; the claims are returned for the identity headers.
///
/// Every denial is logged here, once, on the `audit` target with the route and reason.
async fn authorize(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    route: &Route,
    headers: &http::HeaderMap,
) -> Result<Arc<Claims>, Reject> {
    let now = unix_now();
    let verified = crate::cookies::access_token(snap.auth.cookies.as_ref(), headers)
        .and_then(|token| crate::issuers::verify_access(snap, token, now));
    let claims = match verified {
        Ok(claims) => claims,
        Err(err) => {
            app.metrics
                .auth_decision(Some(Reject::Token(err).deny_reason()));
            audit_denied(conn, route, None, Reject::Token(err));
            return Err(Reject::Token(err));
        }
    };
    // A local read while the mirror is in sync; a Redis round trip only while it is not.
    let revoked = app
        .revocations
        .is_revoked_checked(
            &claims.jti,
            &claims.sub,
            claims.iat,
            claims.fam.as_deref(),
            now,
        )
        .await;
    let refused = match revoked {
        Ok(false) => check_policy(&route.policy, &claims, now).err(),
        Ok(true) => Some(Reject::Revoked),
        Err(_) if app.on_error == OnError::Allow => {
            tracing::error!(target: "audit", event = "revocation_unchecked", sub = %claims.sub, route = %route.pattern,
                "revocation store unavailable: request let through unchecked (on_error = \"allow\")");
            check_policy(&route.policy, &claims, now).err()
        }
        Err(_) => Some(Reject::Unavailable("revocation store unavailable")),
    };
    app.metrics.auth_decision(refused.map(Reject::deny_reason));
    if let Some(rejected) = refused {
        audit_denied(conn, route, Some(&claims.sub), rejected);
        return Err(rejected);
    }
    Ok(claims)
}

/// Roles, scopes and claims (403), then how the person signed in (401 step-up): one who
/// may never pass is told so before being asked to sign in again.
pub fn check_policy(policy: &Policy, claims: &Claims, now: u64) -> Result<(), Reject> {
    policy.evaluate(claims).map_err(Reject::Forbidden)?;
    policy.authn.check(claims, now).map_err(Reject::StepUp)
}

fn audit_denied(conn: &ConnInfo, route: &Route, sub: Option<&str>, rejected: Reject) {
    tracing::info!(target: "audit", event = "denied", client = %conn.client, route = %route.pattern,
        sub = sub.unwrap_or("-"), status = rejected.status().as_u16(), reason = rejected.reason(), "request denied");
}
