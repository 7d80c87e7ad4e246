//! `{prefix}/change-password`: the signed-in user changes their password from a page.
//! The change itself is the JSON endpoint's (same throttle, same revocation of every
//! earlier token, a fresh session after it); this adds the form, its CSRF check (the
//! session's CSRF cookie repeated in the form, as on the sign-out page) and the answers.

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::page;
use super::redirect::Origin;
use super::session_page::{posted_form, signed_in, SignedIn};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::request::endpoints::password::{change_password, Change};
use crate::token::{Authn, Claims};
use crate::Body;

const HEADING: &str = "Change password";

/// GET shows the form, POST changes the password.
pub async fn password_page(
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
    if claims.idp.is_some() {
        let text = "You signed in through your identity provider: change your password there.";
        let status = StatusCode::NOT_IMPLEMENTED;
        return Ok(page::html(settings, status, HEADING, &page::message(text)));
    }
    if !app.users.can_change() {
        let text = "Passwords are managed by the user store's backend, not here.";
        let status = StatusCode::NOT_IMPLEMENTED;
        return Ok(page::html(settings, status, HEADING, &page::message(text)));
    }
    let shown = Shown {
        snap,
        settings,
        claims: &claims,
        csrf: &csrf,
    };
    match *request.method() {
        Method::GET | Method::HEAD => Ok(shown.form(StatusCode::OK, None)),
        Method::POST => submit(app, conn, &shown, origin, request).await,
        _ => Err(Reject::MethodNotAllowed),
    }
}

/// What every rendering of the form needs.
struct Shown<'a> {
    snap: &'a Snapshot,
    settings: &'a SignInSettings,
    claims: &'a Claims,
    csrf: &'a str,
}

impl Shown<'_> {
    /// The form, with `message` above it after a failed attempt.
    fn form(&self, status: StatusCode, message: Option<&str>) -> Response<Body> {
        let message = message
            .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", page::escape(m)))
            .unwrap_or_default();
        // The hidden username lets password managers file the new password correctly.
        let body = format!(
            "<p>Signed in as <strong>{user}</strong>. Changing the password signs out every \
other session.</p>{message}<form method=\"post\" action=\"{prefix}/change-password\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"username\" autocomplete=\"username\" value=\"{user}\">\
<label for=\"password\">Current password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<label for=\"new_password\">New password</label>\
<input id=\"new_password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" required>\
<label for=\"confirm\">New password again</label>\
<input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
<button type=\"submit\">Change password</button></form>",
            user = page::escape(&self.claims.sub),
            prefix = page::escape(&self.snap.auth.prefix),
            csrf = page::escape(self.csrf),
        );
        page::html(self.settings, status, HEADING, &body)
    }

    fn refused(&self, status: StatusCode, text: &str) -> Response<Body> {
        page::html(self.settings, status, HEADING, &page::message(text))
    }
}

async fn submit(
    app: &App,
    conn: &ConnInfo,
    shown: &Shown<'_>,
    origin: Origin<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let request_id = super::super::request_id(&request);
    let user_agent = super::login::user_agent(request.headers()).to_string();
    let form = match posted_form(app, origin, request).await {
        Ok(form) => form,
        Err((status, text)) => return Ok(shown.refused(status, text)),
    };
    if !crate::cookies::same(shown.csrf.as_bytes(), form.csrf.as_bytes()) {
        // Only this browser's own page may change the password, or any site could try.
        let text = "The form expired. Open the page again.";
        return Ok(shown.form(StatusCode::FORBIDDEN, Some(text)));
    }
    if form.new_password != form.confirm {
        let text = "The two new passwords differ.";
        return Ok(shown.form(StatusCode::BAD_REQUEST, Some(text)));
    }
    let change = Change {
        sub: &shown.claims.sub,
        session: Authn::of(shown.claims),
        current: &form.password,
        new: &form.new_password,
        request_id: &request_id,
        user_agent: &user_agent,
    };
    match change_password(app, shown.snap, conn, &change).await {
        Ok(pair) => Ok(changed(shown, &pair)),
        Err(rejected) => Ok(not_changed(shown, rejected)),
    }
}

/// The confirmation, carrying the new session's cookies.
fn changed(shown: &Shown<'_>, pair: &crate::revoke::Pair) -> Response<Body> {
    let text = "Your password was changed. Every other session was signed out.";
    let mut response = page::html(
        shown.settings,
        StatusCode::OK,
        HEADING,
        &page::message(text),
    );
    if let Some(cookies) = &shown.snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), pair);
    }
    response
}

/// The form again, saying why nothing changed.
fn not_changed(shown: &Shown<'_>, rejected: Reject) -> Response<Body> {
    let message = match rejected {
        Reject::BadCredentials => "The current password is wrong.".to_string(),
        Reject::Throttled(secs) => {
            format!("Too many failed attempts. Try again in {secs} seconds.")
        }
        Reject::BadRequest(rule) => format!("The new password was refused: {rule}."),
        _ => "The password cannot be changed right now. Try again in a moment.".to_string(),
    };
    let mut response = shown.form(rejected.status(), Some(&message));
    if let Reject::Throttled(secs) = rejected {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
