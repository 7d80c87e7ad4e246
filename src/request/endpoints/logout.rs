//! POST /auth/logout: revoke the presented access token and its whole refresh family.

use http::{HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::body;
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::token::verify;
use crate::token::{Claims, TokenType};
use crate::Body;

/// The optional logout body. Debug is not derived: it holds a token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Revokes; the answer is sent only once the revocation is stored.
///
/// In cookie mode a 401 (an access cookie that expired or was revoked) still clears the
/// cookies, so logging out always leaves the browser logged out; a 403 (no CSRF header)
/// does not, or any site could log a user out.
pub async fn logout(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let result = revoke_session(app, snap, conn, request).await;
    match (result, &snap.auth.cookies) {
        (Err(rejected), Some(settings)) if rejected.status() == StatusCode::UNAUTHORIZED => {
            app.metrics.gateway_answer(rejected);
            let mut response = crate::reject::respond(rejected).map(Body::Right);
            crate::cookies::clear(settings, response.headers_mut());
            Ok(response)
        }
        (result, _) => result,
    }
}

async fn revoke_session(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let now = unix_now();
    let cookies = snap.auth.cookies.as_ref();
    let access = match presented_access(snap, request.headers(), now) {
        Ok(access) => access,
        Err(refused) => {
            // Refused before the body is read: let it arrive first (see body::discard).
            body::discard(request, app.listen.idle_timeout).await;
            return Err(refused);
        }
    };
    let body: LogoutBody = match body::is_empty(&request) {
        true => LogoutBody {
            refresh_token: None,
        },
        false => body::read_json(request, app.listen.idle_timeout).await?,
    };
    let unavailable = |_| Reject::Unavailable("revocation store unavailable");
    let leeway = snap.expect.leeway_secs;
    end_sign_in(app, snap, &access, now).await?;
    let mut family = access.fam.clone();
    if let Some(refresh) = body.refresh_token {
        let claims = verify::verify(&snap.keys, &snap.expect, &refresh, TokenType::Refresh, now)
            .map_err(Reject::Token)?;
        // Only the caller's own session may be ended with their access token.
        if claims.sub != access.sub {
            return Err(Reject::BadRequest(
                "refresh token belongs to another subject",
            ));
        }
        if let Some(fam) = &claims.fam {
            let family_until = now + snap.lifetimes.refresh.as_secs() + leeway;
            app.revocations
                .revoke_family(fam, family_until)
                .await
                .map_err(unavailable)?;
        }
        app.revocations
            .revoke_jti(&claims.jti, claims.exp + leeway)
            .await
            .map_err(unavailable)?;
        family = claims.fam;
    }
    tracing::info!(target: "audit", event = "logout", user = %access.sub, client = %conn.client, request_id,
        family = family.as_deref().unwrap_or("-"));
    let mut response = body::no_content();
    if let Some(settings) = cookies {
        crate::cookies::clear(settings, response.headers_mut());
    }
    Ok(response)
}

/// Revokes an access token and its whole family, once stored.
///
/// Logging out ends the sign-in, not one token: every access token of the family must die
/// with it, whether the caller sent a refresh token, a bearer header or a cookie (the
/// refresh cookie is scoped to the refresh path and never reaches logout).
pub(super) async fn end_sign_in(
    app: &App,
    snap: &Snapshot,
    access: &crate::token::Claims,
    now: u64,
) -> Result<(), Reject> {
    let unavailable = |_| Reject::Unavailable("revocation store unavailable");
    // Verification forgives `leeway` past exp, so the revocation must outlive it as long.
    let leeway = snap.expect.leeway_secs;
    app.revocations
        .revoke_jti(&access.jti, access.exp + leeway)
        .await
        .map_err(unavailable)?;
    if let Some(fam) = &access.fam {
        let family_until = now + snap.lifetimes.refresh.as_secs() + leeway;
        app.revocations
            .revoke_family(fam, family_until)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The access token the caller presents (bearer or cookie, with its CSRF header), verified.
fn presented_access(snap: &Snapshot, headers: &HeaderMap, now: u64) -> Result<Claims, Reject> {
    let cookies = snap.auth.cookies.as_ref();
    if let (Some(settings), true) = (cookies, crate::cookies::by_cookie(cookies, headers)) {
        crate::cookies::csrf_matches(settings, headers)?;
    }
    let token = crate::cookies::access_token(cookies, headers).map_err(Reject::Token)?;
    verify::verify(&snap.keys, &snap.expect, token, TokenType::Access, now).map_err(Reject::Token)
}
