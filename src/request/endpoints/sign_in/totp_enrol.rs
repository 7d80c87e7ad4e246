//! The second-factor page for a person with no factor yet: a new TOTP secret shown as a QR
//! code, saved only once they prove it works (a first code) and who they are (the password:
//! a stolen session alone must not be able to lock the owner out with its own factor).
//!
//! The secret travels in the form sealed for this user (the same sealing as at rest), so
//! nothing is kept server-side between showing and saving, and a value from another user's
//! form, or altered, does not open.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::factor_session::{refusal_text, retry_after, upgrade, Page, Shown, Stepped};
use super::page;
use super::session_page::posted_form;
use crate::reject::Reject;
use crate::runtime::unix_now;
use crate::token::Authn;
use crate::users::{recovery, totp, User};
use crate::Body;

const HEADING: &str = "Set up a second factor";

/// The enrolment form: a fresh secret unless `pending` carries the one already shown.
pub(super) fn show(
    shown: &Shown<'_>,
    user: &User,
    rd: &str,
    message: Option<(StatusCode, &str)>,
    pending: Option<&str>,
) -> Response<Body> {
    let Some(settings) = &shown.snap.auth.second_factor else {
        let text = "Second factors are not configured on this gateway.";
        return shown.refused(StatusCode::NOT_IMPLEMENTED, text, rd);
    };
    let opened = pending.and_then(|sealed| {
        let secret = settings.key.open(&user.name, sealed).ok()?;
        Some((secret, sealed.to_owned()))
    });
    let fresh = || -> Result<(Vec<u8>, String), &'static str> {
        let secret = totp::new_secret()?.to_vec();
        let sealed = settings.key.seal(&user.name, &secret)?;
        Ok((secret, sealed))
    };
    let Some((secret, sealed)) = opened.or_else(|| fresh().ok()) else {
        let text = "A secret cannot be made right now. Try again in a moment.";
        return shown.refused(StatusCode::INTERNAL_SERVER_ERROR, text, rd);
    };
    let uri = totp::otpauth_uri(&settings.issuer, &user.name, &secret);
    let (status, message) = match message {
        Some((status, text)) => (
            status,
            format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                page::escape(text)
            ),
        ),
        None => (StatusCode::OK, String::new()),
    };
    let body = format!(
        "<p>This page needs a second factor. Scan the code with an authenticator app, or \
type the key in by hand, then enter the first code it shows.</p>{qr}\
<p><small>Key: <code id=\"totp-key\">{key}</code></small></p>{message}\
<form method=\"post\" action=\"{prefix}/second-factor\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
<input type=\"hidden\" name=\"pending\" value=\"{sealed}\">\
<input type=\"hidden\" name=\"username\" autocomplete=\"username\" value=\"{user}\">\
<label for=\"password\">Your password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<label for=\"otp\">First code from the app</label>\
<input id=\"otp\" name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
pattern=\"[0-9 ]*\" maxlength=\"8\" required>\
<button type=\"submit\">Turn on the second factor</button></form>",
        qr = qr_svg(&uri),
        key = totp::base32(&secret),
        prefix = page::escape(&shown.snap.auth.prefix),
        csrf = page::escape(shown.csrf),
        rd = page::escape(rd),
        sealed = page::escape(&sealed),
        user = page::escape(&user.name),
    );
    shown.page(status, HEADING, &body)
}

/// Checks password and first code against the shown secret, saves it, upgrades the session.
pub(super) async fn submit(
    page: &Page<'_>,
    user: &User,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let shown = page.shown;
    let request_id = super::super::request_id(&request);
    let user_agent = super::login::user_agent(request.headers()).to_string();
    let form = match posted_form(page.app, page.origin, request).await {
        Ok(form) => form,
        Err((status, text)) => return Ok(shown.refused(status, text, "")),
    };
    let again = |status, text: &str| {
        show(
            shown,
            user,
            &form.rd,
            Some((status, text)),
            Some(&form.pending),
        )
    };
    if !crate::cookies::same(shown.csrf.as_bytes(), form.csrf.as_bytes()) {
        let text = "The form expired. Scan the new code and try again.";
        return Ok(show(
            shown,
            user,
            &form.rd,
            Some((StatusCode::FORBIDDEN, text)),
            None,
        ));
    }
    let proof = Proof {
        password: &form.password,
        pending: &form.pending,
        code: &form.otp,
        request_id: &request_id,
    };
    let (code_authn, codes) = match prove(page, user, &proof).await {
        Ok(proved) => proved,
        Err(rejected) => {
            let mut response = again(rejected.status(), &refusal_text(rejected));
            retry_after(&mut response, rejected);
            return Ok(response);
        }
    };
    let stepped = Stepped {
        user,
        code: &code_authn,
        method: "otp",
        request_id: &request_id,
        user_agent: &user_agent,
    };
    let (pair, target) = upgrade(page, &stepped, &form.rd).await?;
    let mut response = recovery_page(shown, &codes, &target);
    if let Some(cookies) = &shown.snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
    }
    Ok(response)
}

/// What the enrolment form proves.
struct Proof<'a> {
    password: &'a str,
    pending: &'a str,
    code: &'a str,
    request_id: &'a str,
}

/// The recovery codes, shown this once, and the way on to the page the person wanted.
fn recovery_page(shown: &Shown<'_>, codes: &[String], target: &str) -> Response<Body> {
    let items: String = codes
        .iter()
        .map(|code| format!("<li><code>{}</code></li>", page::escape(code)))
        .collect();
    let body = format!(
        "<p>The second factor is on. If you lose the authenticator app, each of these \
recovery codes signs you in once in place of a code. Keep them somewhere safe: they are \
not shown again.</p><ul class=\"recovery\">{items}</ul>\
<p><a href=\"{target}\">Continue</a></p>",
        target = page::escape(target),
    );
    page::html(shown.settings, StatusCode::OK, "Recovery codes", &body)
}

/// The password, then a current code of the pending secret, then the secret saved with a
/// new set of recovery codes: each failure counted against the login throttle.
async fn prove(
    page: &Page<'_>,
    user: &User,
    proof: &Proof<'_>,
) -> Result<(Authn, Vec<String>), Reject> {
    let (app, conn, name) = (page.app, page.conn, user.name.as_str());
    let now = unix_now();
    app.throttle
        .check(name, conn.client, now)
        .await
        .map_err(Reject::Throttled)?;
    let key = page.shown.snap.auth.second_factor.as_ref().map(|s| &s.key);
    let secret = key
        .and_then(|key| key.open(name, proof.pending).ok())
        .ok_or(Reject::BadOtp(
            "the form's secret is not this account's; scan the new code",
        ))?;
    let checked = app
        .users
        .authenticate(&app.hasher, name, proof.password)
        .await;
    if checked.is_err() {
        app.throttle.record_failure(name, conn.client, now).await;
        tracing::info!(target: "audit", event = "login_failed", user = %name, client = %conn.client, request_id = proof.request_id, during = "totp_enrolment");
        return Err(Reject::BadCredentials);
    }
    let Some(step) = totp::matching_step(&secret, proof.code.trim(), now) else {
        app.throttle.record_failure(name, conn.client, now).await;
        tracing::info!(target: "audit", event = "otp_failed", user = %name, client = %conn.client, request_id = proof.request_id, during = "totp_enrolment");
        return Err(Reject::BadOtp("wrong or expired one-time code"));
    };
    if !app.throttle.spend_step(name, step).await.unwrap_or(false) {
        return Err(Reject::BadOtp(
            "one-time code already used; wait for the next one",
        ));
    }
    let codes = save(page, user, proof).await?;
    app.throttle.reset_user(name).await;
    let authn = Authn {
        amr: ["pwd", "otp", "mfa"].map(str::to_owned).to_vec(),
        auth_time: Some(now),
        idp: None,
    };
    Ok((authn, codes))
}

/// Saves the secret unless another one arrived meanwhile (which is never overwritten here),
/// then a new set of recovery codes, which it returns to be shown.
async fn save(page: &Page<'_>, user: &User, proof: &Proof<'_>) -> Result<Vec<String>, Reject> {
    let app = page.app;
    let unavailable = Reject::Unavailable("user store unavailable");
    match app.users.lookup(&user.name).await {
        Ok(Some(now)) if now.totp.is_none() => {}
        Ok(Some(_)) => return Err(Reject::BadOtp("a second factor was set up meanwhile")),
        Ok(None) => return Err(Reject::UserGone),
        Err(_) => return Err(unavailable),
    }
    app.users
        .set_totp(&user.name, Some(proof.pending.to_owned()))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, user = %user.name, "the TOTP secret could not be saved");
            unavailable
        })?;
    tracing::info!(target: "audit", event = "totp_enrolled", user = %user.name, client = %page.conn.client, request_id = proof.request_id);
    let key = page.shown.snap.auth.second_factor.as_ref().map(|s| &s.key);
    let codes = recovery::new_set().map_err(|_| unavailable)?;
    let digests = codes
        .iter()
        .filter_map(|code| Some(key?.recovery_digest(&user.name, &recovery::normalize(code)?)))
        .collect();
    app.users
        .set_recovery(&user.name, digests)
        .await
        .map_err(|_| unavailable)?;
    Ok(codes)
}

/// The URI as an inline SVG QR code: one path of dark modules, a quiet zone of four.
fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let width = code.width();
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    let size = width + 8;
    format!(
        "<svg role=\"img\" aria-label=\"QR code for the authenticator app\" \
xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"200\" height=\"200\" \
shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
<path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}
