//! The second factor of a sign-in: after the password, a user with a TOTP secret must send
//! a current code, once. Wrong codes count against the login throttle like wrong passwords;
//! a spent code is refused on every instance sharing the Redis store.

use super::super::client::ConnInfo;
use crate::config::snapshot::SecondFactorSettings;
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::token::Authn;
use crate::users::{recovery, totp, User};

/// How `user`, whose password was just checked, signed in: `pwd` alone without a second
/// factor; `pwd`, `otp` and `mfa` with a good, unspent code; a refusal otherwise.
pub(super) async fn check(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    user: &User,
    otp: Option<&str>,
    request_id: &str,
) -> Result<Authn, Reject> {
    let now = unix_now();
    let Some(sealed) = &user.totp else {
        return Ok(Authn::password(now));
    };
    let Some(settings) = &snap.auth.second_factor else {
        // Letting the password alone in would silently drop the factor.
        tracing::error!(user = %user.name, "user has a TOTP secret but [second_factor] has no key: sign-in refused");
        return Err(Reject::Unavailable("second factor not configured"));
    };
    let code = otp.map(str::trim).filter(|c| !c.is_empty());
    let Some(code) = code else {
        tracing::info!(target: "audit", event = "login_mfa_required", user = %user.name, client = %conn.client, request_id);
        return Err(Reject::MfaRequired);
    };
    if let Some(recovery) = recovery::normalize(code) {
        return spend_recovery_code(app, settings, conn, user, &recovery, request_id).await;
    }
    let secret = settings.key.open(&user.name, sealed).map_err(|reason| {
        tracing::error!(user = %user.name, reason, "TOTP secret does not open: sign-in refused");
        Reject::Unavailable("second factor unreadable")
    })?;
    let Some(step) = totp::matching_step(&secret, code, now) else {
        app.throttle
            .record_failure(&user.name, conn.client, now)
            .await;
        tracing::info!(target: "audit", event = "otp_failed", user = %user.name, client = %conn.client, request_id);
        return Err(Reject::BadOtp("wrong or expired one-time code"));
    };
    let spent = app.throttle.spend_step(&user.name, step).await;
    match spent {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(target: "audit", event = "otp_reused", user = %user.name, client = %conn.client, request_id);
            return Err(Reject::BadOtp(
                "one-time code already used; wait for the next one",
            ));
        }
        Err(_) => return Err(Reject::Unavailable("second factor store unavailable")),
    }
    app.throttle.reset_user(&user.name).await;
    Ok(with_code(now))
}

/// A password and a one-time code: TOTP or a recovery code, both `otp` (RFC 8176).
fn with_code(now: u64) -> Authn {
    Authn {
        amr: ["pwd", "otp", "mfa"].map(str::to_owned).to_vec(),
        auth_time: Some(now),
        idp: None,
    }
}

/// A recovery code in place of the TOTP code: good once, then struck from the store.
async fn spend_recovery_code(
    app: &App,
    settings: &SecondFactorSettings,
    conn: &ConnInfo,
    user: &User,
    code: &str,
    request_id: &str,
) -> Result<Authn, Reject> {
    let now = unix_now();
    let mut struck = false;
    // During a key rotation a code may still be stored under the previous key.
    for digest in settings.key.recovery_digests(&user.name, code) {
        let strike = app.users.strike_recovery(&user.name, &digest).await;
        struck = strike.map_err(|err| {
            tracing::error!(error = %err, user = %user.name, "a recovery code could not be checked: sign-in refused");
            Reject::Unavailable("user store unavailable")
        })?;
        if struck {
            break;
        }
    }
    if !struck {
        app.throttle
            .record_failure(&user.name, conn.client, now)
            .await;
        tracing::info!(target: "audit", event = "otp_failed", user = %user.name, client = %conn.client, request_id, kind = "recovery");
        return Err(Reject::BadOtp("wrong or already used recovery code"));
    }
    let remaining = user.recovery.len().saturating_sub(1);
    tracing::warn!(target: "audit", event = "recovery_code_used", user = %user.name, client = %conn.client, request_id, remaining);
    app.throttle.reset_user(&user.name).await;
    Ok(with_code(now))
}
