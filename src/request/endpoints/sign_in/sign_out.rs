//! `{prefix}/sign-out`: GET asks for confirmation (a link must not sign anyone out), POST
//! revokes the session's whole token family, clears the cookies and says so.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::redirect::{self, Origin};
use super::{body, cross_site, form, navigation, page};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::token::verify;
use crate::token::{Claims, TokenType};
use crate::Body;

/// GET shows the confirmation, POST signs out.
pub async fn sign_out(
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
    match *request.method() {
        Method::GET | Method::HEAD => confirm(app, snap, settings, origin, &request).await,
        Method::POST => submit(app, snap, conn, settings, origin, request).await,
        _ => Err(Reject::MethodNotAllowed),
    }
}

/// The signed-in user's access claims from the cookie, when valid and not revoked.
pub(super) async fn session(
    app: &App,
    snap: &Snapshot,
    headers: &http::HeaderMap,
) -> Option<Claims> {
    let token = crate::cookies::access_token(snap.auth.cookies.as_ref(), headers).ok()?;
    let now = unix_now();
    let claims = verify::verify(&snap.keys, &snap.expect, token, TokenType::Access, now).ok()?;
    let revoked = app
        .revocations
        .is_revoked_checked(
            &claims.jti,
            &claims.sub,
            claims.iat,
            claims.fam.as_deref(),
            now,
        )
        .await;
    matches!(revoked, Ok(false)).then_some(claims)
}

/// The session's CSRF cookie, which the page's form must repeat.
fn csrf_cookie(headers: &http::HeaderMap) -> Option<&str> {
    crate::cookies::find(headers, crate::cookies::CSRF)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

async fn confirm(
    app: &App,
    snap: &Snapshot,
    settings: &SignInSettings,
    origin: Origin<'_>,
    request: &Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let headers = request.headers();
    let rd = super::query_param(request, "rd").unwrap_or_default();
    let prefix = &snap.auth.prefix;
    let (Some(claims), Some(csrf)) = (session(app, snap, headers).await, csrf_cookie(headers))
    else {
        if csrf_cookie(headers).is_some() {
            // The access cookie expired: renew first, so the POST can end the right family.
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let back = format!("{}://{}{path}", origin.scheme, origin.host);
            let location = navigation::sign_in_url(prefix, "refresh", Some(&back));
            return Ok(navigation::found(&location));
        }
        return Ok(signed_out_page(snap, settings, "You are not signed in."));
    };
    let form = format!(
        "<p>Signed in as <strong>{user}</strong>.</p><form method=\"post\" action=\"{prefix}/sign-out\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
<button type=\"submit\">Sign out</button></form>",
        user = page::escape(&claims.sub),
        prefix = page::escape(prefix),
        csrf = page::escape(csrf),
        rd = page::escape(&rd),
    );
    Ok(page::html(settings, StatusCode::OK, "Sign out", &form))
}

async fn submit(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    origin: Origin<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let refuse =
        |status, text: &str| page::html(settings, status, "Sign-out refused", &page::message(text));
    if cross_site(&request, origin) {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "This sign-out came from another site and was refused.",
        ));
    }
    if !body::has_media_type(&request, "application/x-www-form-urlencoded") {
        return Ok(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The sign-out form must be sent as a web form.",
        ));
    }
    let request_id = super::super::request_id(&request);
    let claims = session(app, snap, request.headers()).await;
    let csrf = csrf_cookie(request.headers()).map(str::to_string);
    let bytes = match body::read_limited(request, app.listen.idle_timeout).await {
        Ok(bytes) => bytes,
        Err(rejected) => {
            return Ok(refuse(
                rejected.status(),
                "The sign-out form could not be read.",
            ))
        }
    };
    let Ok(form) = form::parse(&bytes) else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "The sign-out form was malformed.",
        ));
    };
    let matches = csrf
        .as_deref()
        .is_some_and(|c| crate::cookies::same(c.as_bytes(), form.csrf.as_bytes()));
    if !matches {
        // Only this browser's own page can sign it out, or any site could.
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "The sign-out form expired. Open the sign-out page again.",
        ));
    }
    if let Some(claims) = &claims {
        super::super::logout::end_sign_in(app, snap, claims, unix_now()).await?;
        tracing::info!(target: "audit", event = "logout", user = %claims.sub, client = %conn.client, request_id,
            family = claims.fam.as_deref().unwrap_or("-"));
    }
    let at_provider = match &claims {
        Some(claims) => provider_sign_out(app, settings, origin, claims).await,
        None => None,
    };
    let target = redirect::target(&form.rd, origin, &settings.allowed_hosts);
    let mut response = match (at_provider, target) {
        (Some(end_session), _) => super::see_other(&end_session),
        (None, Some(target)) => super::see_other(&target),
        (None, None) => signed_out_page(snap, settings, "You have been signed out."),
    };
    if let Some(cookies) = &snap.auth.cookies {
        crate::cookies::clear(cookies, response.headers_mut());
    }
    Ok(response)
}

/// For a session started at a provider that offers RP-initiated logout on its issuer's
/// origin (the one the pages' `form-action` allows): the URL that ends the provider's
/// session too. The provider asks the person to confirm, then shows its own signed-out
/// page or, with `post_logout_redirect_uri` configured (and registered there), sends the
/// browser back to it.
async fn provider_sign_out(
    app: &App,
    settings: &SignInSettings,
    origin: Origin<'_>,
    claims: &crate::token::Claims,
) -> Option<String> {
    let provider = settings.provider(claims.idp.as_deref()?)?;
    let endpoints = provider.endpoints(&app.provider_client).await.ok()?;
    let end_session = endpoints.end_session.as_deref()?;
    let issuer_origin = crate::issuers::provider::origin_of(&provider.keys.issuer)?;
    if crate::issuers::provider::origin_of(end_session)? != issuer_origin {
        return None;
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", &provider.client_id);
    if let Some(back) = &provider.post_logout {
        query.append_pair(
            "post_logout_redirect_uri",
            &back.url(origin.scheme, origin.host),
        );
    }
    let query = query.finish();
    let joiner = if end_session.contains('?') { '&' } else { '?' };
    Some(format!("{end_session}{joiner}{query}"))
}

fn signed_out_page(snap: &Snapshot, settings: &SignInSettings, text: &str) -> Response<Body> {
    let body = format!(
        "{}<p><a href=\"{}/sign-in\">Sign in</a></p>",
        page::message(text),
        page::escape(&snap.auth.prefix)
    );
    page::html(settings, StatusCode::OK, "Signed out", &body)
}
