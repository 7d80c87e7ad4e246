//! POST /auth/refresh: spend a refresh token, get the next pair of its family; GET, with
//! sign-in on, renews a browser session on the way to a page.
//!
//! Presenting a spent token again after the grace interval is reuse: somebody holds a
//! copy, so the whole family (every token descended from that login) is revoked. A family
//! that rotates more than `refresh_limit` times per `refresh_limit_window` gets 429.

use http::Request;
use hyper::body::Incoming;
use serde::Deserialize;

use super::body;
use super::tokens::{self, Subject};
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::revoke::{Redemption, Rotation};
use crate::runtime::unix_now_ms;
use crate::token::verify::{self, Claim, TokenError};
use crate::token::{Claims, TokenType};
use crate::users::User;
use crate::Body;

/// The refresh body. Debug is not derived: it holds a token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// Rotates a refresh token.
pub async fn refresh(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let user_agent = super::login::user_agent(request.headers()).to_string();
    // By cookie, the caller may be any script on the page: the pair goes in cookies only.
    let (token, in_body) = match &snap.auth.cookies {
        Some(cookies) if body::is_empty(&request) => (cookie_token(cookies, &request)?, false),
        cookies => {
            let in_body = crate::cookies::tokens_in_body(cookies.as_ref(), request.headers());
            let read = body::read_json::<RefreshBody>(request, app.listen.idle_timeout).await?;
            (read.refresh_token, in_body)
        }
    };
    let pair = rotate(app, snap, conn, &token, &request_id, &user_agent).await?;
    Ok(tokens::pair_response(snap, &pair, in_body))
}

/// Whether a request to the refresh endpoint is a browser's renewal: GET, with sign-in on.
pub fn is_renewal(snap: &Snapshot, method: &http::Method) -> bool {
    snap.auth.sign_in.is_some() && method == http::Method::GET
}

/// GET {prefix}/refresh?rd=: a navigation whose access cookie expired renews the session
/// from the refresh cookie (same rotation and reuse detection as POST) and goes on to `rd`;
/// without a renewable session it goes to the sign-in page, its stale cookies cleared.
///
/// No CSRF header can come with a navigation; the `__Host-` CSRF cookie must be there
/// instead, which a sibling subdomain cannot plant beside a refresh cookie of its own.
pub async fn renew(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    use super::sign_in::{navigation, redirect, redirect_response};
    let (Some(cookies), Some(settings)) = (&snap.auth.cookies, &snap.auth.sign_in) else {
        return Err(Reject::NoRoute);
    };
    let request_id = super::request_id(&request);
    let host = super::sign_in::request_origin_host(&request)?;
    let origin = redirect::Origin {
        scheme: conn.proto,
        host: &host,
    };
    let rd = super::sign_in::query_param(&request, "rd").unwrap_or_default();
    let target = redirect::target(&rd, origin, &settings.allowed_hosts);
    let headers = request.headers();
    let csrf = crate::cookies::find(headers, crate::cookies::CSRF);
    let token = crate::cookies::find(headers, crate::cookies::REFRESH);
    let renewed = match (csrf, token) {
        (Ok(Some(csrf)), Ok(Some(token))) if !csrf.is_empty() => {
            let user_agent = super::login::user_agent(headers);
            Some(rotate(app, snap, conn, token, &request_id, user_agent).await)
        }
        _ => None,
    };
    match renewed {
        Some(Ok(pair)) => {
            let location = target.unwrap_or_else(|| origin.home());
            let mut response = redirect_response(http::StatusCode::FOUND, &location);
            crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
            Ok(response)
        }
        Some(Err(rejected)) if rejected.status().is_server_error() => Err(rejected),
        _ => {
            let prefix = &snap.auth.prefix;
            let location = navigation::sign_in_url(prefix, "sign-in", target.as_deref());
            let mut response = navigation::found(&location);
            crate::cookies::clear(cookies, response.headers_mut());
            Ok(response)
        }
    }
}

/// Spends a refresh token and mints the next pair of its family.
async fn rotate(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    token: &str,
    request_id: &str,
    user_agent: &str,
) -> Result<crate::revoke::Pair, Reject> {
    let now_ms = unix_now_ms();
    let now = now_ms / 1000;
    let claims = verified_refresh(app, snap, token, now).await?;
    let fam = claims
        .fam
        .clone()
        .ok_or(Reject::Token(TokenError::MissingClaim(Claim::Fam)))?;
    let user = current_user(app, snap, &claims).await?;
    let subject = Subject {
        name: &claims.sub,
        roles: &user.roles,
        claims: &user.claims,
        authn: &crate::token::Authn::of(&claims),
    };
    // Long enough to outlive every token the family can still hold, leeway included.
    let until = now + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    let redemption = Redemption {
        jti: &claims.jti,
        issued: claims.iat,
        fam: &fam,
        until,
        now,
        now_ms,
        grace_ms: snap.auth.reuse_grace_ms,
        limit: snap.auth.refresh_limit,
    };
    let rotation = app
        .revocations
        .redeem(&redemption)
        .await
        .map_err(|_| Reject::Unavailable("revocation store unavailable"))?;
    let ip = conn.client;
    match rotation {
        Rotation::Mint(next) => {
            let pair = tokens::issue_pair(snap, &subject, &fam, &next)?;
            tracing::info!(target: "audit", event = "refresh", user = %claims.sub, client = %ip, request_id, family = %fam);
            let (sub, amr) = (&claims.sub, &claims.amr);
            super::login::note_session(app, snap, sub, &fam, conn, user_agent, amr).await;
            super::sign_in::provider_sessions::renewed(app, snap, &claims, &fam).await;
            Ok(pair)
        }
        Rotation::Reuse => {
            tracing::warn!(target: "audit", event = "refresh_reuse_detected", user = %claims.sub, client = %ip, request_id, family = %fam);
            Err(Reject::RefreshReuse)
        }
        Rotation::Lost => {
            tracing::warn!(target: "audit", event = "refresh_record_lost", user = %claims.sub, client = %ip, request_id, family = %fam);
            Err(Reject::RefreshReuse)
        }
        Rotation::Throttled(retry_after) => {
            tracing::info!(target: "audit", event = "refresh_throttled", user = %claims.sub, client = %ip, request_id, family = %fam, retry_after);
            Err(Reject::RefreshThrottled(retry_after))
        }
    }
}

/// Cookie mode with an empty body: the refresh cookie, which, being a cookie a cross-site
/// page can make the browser send, needs the CSRF double submit.
fn cookie_token(
    cookies: &crate::cookies::CookieSettings,
    request: &Request<Incoming>,
) -> Result<String, Reject> {
    let token = crate::cookies::find(request.headers(), crate::cookies::REFRESH)
        .map_err(|_| Reject::Token(TokenError::Malformed))?
        .ok_or(Reject::Token(TokenError::Missing))?;
    crate::cookies::csrf_matches(cookies, request.headers())?;
    Ok(token.to_string())
}

/// A refresh token that verifies and is not revoked.
async fn verified_refresh(
    app: &App,
    snap: &Snapshot,
    token: &str,
    now: u64,
) -> Result<Claims, Reject> {
    let claims = verify::verify(&snap.keys, &snap.expect, token, TokenType::Refresh, now)
        .map_err(Reject::Token)?;
    let revoked = app
        .revocations
        .is_revoked_checked(
            &claims.jti,
            &claims.sub,
            claims.iat,
            claims.fam.as_deref(),
            now,
        )
        .await
        .map_err(|_| Reject::Unavailable("revocation store unavailable"))?;
    if revoked {
        return Err(Reject::Revoked);
    }
    Ok(claims)
}

/// The user's current record: a disabled or deleted user cannot refresh. A store that
/// cannot look users up (http), and a session started at an identity provider (in no local
/// store), keep the roles and claims the refresh token carries; the provider must still be
/// configured.
async fn current_user(app: &App, snap: &Snapshot, claims: &Claims) -> Result<User, Reject> {
    if let Some(idp) = &claims.idp {
        let known = snap.auth.sign_in.as_ref().and_then(|s| s.provider(idp));
        if known.is_none() {
            return Err(Reject::UserGone);
        }
    }
    if !app.users.can_lookup() || claims.idp.is_some() {
        return Ok(User {
            name: claims.sub.clone(),
            roles: claims.roles.clone(),
            claims: claims.extra.clone(),
            disabled: false,
            totp: None,
            recovery: Vec::new(),
        });
    }
    match app.users.lookup(&claims.sub).await {
        Ok(Some(user)) if !user.disabled => Ok(user),
        Ok(_) => Err(Reject::UserGone),
        Err(_) => Err(Reject::Unavailable("user store unavailable")),
    }
}
