//! Forward-auth (`GET {prefix}/verify`): a front proxy (nginx `auth_request`, Traefik
//! ForwardAuth) asks whether the request it holds may pass. The original method, URI and
//! host come from the configured proxy's headers, and the answer is the proxy's own
//! decision: the same host check, `path::normalize`, route lookup and `authorize`.
//! 200 carries the identity headers; a refusal is the same 400/401/403/404 the proxy
//! would give. Nothing is forwarded.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::config::snapshot::{ForwardAuth, Snapshot};
use crate::control::app::App;
use crate::forward::headers;
use crate::forward::proxies;
use crate::forward::proxies::ForwardTrust;
use crate::forward::values::ValueBuf;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::request::endpoints::sign_in::navigation;
use crate::request::{authorize, host};
use crate::{path, Body};

static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Where nginx should send a browser that has to sign in.
static X_AUTH_REDIRECT: HeaderName = HeaderName::from_static("x-auth-redirect");

/// Decides on the original request a front proxy describes.
pub async fn verify(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &ForwardAuth,
    request: &Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    if !settings.callers.is_empty() && !proxies::is_trusted(&settings.callers, conn.peer.ip()) {
        return Err(Reject::Refused("caller may not use forward-auth"));
    }
    let original = Original::read(settings.trust, request)?;
    let normalized = path::normalize(original.target.path()).map_err(Reject::BadPath)?;
    let route = authorize::find_route(snap, original.host, &original.method, &normalized)?;
    let authorized =
        authorize::authorize_route(app, snap, conn, route, &original.method, request.headers())
            .await;
    let claims = match authorized {
        Ok(claims) => claims,
        Err(rejected) => {
            return sign_in_instead(snap, settings, route, &original, request, rejected)
        }
    };
    let mut response = Response::new(Body::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(claims) = &claims {
        headers::add_identity(h, &snap.identity, claims, &mut ValueBuf::new());
    }
    Ok(response)
}

/// A browser navigation without a session is sent to sign in: Traefik passes a 302 to the
/// client as it is; nginx's `auth_request` only knows 2xx, 401 and 403, so it gets the 401
/// with the sign-in URL in `X-Auth-Redirect` for `error_page 401` to follow. The URL is
/// relative: the sign-in pages must be served on the protected host itself, or the
/// host-only session cookies would never reach forward-auth.
fn sign_in_instead(
    snap: &Snapshot,
    settings: &ForwardAuth,
    route: &crate::config::snapshot::Route,
    original: &Original<'_>,
    request: &Request<Incoming>,
    rejected: Reject,
) -> Result<Response<Body>, Reject> {
    let original_path = || Some(original.target.as_str().to_string());
    let headers = request.headers();
    let Some(location) = navigation::redirect(
        snap,
        route,
        &original.method,
        headers,
        original_path,
        rejected,
    ) else {
        return Err(rejected);
    };
    match settings.trust {
        ForwardTrust::Traefik => Ok(navigation::found(&location)),
        ForwardTrust::Nginx => {
            let mut response = crate::reject::respond(rejected).map(Body::Right);
            if let Ok(value) = HeaderValue::from_str(&location) {
                response
                    .headers_mut()
                    .insert(X_AUTH_REDIRECT.clone(), value);
            }
            Ok(response)
        }
    }
}

/// The request the front proxy is holding, as its headers describe it.
struct Original<'r> {
    method: Method,
    /// The original request-target, parsed as the proxy's HTTP parser would parse it.
    target: PathAndQuery,
    host: Option<&'r str>,
}

impl<'r> Original<'r> {
    /// Reads the trusted kind of headers; missing or malformed is 400, never a guess.
    fn read(trust: ForwardTrust, request: &'r Request<Incoming>) -> Result<Original<'r>, Reject> {
        let h = request.headers();
        let (method, uri) = match trust {
            ForwardTrust::Nginx => (&X_ORIGINAL_METHOD, &X_ORIGINAL_URI),
            ForwardTrust::Traefik => (&X_FORWARDED_METHOD, &X_FORWARDED_URI),
        };
        let method = one(h, method)?.ok_or(Reject::BadRequest("missing original method"))?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Reject::BadRequest("malformed original method"))?;
        let uri = one(h, uri)?.ok_or(Reject::BadRequest("missing original URI"))?;
        let target = original_target(uri)?;
        let host = match trust {
            // nginx: the subrequest's own Host, which the snippet sets to the client's.
            ForwardTrust::Nginx => host::request_host(request)?,
            // Traefik: its own request's Host names the auth server, not the client's.
            ForwardTrust::Traefik => {
                let host = one(h, &X_FORWARDED_HOST)?
                    .ok_or(Reject::BadRequest("missing X-Forwarded-Host"))?;
                Some(host::valid_host(host)?)
            }
        };
        Ok(Original {
            method,
            target,
            host,
        })
    }
}

/// The single value of `name`; two values are ambiguous, so 400.
fn one<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h HeaderValue>, Reject> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    match values.next() {
        Some(_) => Err(Reject::BadRequest("a forward-auth header is repeated")),
        None => Ok(first),
    }
}

/// The original request-target in origin form (`/path?query`); the query is kept apart
/// from the path by the same parser hyper uses for the proxy's own requests.
fn original_target(value: &HeaderValue) -> Result<PathAndQuery, Reject> {
    const MALFORMED: Reject = Reject::BadRequest("malformed original URI (expected /path?query)");
    if !value.as_bytes().starts_with(b"/") {
        return Err(MALFORMED);
    }
    PathAndQuery::try_from(value.as_bytes()).map_err(|_| MALFORMED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Result<String, Reject> {
        original_target(&HeaderValue::from_str(text).expect("visible ASCII"))
            .map(|t| t.path().to_string())
    }

    #[test]
    fn the_query_is_not_part_of_the_path() {
        assert_eq!(target("/admin/x?next=/public").as_deref(), Ok("/admin/x"));
        assert_eq!(target("/a%2e%2e/b?x").as_deref(), Ok("/a%2e%2e/b"));
    }

    #[test]
    fn anything_but_origin_form_is_refused() {
        for bad in [
            "",
            "admin",
            "*",
            "http://evil/admin",
            "?x=/",
            " /admin",
            "/a b",
        ] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
    }
}
