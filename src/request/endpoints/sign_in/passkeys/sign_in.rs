//! Signing in with a passkey alone: the browser picks a discoverable credential, whose user
//! handle and credential id name the account; webauthn-rs checks the challenge (one use),
//! the origin, the RP id hash, user verification, the signature and the counter. Every
//! refusal is a 401 with a reason and an audit event; a failure counts against the login
//! throttle of the account it claimed.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, PublicKeyCredential, WebauthnError,
};

use super::ceremony::{self, Ceremony};
use super::{refused, Ctx};
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::token::Authn;
use crate::users::passkeys::{credential_id, user_handle, PasskeyChange, StoredPasskey};
use crate::users::User;
use crate::Body;

use super::super::{body, cross_site, login, redirect};

/// The answer to `/sign-in` and `/step-up`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Assertion {
    /// The browser's `navigator.credentials.get` result.
    pub credential: PublicKeyCredential,
    /// Where to go afterwards, checked like the sign-in form's.
    #[serde(default)]
    pub rd: String,
}

/// POST `/sign-in-options`: a challenge for any discoverable passkey of this RP.
pub(super) async fn options(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    if cross_site(&request, ctx.origin) {
        let reason = "this request came from another site";
        return Ok(refused(StatusCode::FORBIDDEN, "cross_site", reason));
    }
    let started = ctx.passkeys.webauthn.start_discoverable_authentication();
    let (mut options, state) = started.map_err(|err| {
        tracing::error!(error = %err, "passkey sign-in could not start");
        Reject::Unavailable("passkeys unavailable")
    })?;
    // A button press, not autofill: the browser shows its own passkey chooser.
    options.mediation = None;
    let ceremony = Ceremony::SignIn(state);
    let id = ceremony::start(ctx.app, ctx.conn.client, ceremony, unix_now()).await?;
    let value = serde_json::to_value(&options).map_err(|_| Reject::Unavailable("passkeys"))?;
    let mut response = body::json(StatusCode::OK, &value);
    ceremony::set_cookie(response.headers_mut(), Some(&id));
    Ok(response)
}

/// A refusal, audited with the account it claimed (if any).
pub(super) fn denied(
    ctx: &Ctx<'_>,
    request_id: &str,
    user: &str,
    reason: &'static str,
) -> Response<Body> {
    let client = ctx.conn.client;
    tracing::info!(target: "audit", event = "passkey_sign_in_refused", user, %client, request_id, reason);
    refused(StatusCode::UNAUTHORIZED, "passkey_refused", reason)
}

/// POST `/sign-in`: checks the assertion and starts a session.
pub(super) async fn finish(
    ctx: &Ctx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    if cross_site(&request, ctx.origin) {
        let reason = "this request came from another site";
        return Ok(refused(StatusCode::FORBIDDEN, "cross_site", reason));
    }
    let now = unix_now();
    let request_id = super::super::super::request_id(&request);
    let user_agent = login::user_agent(request.headers()).to_string();
    let ceremony = ceremony::take(ctx.app, request.headers(), now).await?;
    let answer: Assertion = body::read_json(request, ctx.app.listen.idle_timeout).await?;
    let Some(Ceremony::SignIn(state)) = ceremony else {
        let reason = "no passkey sign-in in progress (it expired or was used)";
        return Ok(denied(ctx, &request_id, "", reason));
    };
    let (user, authn) = match check(ctx, &answer.credential, state, &request_id, now).await? {
        Ok(checked) => checked,
        Err(refusal) => return Ok(refusal),
    };
    let pair = login::start_session(
        ctx.app,
        ctx.snap,
        ctx.conn,
        &user,
        &authn,
        &request_id,
        &user_agent,
    )
    .await?;
    let target = redirect::target(&answer.rd, ctx.origin, &ctx.settings.allowed_hosts)
        .unwrap_or_else(|| ctx.origin.home());
    let mut response = body::json(StatusCode::OK, &serde_json::json!({ "redirect": target }));
    if let Some(cookies) = &ctx.snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
    }
    ceremony::set_cookie(response.headers_mut(), None);
    Ok(response)
}

/// The user the assertion proves and how, or the 401 refusal (audited); the passkey's
/// counter is stored when it moved.
async fn check(
    ctx: &Ctx<'_>,
    credential: &PublicKeyCredential,
    state: DiscoverableAuthentication,
    request_id: &str,
    now: u64,
) -> Result<Result<(User, Authn), Response<Body>>, Reject> {
    let webauthn = &ctx.passkeys.webauthn;
    let Ok((handle, raw_id)) = webauthn.identify_discoverable_authentication(credential) else {
        return Ok(Err(denied(
            ctx,
            request_id,
            "",
            "the passkey sent no user handle",
        )));
    };
    let (user, record) = match owner(ctx, &credential_id(raw_id)).await? {
        Some((user, record)) if user_handle(&user.name) == handle => (user, record),
        Some((user, _)) => {
            let reason = "the passkey's user handle is not its owner's";
            return Ok(Err(denied(ctx, request_id, &user.name, reason)));
        }
        None => return Ok(Err(denied(ctx, request_id, "", "unknown passkey"))),
    };
    let client = ctx.conn.client;
    throttle(ctx, &user.name, request_id, now).await?;
    let result =
        match webauthn.finish_discoverable_authentication_v2(credential, state, &record.passkey) {
            Ok(result) => result,
            Err(err) => return Ok(Err(failed(ctx, &user.name, request_id, now, &err).await)),
        };
    store_counter(ctx, &user.name, &record, &result).await;
    let amr: &[&str] = match result.user_verified() {
        true => &["hwk", "mfa"],
        false => &["hwk"],
    };
    tracing::info!(target: "audit", event = "passkey_sign_in", user = %user.name, %client, request_id, passkey = %record.id);
    let authn = Authn {
        amr: amr.iter().map(|m| m.to_string()).collect(),
        auth_time: Some(now),
        idp: None,
    };
    Ok(Ok((user, authn)))
}

/// 429 (audited) while `user` or the client is over the login throttle.
pub(super) async fn throttle(
    ctx: &Ctx<'_>,
    user: &str,
    request_id: &str,
    now: u64,
) -> Result<(), Reject> {
    let client = ctx.conn.client;
    if let Err(retry_after) = ctx.app.throttle.check(user, client, now).await {
        tracing::info!(target: "audit", event = "login_throttled", user, %client, request_id, retry_after);
        return Err(Reject::Throttled(retry_after));
    }
    Ok(())
}

/// A failed check: counted against `user`'s throttle, refused with its reason.
pub(super) async fn failed(
    ctx: &Ctx<'_>,
    user: &str,
    request_id: &str,
    now: u64,
    err: &WebauthnError,
) -> Response<Body> {
    let client = ctx.conn.client;
    ctx.app.throttle.record_failure(user, client, now).await;
    denied(ctx, request_id, user, reason(err))
}

/// Stores the passkey's signature counter (and backup state) when the assertion moved it.
pub(super) async fn store_counter(
    ctx: &Ctx<'_>,
    user: &str,
    record: &StoredPasskey,
    result: &AuthenticationResult,
) {
    let mut updated = record.clone();
    if updated.passkey.update_credential(result) == Some(true) {
        let change = PasskeyChange::Update(Box::new(updated));
        if let Err(err) = ctx.app.users.change_passkey(user, change).await {
            // The counter check stays as strict as the stored value: never weaker.
            tracing::warn!(error = %err, user, "passkey counter not stored");
        }
    }
}

/// The enabled user who registered credential `id`, and its record.
async fn owner(ctx: &Ctx<'_>, id: &str) -> Result<Option<(User, StoredPasskey)>, Reject> {
    let unavailable = |_| Reject::Unavailable("user store unavailable");
    let users = &ctx.app.users;
    let Some(name) = users.passkey_owner(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    let lookup = users.lookup(&name).await;
    let Some(user) = lookup.map_err(|_| Reject::Unavailable("user store unavailable"))? else {
        return Ok(None);
    };
    let records = users.passkeys(&name).await.map_err(unavailable)?;
    Ok(records
        .into_iter()
        .find(|r| r.id == id)
        .map(|record| (user, record)))
}

/// What to tell the browser and the audit log about a failed check (no key material).
pub(super) fn reason(err: &WebauthnError) -> &'static str {
    match err {
        WebauthnError::InvalidRPOrigin => "wrong origin",
        WebauthnError::InvalidRPIDHash => "wrong relying-party id",
        WebauthnError::MismatchedChallenge | WebauthnError::ChallengeNotFound => {
            "the challenge does not match (replayed?)"
        }
        WebauthnError::CredentialPossibleCompromise => {
            "the signature counter went backwards (a cloned authenticator?)"
        }
        WebauthnError::UserNotVerified => "the authenticator did not verify the user",
        WebauthnError::AuthenticationFailure => "bad signature",
        WebauthnError::InvalidClientDataType => "wrong ceremony type",
        _ => "the passkey's answer does not verify",
    }
}
