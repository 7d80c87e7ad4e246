//! `{prefix}/second-factor`: a signed-in person whose session lacks the second factor a
//! route demands (`mfa = true`) adds it here with a one-time code or a registered passkey
//! (the passkey half is `passkeys/step_up.rs`), then goes back.
//!
//! The session is replaced by one whose `amr` adds `otp` (or `hwk`) and `mfa`, and the old
//! one is revoked. Its `auth_time` stays the first sign-in's: a code alone is not a new sign-in,
//! so only signing in again satisfies a route's `max_auth_age`.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::factor_session::{refusal_text, retry_after, upgrade, Page, Shown, Stepped};
use super::redirect::Origin;
use super::session_page::{posted_form, signed_in, SignedIn};
use super::{page, query_param, see_other, totp_enrol};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::token::{Authn, Claims};
use crate::users::User;
use crate::Body;

const HEADING: &str = "Second factor";

/// GET asks for a code, POST checks it and upgrades the session.
pub async fn second_factor_page(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let host = super::request_origin_host(&request)?;
    let origin = Origin {
        scheme: conn.proto,
        host: &host,
    };
    let SignedIn { claims, csrf } = match signed_in(app, snap, origin, &request).await {
        Ok(signed_in) => signed_in,
        Err(way_in) => return Ok(way_in),
    };
    let rd = query_param(&request, "rd").unwrap_or_default();
    let mut shown = Shown {
        snap,
        settings,
        csrf: &csrf,
        passkey: String::new(),
    };
    let mode = match factor_of(app, snap, &claims).await {
        Ok(mode) => mode,
        Err(NoCode { status, text }) => return Ok(shown.refused(status, &text, &rd)),
    };
    shown.passkey = passkey_block(app, snap, mode.user(), &csrf, &rd).await;
    if matches!(mode, Mode::Passkey(_)) && shown.passkey.is_empty() {
        let text = "No second factor is set up for your account: register a passkey on your \
                    passkeys page first.";
        return Ok(shown.refused(StatusCode::CONFLICT, text, &rd));
    }
    let page = Page {
        app,
        conn,
        shown: &shown,
        origin,
        claims: &claims,
    };
    let method = request.method();
    let reading = method == Method::GET || method == Method::HEAD;
    if !reading && method != Method::POST {
        return Err(Reject::MethodNotAllowed);
    }
    match (reading, mode) {
        (true, Mode::Code(_)) => Ok(shown.form(StatusCode::OK, &rd, None)),
        (true, Mode::Enrol(user)) => Ok(totp_enrol::show(&shown, &user, &rd, None, None)),
        (false, Mode::Code(user)) => submit(&page, &user, request).await,
        (false, Mode::Enrol(user)) => totp_enrol::submit(&page, &user, request).await,
        (true, Mode::Passkey(_)) => Ok(shown.page(StatusCode::OK, HEADING, "")),
        (false, Mode::Passkey(_)) => Err(Reject::MethodNotAllowed),
    }
}

/// What the page does for this person: check a code, or enrol a first factor.
enum Mode {
    /// The user has a TOTP secret.
    Code(User),
    /// The user has none yet and the store can save one.
    Enrol(User),
    /// No codes on this gateway (no `[second_factor]`), but passkeys are on.
    Passkey(User),
}

impl Mode {
    fn user(&self) -> &User {
        match self {
            Mode::Code(user) | Mode::Enrol(user) | Mode::Passkey(user) => user,
        }
    }
}

/// The "use your passkey" button when passkeys are on and the user registered one.
async fn passkey_block(app: &App, snap: &Snapshot, user: &User, csrf: &str, rd: &str) -> String {
    let (Some(_), Some(cookies)) = (&snap.auth.passkeys, &snap.auth.cookies) else {
        return String::new();
    };
    match app.users.passkeys(&user.name).await {
        Ok(records) if !records.is_empty() => {
            let data = super::passkeys::Script {
                prefix: &snap.auth.prefix,
                rd,
                csrf,
                header: cookies.csrf_header.as_str(),
            };
            super::passkeys::step_up_button(&data)
        }
        Ok(_) => String::new(),
        Err(err) => {
            tracing::warn!(error = %err, user = %user.name, "passkeys not offered: the user store did not list them");
            String::new()
        }
    }
}

/// Why a session cannot add a code here, said on the page.
struct NoCode {
    status: StatusCode,
    text: String,
}

/// The session's user and whether they have a TOTP secret to check a code against.
async fn factor_of(app: &App, snap: &Snapshot, claims: &Claims) -> Result<Mode, NoCode> {
    let refuse = |status, text: &str| NoCode {
        status,
        text: text.to_owned(),
    };
    if claims.idp.is_some() {
        let text = "You signed in through your identity provider, which decides the second \
                    factor: sign in there again.";
        return Err(refuse(StatusCode::CONFLICT, text));
    }
    let codes = snap.auth.second_factor.is_some();
    if !codes && snap.auth.passkeys.is_none() {
        let text = "Second factors are not configured on this gateway.";
        return Err(refuse(StatusCode::NOT_IMPLEMENTED, text));
    }
    match app.users.lookup(&claims.sub).await {
        Ok(Some(user)) if !codes => Ok(Mode::Passkey(user)),
        Ok(Some(user)) if user.totp.is_some() => Ok(Mode::Code(user)),
        Ok(Some(user)) if app.users.can_change() => Ok(Mode::Enrol(user)),
        Ok(Some(user)) if snap.auth.passkeys.is_some() => Ok(Mode::Passkey(user)),
        Ok(Some(_)) => {
            let text = "No second factor is set up for your account: ask an administrator.";
            Err(refuse(StatusCode::CONFLICT, text))
        }
        Ok(None) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "Your account is disabled or no longer exists.",
        )),
        Err(_) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The user store cannot answer right now. Try again in a moment.",
        )),
    }
}

impl Shown<'_> {
    /// The code form, with `message` above it after a failed attempt.
    fn form(&self, status: StatusCode, rd: &str, message: Option<&str>) -> Response<Body> {
        let message = message
            .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", page::escape(m)))
            .unwrap_or_default();
        let body = format!(
            "<p>This page needs a second factor. Enter the code from your authenticator \
app.</p>{message}<form method=\"post\" action=\"{prefix}/second-factor\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
<label for=\"otp\">One-time code</label>\
<input id=\"otp\" name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
pattern=\"[0-9 ]*\" maxlength=\"8\" required autofocus>\
<button type=\"submit\">Continue</button></form>",
            prefix = page::escape(&self.snap.auth.prefix),
            csrf = page::escape(self.csrf),
            rd = page::escape(rd),
        );
        self.page(status, HEADING, &body)
    }
}

async fn submit(
    page: &Page<'_>,
    user: &User,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let (app, shown) = (page.app, page.shown);
    let request_id = super::super::request_id(&request);
    let user_agent = super::login::user_agent(request.headers()).to_string();
    let form = match posted_form(app, page.origin, request).await {
        Ok(form) => form,
        Err((status, text)) => return Ok(shown.refused(status, text, "")),
    };
    if !crate::cookies::same(shown.csrf.as_bytes(), form.csrf.as_bytes()) {
        let text = "The form expired. Enter the code again.";
        return Ok(shown.form(StatusCode::FORBIDDEN, &form.rd, Some(text)));
    }
    let checked = check_code(app, shown.snap, page.conn, user, &form.otp, &request_id).await;
    let code_authn = match checked {
        Ok(authn) => authn,
        Err(rejected) => return Ok(not_accepted(shown, &form.rd, rejected)),
    };
    let stepped = Stepped {
        user,
        code: &code_authn,
        method: "otp",
        request_id: &request_id,
        user_agent: &user_agent,
    };
    let (pair, target) = upgrade(page, &stepped, &form.rd).await?;
    let mut response = see_other(&target);
    if let Some(cookies) = &shown.snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
    }
    Ok(response)
}

/// The code checked like the sign-in's (same throttle, spent once), after the throttle.
async fn check_code(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    user: &User,
    code: &str,
    request_id: &str,
) -> Result<Authn, Reject> {
    if let Err(retry_after) = app
        .throttle
        .check(&user.name, conn.client, unix_now())
        .await
    {
        tracing::info!(target: "audit", event = "login_throttled", user = %user.name, client = %conn.client, request_id, retry_after);
        return Err(Reject::Throttled(retry_after));
    }
    super::super::second_factor::check(app, snap, conn, user, Some(code), request_id).await
}

/// The form again, saying why the code was not taken.
fn not_accepted(shown: &Shown<'_>, rd: &str, rejected: Reject) -> Response<Body> {
    let message = refusal_text(rejected);
    let mut response = shown.form(rejected.status(), rd, Some(&message));
    retry_after(&mut response, rejected);
    response
}
