//! POST /auth/password: a signed-in user changes their own password.
//!
//! The caller is whoever the access token names (bearer, or the access cookie with the CSRF
//! double submit, as for logout). The current password is checked as a login checks it:
//! same throttle counters, same argon2 work, same 401 for a wrong or disabled account. The
//! new hash is written to the store (file or Redis) before anything else happens; the http
//! store keeps its passwords in its backend and gets 501.
//!
//! Then every token the user holds is revoked, this session's included: a subject
//! revocation of everything issued before the end of the current second (a password change
//! is what an owner does when a session may be someone else's). The answer waits for that
//! second to end and carries a fresh pair of a new family issued after it, so the caller
//! stays signed in, and a login with the new password right after is not caught by the cut.

use http::Request;
use hyper::body::Incoming;
use serde::Deserialize;

use super::body;
use super::tokens::{self, Subject};
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::token::TokenType;
use crate::token::{verify, Authn, Claims};
use crate::users::{ChangeError, LoginError, User};
use crate::Body;

/// The body. Debug is not derived: it holds two passwords.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; 200 with a new pair once the old tokens are revoked.
pub async fn change(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let user_agent = super::login::user_agent(request.headers()).to_string();
    let in_body = crate::cookies::tokens_in_body(snap.auth.cookies.as_ref(), request.headers());
    let session = signed_in(app, snap, &request).await?;
    if !app.users.can_change() {
        return Err(Reject::NotSupported(
            "passwords are managed by the http user store's backend",
        ));
    }
    let form: PasswordChange = body::read_json(request, app.listen.idle_timeout).await?;
    let change = Change {
        sub: &session.sub,
        session: Authn::of(&session),
        current: &form.current_password,
        new: &form.new_password,
        request_id: &request_id,
        user_agent: &user_agent,
    };
    let pair = change_password(app, snap, conn, &change).await?;
    Ok(tokens::pair_response(snap, &pair, in_body))
}

/// One password change, from the JSON endpoint or the page.
pub(super) struct Change<'a> {
    /// The signed-in user.
    pub sub: &'a str,
    /// How the session asking for the change signed in.
    pub session: Authn,
    /// The password as typed now.
    pub current: &'a str,
    /// The password to set.
    pub new: &'a str,
    /// For the audit events.
    pub request_id: &'a str,
    /// For the new session's record.
    pub user_agent: &'a str,
}

/// Checks the current password, stores the new one, revokes every earlier token of the
/// user and returns the pair of a new session issued after that cut.
pub(super) async fn change_password(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    change: &Change<'_>,
) -> Result<crate::revoke::Pair, Reject> {
    let sub = change.sub;
    crate::users::name::check_password(sub, change.new).map_err(Reject::BadRequest)?;
    let user = check_current(app, conn, sub, change.current, change.request_id).await?;
    app.users
        .set_password(&app.hasher, sub, change.new)
        .await
        .map_err(|err| match err {
            ChangeError::UnknownUser => Reject::UserGone,
            ChangeError::Unsupported => {
                Reject::NotSupported("this user store cannot change passwords")
            }
            other => {
                tracing::warn!(error = %other, "password change not stored");
                Reject::Unavailable("user store unavailable")
            }
        })?;
    tracing::info!(target: "audit", event = "password_changed", user = %sub, client = %conn.client, request_id = change.request_id);
    let issued = revoke_earlier_tokens(app, sub).await?;
    let authn = after_change(&change.session, issued);
    let subject = Subject {
        name: &user.name,
        roles: &user.roles,
        claims: &user.claims,
        authn: &authn,
    };
    let family = crate::token::mint::new_id();
    let pair = tokens::issue_pair(
        snap,
        &subject,
        &family,
        &crate::revoke::Successor::new(issued),
    )?;
    let agent = change.user_agent;
    super::login::note_session(app, snap, &user.name, &family, conn, agent, &authn.amr).await;
    Ok(pair)
}

/// The new session's sign-in: the old session's methods (a second factor it proved stays
/// proved) plus the password just checked, and the old sign-in time (typing the password
/// again is not a new sign-in, or it would refresh a second factor's `max_auth_age`).
fn after_change(session: &Authn, now: u64) -> Authn {
    let mut amr = session.amr.clone();
    if !amr.iter().any(|m| m == "pwd") {
        amr.insert(0, "pwd".to_owned());
    }
    Authn {
        amr,
        auth_time: session.auth_time.or(Some(now)),
        idp: None,
    }
}

/// The claims of a valid, unrevoked access token of this gateway (bearer, or by cookie
/// with the CSRF double submit). Tokens of external issuers name no user of this store.
async fn signed_in(
    app: &App,
    snap: &Snapshot,
    request: &Request<Incoming>,
) -> Result<Claims, Reject> {
    let now = unix_now();
    let cookies = snap.auth.cookies.as_ref();
    let headers = request.headers();
    if let (Some(settings), true) = (cookies, crate::cookies::by_cookie(cookies, headers)) {
        crate::cookies::csrf_matches(settings, headers)?;
    }
    let token = crate::cookies::access_token(cookies, headers).map_err(Reject::Token)?;
    let claims = verify::verify(&snap.keys, &snap.expect, token, TokenType::Access, now)
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
    match revoked {
        true => Err(Reject::Revoked),
        false => Ok(claims),
    }
}

/// The current password, checked and throttled exactly as a login checks it.
async fn check_current(
    app: &App,
    conn: &ConnInfo,
    sub: &str,
    password: &str,
    request_id: &str,
) -> Result<User, Reject> {
    let (ip, now) = (conn.client, unix_now());
    if let Err(retry_after) = app.throttle.check(sub, ip, now).await {
        tracing::info!(target: "audit", event = "password_change_throttled", user = %sub, client = %ip, request_id, retry_after);
        return Err(Reject::Throttled(retry_after));
    }
    match app.users.authenticate(&app.hasher, sub, password).await {
        Ok(user) => {
            app.throttle.reset_user(sub).await;
            Ok(user)
        }
        Err(LoginError::BadCredentials) => {
            app.throttle.record_failure(sub, ip, now).await;
            tracing::info!(target: "audit", event = "password_change_failed", user = %sub, client = %ip, request_id);
            Err(Reject::BadCredentials)
        }
        Err(LoginError::Busy) => Err(Reject::Unavailable("too many logins in progress")),
        Err(LoginError::Unavailable(reason)) => {
            tracing::warn!(reason, "user store unavailable");
            Err(Reject::Unavailable("user store unavailable"))
        }
    }
}

/// Revokes every token of `sub` issued up to the end of this second, then waits (on the
/// timer, at most a second) for the clock to pass that cut; returns the cut, the issue time
/// of the new pair: tokens issued at the cut or later are not revoked.
async fn revoke_earlier_tokens(app: &App, sub: &str) -> Result<u64, Reject> {
    let cut = unix_now() + 1;
    app.revocations
        .revoke_subject(sub, cut)
        .await
        .map_err(|_| Reject::Unavailable("revocation store unavailable"))?;
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    tokio::time::sleep(std::time::Duration::from_secs(cut).saturating_sub(since_epoch)).await;
    Ok(cut)
}
