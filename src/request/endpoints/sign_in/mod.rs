//! The sign-in pages for people in browsers: `GET {prefix}/sign-in` shows the form, `POST`
//! checks it like /auth/login and starts a cookie session, then sends the browser back.
//!
//! Login CSRF (a foreign page signing the victim into the attacker's account) is refused
//! three ways: the form's anti-CSRF value must equal a `__Host-` cookie set with the form,
//! and a POST that a browser marks cross-site (`Sec-Fetch-Site`) or that carries a foreign
//! `Origin` is refused before the body is read.

pub mod backchannel;
mod factor_session;
mod form;
pub mod navigation;
mod page;
pub mod passkeys;
pub mod password_page;
pub mod provider;
pub mod provider_sessions;
pub mod redirect;
pub mod second_factor_page;
mod session_page;
pub mod sessions;
pub mod sign_out;
mod totp_enrol;

use http::header::{HeaderValue, LOCATION, ORIGIN, RETRY_AFTER, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{body, login};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::Body;
use redirect::Origin;

/// The cookie that binds a sign-in form to the browser it was shown to.
pub const FORM_COOKIE: &str = "__Host-portcullis-sign-in";

/// How long a shown form can be submitted.
const FORM_SECS: u64 = 1800;

/// GET shows the form, POST submits it.
pub async fn sign_in(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let host = request_origin_host(&request)?;
    let origin = Origin {
        scheme: conn.proto,
        host: &host,
    };
    match *request.method() {
        Method::GET | Method::HEAD => Ok(show(snap, settings, &request)),
        Method::POST => submit(app, snap, conn, settings, origin, request).await,
        _ => Err(Reject::MethodNotAllowed),
    }
}

/// The request's host, lowercase; sign-in needs one to know its own origin.
pub(crate) fn request_origin_host(request: &Request<Incoming>) -> Result<String, Reject> {
    crate::request::host::request_host(request)?
        .map(str::to_ascii_lowercase)
        .ok_or(Reject::BadRequest("missing Host header"))
}

/// The value of a query parameter, decoded; the first one if repeated.
pub(crate) fn query_param(request: &Request<Incoming>, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn show(snap: &Snapshot, settings: &SignInSettings, request: &Request<Incoming>) -> Response<Body> {
    let rd = query_param(request, "rd").unwrap_or_default();
    // Another tab's form stays valid: an existing form cookie is reused.
    let existing = crate::cookies::find(request.headers(), FORM_COOKIE)
        .ok()
        .flatten()
        .filter(|v| is_form_value(v));
    let csrf = existing.map_or_else(crate::token::mint::new_id, str::to_string);
    form_page(snap, settings, StatusCode::OK, &rd, &csrf, "", None)
}

/// A value `new_id` could have made: 32 lowercase hex digits.
fn is_form_value(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn form_page(
    snap: &Snapshot,
    settings: &SignInSettings,
    status: StatusCode,
    rd: &str,
    csrf: &str,
    username: &str,
    message: Option<&str>,
) -> Response<Body> {
    let action = format!("{}/sign-in", snap.auth.prefix);
    let with_code = snap.auth.second_factor.is_some();
    let mut form = page::sign_in_form(&action, rd, csrf, username, message, with_code);
    let providers: Vec<(&str, &str)> = settings
        .providers
        .iter()
        .map(|p| (p.id.as_str(), p.title.as_str()))
        .collect();
    form.push_str(&page::provider_buttons(&snap.auth.prefix, rd, &providers));
    if snap.auth.passkeys.is_some() {
        form.push_str(&passkeys::sign_in_button(&snap.auth.prefix, rd));
    }
    let mut response = page::html(settings, status, &settings.title, &form);
    if snap.auth.passkeys.is_some() {
        passkeys::allow_script(&mut response);
    }
    let cookie = format!(
        "{FORM_COOKIE}={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={FORM_SECS}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Whether the browser says this POST comes from another site (any one of repeated
/// headers saying so is enough).
pub(super) fn cross_site(request: &Request<Incoming>, origin: Origin<'_>) -> bool {
    let headers = request.headers();
    let foreign_fetch = headers
        .get_all("sec-fetch-site")
        .iter()
        .any(|site| site != "same-origin" && site != "none");
    // Under a no-referrer policy browsers send `Origin: null` on a page's own POST, so
    // "null" proves nothing either way; the form value still has to match.
    let own = format!("{}://{}", origin.scheme, origin.host);
    let foreign_origin = headers
        .get_all(ORIGIN)
        .iter()
        .any(|sent| sent != "null" && !sent.as_bytes().eq_ignore_ascii_case(own.as_bytes()));
    foreign_fetch || foreign_origin
}

async fn submit(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    origin: Origin<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let page_for =
        |status, text: &str| page::html(settings, status, "Sign-in refused", &page::message(text));
    if cross_site(&request, origin) {
        return Ok(page_for(
            StatusCode::FORBIDDEN,
            "This sign-in came from another site and was refused.",
        ));
    }
    if !body::has_media_type(&request, "application/x-www-form-urlencoded") {
        return Ok(page_for(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The sign-in form must be sent as a web form.",
        ));
    }
    let request_id = super::request_id(&request);
    let user_agent = login::user_agent(request.headers()).to_string();
    let cookie = crate::cookies::find(request.headers(), FORM_COOKIE)
        .ok()
        .flatten()
        .filter(|v| is_form_value(v))
        .map(str::to_string);
    let bytes = match body::read_limited(request, app.listen.idle_timeout).await {
        Ok(bytes) => bytes,
        Err(rejected) => {
            return Ok(page_for(
                rejected.status(),
                "The sign-in form could not be read.",
            ))
        }
    };
    let Ok(form) = form::parse(&bytes) else {
        return Ok(page_for(
            StatusCode::BAD_REQUEST,
            "The sign-in form was malformed.",
        ));
    };
    let csrf_ok = cookie
        .as_deref()
        .is_some_and(|c| crate::cookies::same(c.as_bytes(), form.csrf.as_bytes()));
    if !csrf_ok {
        // The form expired or was never ours: a fresh one, so a person can simply retry.
        let fresh = crate::token::mint::new_id();
        let message = "The sign-in form expired. Please sign in again.";
        return Ok(form_page(
            snap,
            settings,
            StatusCode::FORBIDDEN,
            &form.rd,
            &fresh,
            "",
            Some(message),
        ));
    }
    let csrf = cookie.unwrap_or_default();
    let user =
        login::check_credentials(app, conn, &form.username, &form.password, &request_id).await;
    let user = match user {
        Ok(user) => user,
        Err(rejected) => return Ok(refused(snap, settings, &form, &csrf, rejected)),
    };
    let otp = Some(form.otp.as_str());
    let authn = super::second_factor::check(app, snap, conn, &user, otp, &request_id).await;
    let authn = match authn {
        Ok(authn) => authn,
        Err(rejected) => return Ok(refused(snap, settings, &form, &csrf, rejected)),
    };
    let pair =
        login::start_session(app, snap, conn, &user, &authn, &request_id, &user_agent).await?;
    let target = redirect::target(&form.rd, origin, &settings.allowed_hosts)
        .unwrap_or_else(|| origin.home());
    let mut response = see_other(&target);
    if let Some(cookies) = &snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
    }
    let clear = format!("{FORM_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

/// The form again after a failed check: one message for every wrong name or password.
fn refused(
    snap: &Snapshot,
    settings: &SignInSettings,
    form: &form::SignInForm,
    csrf: &str,
    rejected: Reject,
) -> Response<Body> {
    let (message, status) = match rejected {
        Reject::BadCredentials => (
            "Wrong username or password.".to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        Reject::Throttled(secs) => (
            format!("Too many failed sign-ins. Try again in {secs} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        // The password was right: it is asked for again rather than kept anywhere.
        Reject::MfaRequired => (
            "Enter your password again with the one-time code from your authenticator app."
                .to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        Reject::BadOtp(reason) => (
            format!("The one-time code was refused: {reason}."),
            StatusCode::UNAUTHORIZED,
        ),
        other => (
            "Signing in is not possible right now. Try again in a moment.".to_string(),
            other.status(),
        ),
    };
    let mut response = form_page(
        snap,
        settings,
        status,
        &form.rd,
        csrf,
        &form.username,
        Some(&message),
    );
    if let Reject::Throttled(secs) = rejected {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// 303 to an absolute URL the caller has validated.
pub(crate) fn see_other(target: &str) -> Response<Body> {
    redirect_response(StatusCode::SEE_OTHER, target)
}

/// A redirect with no cacheable body.
pub(crate) fn redirect_response(status: StatusCode, target: &str) -> Response<Body> {
    let mut response = Response::new(Body::Right(http_body_util::Full::new(bytes::Bytes::new())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(target) {
        headers.insert(LOCATION, value);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod redirect_tests;
