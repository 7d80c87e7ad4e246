//! What every page for a signed-in person shares: finding the live session (or sending the
//! browser to get one), and reading a posted form only when it comes from this origin.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::form::{self, SignInForm};
use super::redirect::Origin;
use super::sign_out::session;
use super::{body, cross_site, navigation};
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::token::Claims;
use crate::Body;

/// A live session: its access token's claims and the CSRF cookie its forms must repeat.
pub(super) struct SignedIn {
    /// The verified, unrevoked access token's claims.
    pub claims: Claims,
    /// The session's CSRF cookie value.
    pub csrf: String,
}

/// The browser's live session, or the redirect that renews it or signs in, then comes back.
pub(super) async fn signed_in(
    app: &App,
    snap: &Snapshot,
    origin: Origin<'_>,
    request: &Request<Incoming>,
) -> Result<SignedIn, Response<Body>> {
    let claims = session(app, snap, request.headers()).await;
    let csrf = crate::cookies::find(request.headers(), crate::cookies::CSRF)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    match (claims, csrf) {
        (Some(claims), Some(csrf)) => Ok(SignedIn { claims, csrf }),
        _ => {
            let back = origin.url_of(request);
            Err(navigation::session_first(
                &snap.auth.prefix,
                request.headers(),
                &back,
            ))
        }
    }
}

/// A posted web form from this origin, or the status and sentence that refuse it.
pub(super) async fn posted_form(
    app: &App,
    origin: Origin<'_>,
    request: Request<Incoming>,
) -> Result<SignInForm, (StatusCode, &'static str)> {
    if cross_site(&request, origin) {
        return Err((
            StatusCode::FORBIDDEN,
            "This request came from another site and was refused.",
        ));
    }
    if !body::has_media_type(&request, "application/x-www-form-urlencoded") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The form must be sent as a web form.",
        ));
    }
    let bytes = body::read_limited(request, app.listen.idle_timeout)
        .await
        .map_err(|rejected| (rejected.status(), "The form could not be read."))?;
    form::parse(&bytes).map_err(|_| (StatusCode::BAD_REQUEST, "The form was malformed."))
}
