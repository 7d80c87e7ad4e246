//! `{prefix}/second-factor`: a signed-in person whose session lacks the second factor a
//! route demands (`mfa = true`) adds it here with a one-time code, then goes back.
//!
//! The session is replaced by one whose `amr` adds `otp` and `mfa`, and the old one is
//! revoked. Its `auth_time` stays the first sign-in's: a code alone is not a new sign-in,
//! so only signing in again satisfies a route's `max_auth_age`.

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::redirect::{self, Origin};
use super::session_page::{posted_form, signed_in, SignedIn};
use super::{navigation, page, query_param, see_other, totp_enrol};
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
    let shown = Shown {
        snap,
        settings,
        csrf: &csrf,
    };
    let mode = match factor_of(app, snap, &claims).await {
        Ok(mode) => mode,
        Err(NoCode { status, text }) => return Ok(shown.refused(status, &text, &rd)),
    };
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
    }
}

/// What the page does for this person: check a code, or enrol a first factor.
enum Mode {
    /// The user has a TOTP secret.
    Code(User),
    /// The user has none yet and the store can save one.
    Enrol(User),
}

/// One request's view of the page, shared by the code and enrolment halves.
pub(super) struct Page<'a> {
    pub app: &'a App,
    pub conn: &'a ConnInfo,
    pub shown: &'a Shown<'a>,
    pub origin: Origin<'a>,
    pub claims: &'a Claims,
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
    if snap.auth.second_factor.is_none() {
        let text = "Second factors are not configured on this gateway.";
        return Err(refuse(StatusCode::NOT_IMPLEMENTED, text));
    }
    match app.users.lookup(&claims.sub).await {
        Ok(Some(user)) if user.totp.is_some() => Ok(Mode::Code(user)),
        Ok(Some(user)) if app.users.can_change() => Ok(Mode::Enrol(user)),
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

/// What every rendering of the page needs.
pub(super) struct Shown<'a> {
    pub snap: &'a Snapshot,
    pub settings: &'a SignInSettings,
    pub csrf: &'a str,
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
        page::html(self.settings, status, HEADING, &body)
    }

    /// A page that says why no code can be taken, with the ways on.
    pub(super) fn refused(&self, status: StatusCode, text: &str, rd: &str) -> Response<Body> {
        let prefix = &self.snap.auth.prefix;
        let sign_in =
            navigation::sign_in_url(prefix, "sign-in", Some(rd).filter(|r| !r.is_empty()));
        let body = format!(
            "{}<p><a href=\"{}\">Sign in again</a></p>",
            page::message(text),
            page::escape(&sign_in)
        );
        page::html(self.settings, status, HEADING, &body)
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

/// A code the person just gave, and the request it came with.
pub(super) struct Stepped<'a> {
    pub user: &'a User,
    pub code: &'a Authn,
    pub request_id: &'a str,
    pub user_agent: &'a str,
}

/// Replaces the session by one that adds the code's methods, revokes the old one, and
/// says where the browser goes next (`rd` when it is safe, else home).
pub(super) async fn upgrade(
    page: &Page<'_>,
    stepped: &Stepped<'_>,
    rd: &str,
) -> Result<(crate::revoke::Pair, String), Reject> {
    let (app, snap) = (page.app, page.shown.snap);
    let authn = stepped_up(page.claims, stepped.code);
    let user = stepped.user;
    let pair = super::login::start_session(
        app,
        snap,
        page.conn,
        user,
        &authn,
        stepped.request_id,
        stepped.user_agent,
    )
    .await?;
    retire(app, snap, page.claims).await;
    tracing::info!(target: "audit", event = "step_up_ok", user = %user.name, client = %page.conn.client, request_id = stepped.request_id, method = "otp");
    let target = redirect::target(rd, page.origin, &page.shown.settings.allowed_hosts)
        .unwrap_or_else(|| page.origin.home());
    Ok((pair, target))
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

/// The session's sign-in with the code's methods added; its time and provider unchanged.
fn stepped_up(claims: &Claims, code: &Authn) -> Authn {
    let mut amr = Authn::of(claims).amr;
    for method in &code.amr {
        if !amr.contains(method) {
            amr.push(method.clone());
        }
    }
    Authn {
        amr,
        auth_time: claims.auth_time,
        idp: claims.idp.clone(),
    }
}

/// Revokes the weaker session the new one replaces; a failure leaves it to expire.
async fn retire(app: &App, snap: &Snapshot, claims: &Claims) {
    let Some(fam) = &claims.fam else { return };
    let until = unix_now() + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    if let Err(err) = app.revocations.revoke_family(fam, until).await {
        tracing::warn!(error = %err, user = %claims.sub, "the session before a step-up stays valid until it expires");
    }
    if let Err(err) = app.sessions.forget(&claims.sub, fam).await {
        tracing::warn!(error = %err, "a replaced session stays listed until it expires");
    }
}

/// The sentence a refused code gets on the page.
pub(super) fn refusal_text(rejected: Reject) -> String {
    match rejected {
        Reject::MfaRequired => "Enter the one-time code.".to_string(),
        Reject::BadOtp(reason) => format!("The one-time code was refused: {reason}."),
        Reject::BadCredentials => "The password is wrong.".to_string(),
        Reject::Throttled(secs) => {
            format!("Too many failed attempts. Try again in {secs} seconds.")
        }
        _ => "The code cannot be checked right now. Try again in a moment.".to_string(),
    }
}

/// The form again, saying why the code was not taken.
fn not_accepted(shown: &Shown<'_>, rd: &str, rejected: Reject) -> Response<Body> {
    let message = refusal_text(rejected);
    let mut response = shown.form(rejected.status(), rd, Some(&message));
    retry_after(&mut response, rejected);
    response
}

/// `Retry-After` on a throttled answer.
pub(super) fn retry_after(response: &mut Response<Body>, rejected: Reject) {
    if let Reject::Throttled(secs) = rejected {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
}
