//! `POST {prefix}/backchannel-logout/{id}`: a provider says a person signed out there
//! (OpenID Connect Back-Channel Logout 1.0); their gateway sessions through that provider
//! end, on every instance when the revocations live in Redis.
//!
//! The caller is the provider's server, not a browser: no cookie, no CSRF value, only the
//! logout token, which must verify with the provider's keys and is spent once (its `jti`
//! is kept in the revocation store until it expires, so a replay is refused everywhere).
//! A token naming a `sid` ends only the sessions that provider session started.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::super::body;
use super::provider_sessions;
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::issuers::provider::{LogoutOrder, Provider};
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::store::StoreError;
use crate::Body;

/// Verifies the logout token and revokes every token of the person's provider sessions.
pub async fn logout(
    app: &App,
    snap: &Snapshot,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let provider = super::provider::named_any(snap, settings, &request, "backchannel-logout")?;
    let request_id = super::super::request_id(&request);
    if !body::has_media_type(&request, "application/x-www-form-urlencoded") {
        return Err(Reject::BadRequest("expected a form with logout_token"));
    }
    let bytes = body::read_limited(request, app.listen.idle_timeout).await?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == "logout_token")
        .map(|(_, value)| value.into_owned())
        .ok_or(Reject::BadRequest("expected a form with logout_token"))?;
    let (leeway, now) = (snap.expect.leeway_secs, unix_now());
    let refused = |reason: &str| {
        tracing::info!(target: "audit", event = "backchannel_logout_refused", provider = %provider.id, reason, request_id);
        Reject::BadRequest("logout token refused")
    };
    let order = provider
        .logout_order(&app.jwks_client, &token, leeway, now)
        .await
        .map_err(|reason| refused(&reason))?;
    let unavailable = |_| Reject::Unavailable("revocation store unavailable");
    if !spend(app, provider, &order, leeway, now)
        .await
        .map_err(unavailable)?
    {
        return Err(refused("jti replayed"));
    }
    let ended = end_sessions(app, snap, provider, &order, now)
        .await
        .map_err(unavailable)?;
    let user = order
        .sub
        .as_deref()
        .map(|sub| format!("{}:{sub}", provider.id));
    tracing::info!(target: "audit", event = "backchannel_logout", provider = %provider.id,
        user = user.as_deref().unwrap_or("-"), by_sid = order.sid.is_some(), ended = %ended, request_id);
    let mut response = body::no_content();
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Spends the token's jti, scoped to the provider: "revoked" until the token expires, so
/// it works once on every instance. False when it was spent already.
async fn spend(
    app: &App,
    provider: &Provider,
    order: &LogoutOrder,
    leeway: u64,
    now: u64,
) -> Result<bool, StoreError> {
    let spent = format!("logout:{}:{}", provider.id, order.jti);
    let revocations = &app.revocations;
    if revocations
        .is_revoked_checked(&spent, "", 0, None, now)
        .await?
    {
        return Ok(false);
    }
    let until = order.exp.max(now) + leeway;
    revocations.revoke_jti(&spent, until).await?;
    Ok(true)
}

/// Ends what the order names (Back-Channel Logout 1.0, 2.7): with a `sid`, the families
/// that provider session started; with only a `sub`, or a `sid` the gateway has no record
/// of beside a `sub` (a session older than its record, or started before the provider sent
/// `sid`s), every session of the person through this provider. What was ended, for the log.
async fn end_sessions(
    app: &App,
    snap: &Snapshot,
    provider: &Provider,
    order: &LogoutOrder,
    now: u64,
) -> Result<String, StoreError> {
    if let Some(sid) = &order.sid {
        let families = provider_sessions::families(app, &provider.id, sid, now).await?;
        for family in &families {
            let until = family.until.max(now) + snap.expect.leeway_secs;
            app.revocations.revoke_family(&family.fam, until).await?;
        }
        if !families.is_empty() || order.sub.is_none() {
            return Ok(format!("{} session(s) of the sid", families.len()));
        }
    }
    let Some(sub) = &order.sub else {
        return Ok("nothing".into());
    };
    // Everything issued up to now (and within the leeway a fresh iat may have).
    let before = now + 1 + snap.expect.leeway_secs;
    let user = format!("{}:{sub}", provider.id);
    app.revocations.revoke_subject(&user, before).await?;
    Ok("every session of the person".into())
}
