//! A passkey as the second factor: a person signed in with a password, sent to the
//! second-factor page by a route's `mfa = true` or `amr_any = ["hwk"]`, proves the passkey
//! they registered instead of typing a code. The challenge allows only that user's own
//! passkeys and is bound to that user; the session is then replaced, as after a code, by
//! one whose `amr` adds `hwk` and `mfa` (user verification is required) and whose
//! `auth_time` stays the first sign-in's.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use webauthn_rs::prelude::Passkey;

use super::ceremony::{self, Ceremony};
use super::sign_in::{denied, failed, store_counter, throttle, Assertion};
use super::{manage, refused, Ctx};
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::token::{Authn, Claims};
use crate::users::passkeys::{credential_id, StoredPasskey};
use crate::users::User;
use crate::Body;

use super::super::factor_session::{upgrade, Page, Shown, Stepped};
use super::super::{body, login};

/// POST `/step-up-options`: a challenge for one of the signed-in user's passkeys.
pub(super) async fn options(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let claims = match manage::checked(ctx, &request).await {
        Ok(claims) => claims,
        Err(response) => return Ok(response),
    };
    let records = passkeys_of(ctx, &claims.sub).await?;
    if records.is_empty() {
        let reason = "no passkey is registered for this account";
        return Ok(refused(StatusCode::CONFLICT, "no_passkey", reason));
    }
    let allowed: Vec<Passkey> = records.into_iter().map(|r| r.passkey).collect();
    let started = ctx.passkeys.webauthn.start_passkey_authentication(&allowed);
    let (options, state) = started.map_err(|err| {
        tracing::error!(error = %err, "passkey step-up could not start");
        Reject::Unavailable("passkeys unavailable")
    })?;
    let ceremony = Ceremony::StepUp {
        user: claims.sub,
        state,
    };
    let id = ceremony::start(ctx.app, ctx.conn.client, ceremony, unix_now()).await?;
    let value = serde_json::to_value(&options).map_err(|_| Reject::Unavailable("passkeys"))?;
    let mut response = body::json(StatusCode::OK, &value);
    ceremony::set_cookie(response.headers_mut(), Some(&id));
    Ok(response)
}

/// POST `/step-up`: checks the assertion against the challenge this session asked for and
/// upgrades the session; `{"redirect": target}` like the passkey sign-in.
pub(super) async fn finish(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let claims = match manage::checked(ctx, &request).await {
        Ok(claims) => claims,
        Err(response) => return Ok(response),
    };
    let now = unix_now();
    let request_id = super::super::super::request_id(&request);
    let user_agent = login::user_agent(request.headers()).to_string();
    let ceremony = ceremony::take(ctx.app, request.headers(), now).await?;
    let answer: Assertion = body::read_json(request, ctx.app.listen.idle_timeout).await?;
    let state = match ceremony {
        Some(Ceremony::StepUp { user, state }) if user == claims.sub => state,
        _ => {
            let reason = "no passkey step-up in progress for this session (it expired or was used)";
            return Ok(denied(ctx, &request_id, &claims.sub, reason));
        }
    };
    let user = match enabled_user(ctx, &claims.sub).await? {
        Some(user) => user,
        None => {
            return Ok(denied(
                ctx,
                &request_id,
                &claims.sub,
                "no such enabled user",
            ))
        }
    };
    throttle(ctx, &user.name, &request_id, now).await?;
    let webauthn = &ctx.passkeys.webauthn;
    let result = match webauthn.finish_passkey_authentication(&answer.credential, &state) {
        Ok(result) => result,
        Err(err) => return Ok(failed(ctx, &user.name, &request_id, now, &err).await),
    };
    let client = ctx.conn.client;
    let used = credential_id(result.cred_id().as_ref());
    let records = passkeys_of(ctx, &user.name).await?;
    if let Some(record) = records.iter().find(|r| r.id == used) {
        store_counter(ctx, &user.name, record, &result).await;
    }
    tracing::info!(target: "audit", event = "passkey_step_up", user = %user.name, %client, request_id, passkey = %used);
    let stepped = Stepped {
        user: &user,
        code: &passkey_authn(now),
        method: "hwk",
        request_id: &request_id,
        user_agent: &user_agent,
    };
    let mut response = upgraded(ctx, &claims, &stepped, &answer.rd).await?;
    ceremony::set_cookie(response.headers_mut(), None);
    Ok(response)
}

/// What a passkey adds to a password session: a hardware key, and with it two factors.
fn passkey_authn(now: u64) -> Authn {
    Authn {
        amr: vec!["hwk".to_string(), "mfa".to_string()],
        auth_time: Some(now),
        idp: None,
    }
}

/// The session replaced by the stepped-up one: the JSON answer with its cookies.
async fn upgraded(
    ctx: &Ctx<'_>,
    claims: &Claims,
    stepped: &Stepped<'_>,
    rd: &str,
) -> Result<Response<Body>, Reject> {
    let shown = Shown {
        snap: ctx.snap,
        settings: ctx.settings,
        csrf: "",
        passkey: String::new(),
    };
    let page = Page {
        app: ctx.app,
        conn: ctx.conn,
        shown: &shown,
        origin: ctx.origin,
        claims,
    };
    let (pair, target) = upgrade(&page, stepped, rd).await?;
    let mut response = body::json(StatusCode::OK, &serde_json::json!({ "redirect": target }));
    if let Some(cookies) = &ctx.snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
    }
    Ok(response)
}

/// The user's registered passkeys.
async fn passkeys_of(ctx: &Ctx<'_>, name: &str) -> Result<Vec<StoredPasskey>, Reject> {
    let listed = ctx.app.users.passkeys(name).await;
    listed.map_err(|_| Reject::Unavailable("user store unavailable"))
}

/// The session's user, when still in the store and enabled.
async fn enabled_user(ctx: &Ctx<'_>, name: &str) -> Result<Option<User>, Reject> {
    let found = ctx.app.users.lookup(name).await;
    found.map_err(|_| Reject::Unavailable("user store unavailable"))
}
