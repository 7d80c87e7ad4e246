//! The signed-in side: the list of the user's passkeys, registering one, removing one.
//! Every POST needs the session, the session's CSRF value in the CSRF header (the page
//! carries it) and a same-origin request.

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::ceremony::{self, Ceremony};
use super::{refused, Ctx};
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::token::Claims;
use crate::users::passkeys::{user_handle, PasskeyChange, StoredPasskey};
use crate::users::ChangeError;
use crate::Body;

use super::super::{body, cross_site, navigation, page, sign_out::session};

const HEADING: &str = "Your passkeys";

/// The answer to `/register`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    /// What the user calls the passkey.
    #[serde(default)]
    label: String,
    /// The browser's `navigator.credentials.create` result.
    credential: RegisterPublicKeyCredential,
}

/// The answer to `/remove`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Removal {
    id: String,
}

/// The session of a signed-in user whose own store record can hold passkeys, or why not.
async fn claims_of(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Claims, Response<Body>> {
    let Some(claims) = session(ctx.app, ctx.snap, headers).await else {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "sign in first",
        ));
    };
    if claims.idp.is_some() || !ctx.app.users.can_change() {
        let reason = "passkeys need an account in the gateway's own user store";
        return Err(refused(StatusCode::NOT_IMPLEMENTED, "unsupported", reason));
    }
    Ok(claims)
}

/// GET: the list, with the buttons the script drives.
pub(super) async fn page(
    ctx: &Ctx<'_>,
    request: &Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let claims = session(ctx.app, ctx.snap, request.headers()).await;
    let csrf = crate::cookies::find(request.headers(), crate::cookies::CSRF)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty());
    let (Some(claims), Some(csrf)) = (claims, csrf) else {
        let back = ctx.origin.url_of(request);
        let prefix = &ctx.snap.auth.prefix;
        return Ok(navigation::session_first(prefix, request.headers(), &back));
    };
    let records = ctx
        .app
        .users
        .passkeys(&claims.sub)
        .await
        .map_err(|_| Reject::Unavailable("user store unavailable"))?;
    let mut rows = String::new();
    for record in &records {
        rows.push_str(&format!(
            "<li><p><strong>{label}</strong><br><small>{id}</small></p>\
<button type=\"button\" class=\"remove-passkey\" data-id=\"{id}\">Remove</button></li>",
            label = page::escape(&record.label),
            id = page::escape(&record.id),
        ));
    }
    let prefix = page::escape(&ctx.snap.auth.prefix);
    let body = format!(
        "<p>Signed in as <strong>{user}</strong>. {count} passkey(s).</p>\
<ul class=\"sessions\">{rows}</ul>\
<div id=\"passkeys\" data-prefix=\"{prefix}\" data-csrf=\"{csrf}\" data-header=\"{header}\"></div>\
<label for=\"passkey-label\">Name for a new passkey</label>\
<input id=\"passkey-label\" maxlength=\"60\" placeholder=\"laptop\">\
<button type=\"button\" id=\"add-passkey\">Add a passkey</button>\
<p id=\"passkey-status\" role=\"status\"></p>\
<p><a href=\"{prefix}/sessions\">Your sessions</a></p>\
<script src=\"{prefix}/passkeys/script.js\"></script>",
        user = page::escape(&claims.sub),
        count = records.len(),
        csrf = page::escape(csrf),
        header = page::escape(
            ctx.snap
                .auth
                .cookies
                .as_ref()
                .map_or("X-CSRF-Token", |c| c.csrf_header.as_str())
        ),
    );
    let mut response = page::html(ctx.settings, StatusCode::OK, HEADING, &body);
    super::allow_script(&mut response);
    Ok(response)
}

/// Checks a POST from a page with the passkey script: same origin, CSRF header, session.
pub(super) async fn checked(
    ctx: &Ctx<'_>,
    request: &Request<Incoming>,
) -> Result<Claims, Response<Body>> {
    if cross_site(request, ctx.origin) {
        let reason = "this request came from another site";
        return Err(refused(StatusCode::FORBIDDEN, "cross_site", reason));
    }
    let claims = claims_of(ctx, request.headers()).await?;
    if !super::csrf_ok(ctx, request.headers()) {
        let reason = "missing or wrong CSRF token";
        return Err(refused(StatusCode::FORBIDDEN, "csrf", reason));
    }
    Ok(claims)
}

/// POST `/register-options`: a registration challenge for the signed-in user.
pub(super) async fn register_options(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let user = match checked(ctx, &request).await {
        Ok(claims) => claims.sub,
        Err(response) => return Ok(response),
    };
    let existing = ctx
        .app
        .users
        .passkeys(&user)
        .await
        .map_err(|_| Reject::Unavailable("user store unavailable"))?;
    // The browser refuses to make a second passkey on an authenticator that has one.
    let exclude = existing
        .iter()
        .map(|r| r.passkey.cred_id().clone())
        .collect();
    let started = ctx.passkeys.webauthn.start_passkey_registration(
        user_handle(&user),
        &user,
        &user,
        Some(exclude),
    );
    let (options, state) = started.map_err(|err| {
        tracing::error!(error = %err, "passkey registration could not start");
        Reject::Unavailable("passkeys unavailable")
    })?;
    let ceremony = Ceremony::Register { user, state };
    let id = ceremony::start(ctx.app, ctx.conn.client, ceremony, unix_now()).await?;
    let value = serde_json::to_value(&options).map_err(|_| Reject::Unavailable("passkeys"))?;
    let mut response = body::json(StatusCode::OK, &value);
    ceremony::set_cookie(response.headers_mut(), Some(&id));
    Ok(response)
}

/// POST `/register`: checks the new credential against its challenge and stores it.
pub(super) async fn register(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let user = match checked(ctx, &request).await {
        Ok(claims) => claims.sub,
        Err(response) => return Ok(response),
    };
    let now = unix_now();
    let request_id = super::super::super::request_id(&request);
    let client = ctx.conn.client;
    // Taken before the body is read: whatever follows, this challenge is spent.
    let ceremony = ceremony::take(ctx.app, request.headers(), now).await?;
    let answer: Registration = body::read_json(request, ctx.app.listen.idle_timeout).await?;
    let state = match ceremony {
        Some(Ceremony::Register { user: owner, state }) if owner == user => state,
        _ => {
            tracing::info!(target: "audit", event = "passkey_register_refused", user = %user, %client, request_id, reason = "no registration in progress");
            let reason =
                "no passkey registration in progress (it expired or was used): start again";
            return Ok(refused(StatusCode::BAD_REQUEST, "no_ceremony", reason));
        }
    };
    let finished = ctx
        .passkeys
        .webauthn
        .finish_passkey_registration(&answer.credential, &state);
    let passkey = match finished {
        Ok(passkey) => passkey,
        Err(err) => {
            let reason = super::sign_in::reason(&err);
            tracing::info!(target: "audit", event = "passkey_register_refused", user = %user, %client, request_id, reason);
            return Ok(refused(StatusCode::BAD_REQUEST, "passkey_refused", reason));
        }
    };
    let record = StoredPasskey::new(passkey, &answer.label, now);
    let id = record.id.clone();
    let label = record.label.clone();
    match ctx
        .app
        .users
        .change_passkey(&user, PasskeyChange::Add(Box::new(record)))
        .await
    {
        Ok(()) => {}
        Err(ChangeError::Taken) => {
            let reason = "this passkey is registered already";
            return Ok(refused(StatusCode::CONFLICT, "taken", reason));
        }
        Err(ChangeError::Invalid(reason)) => {
            return Ok(refused(StatusCode::BAD_REQUEST, "invalid", reason));
        }
        Err(err) => {
            tracing::warn!(error = %err, user = %user, "passkey not stored");
            return Err(Reject::Unavailable("user store unavailable"));
        }
    }
    tracing::info!(target: "audit", event = "passkey_registered", user = %user, %client, request_id, passkey = %id);
    let value = serde_json::json!({ "id": id, "label": label });
    let mut response = body::json(StatusCode::OK, &value);
    ceremony::set_cookie(response.headers_mut(), None);
    Ok(response)
}

/// POST `/remove`: removes one of the signed-in user's passkeys.
pub(super) async fn remove(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let user = match checked(ctx, &request).await {
        Ok(claims) => claims.sub,
        Err(response) => return Ok(response),
    };
    let request_id = super::super::super::request_id(&request);
    let removal: Removal = body::read_json(request, ctx.app.listen.idle_timeout).await?;
    let change = PasskeyChange::Remove(removal.id.clone());
    match ctx.app.users.change_passkey(&user, change).await {
        Ok(()) => {}
        Err(ChangeError::UnknownUser) => {
            return Ok(refused(StatusCode::NOT_FOUND, "unknown", "no such passkey"));
        }
        Err(err) => {
            tracing::warn!(error = %err, user = %user, "passkey not removed");
            return Err(Reject::Unavailable("user store unavailable"));
        }
    }
    tracing::info!(target: "audit", event = "passkey_removed", user = %user, client = %ctx.conn.client, request_id, passkey = %removal.id);
    Ok(body::no_content())
}
