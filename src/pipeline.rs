//! The request path, stage by stage: normalize, route, authenticate, authorize, forward.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::access::Trace;
use crate::app::App;
use crate::config::raw::OnError;
use crate::forward::headers::{self, X_REQUEST_ID};
use crate::forward::proxies;
use crate::reject::{self, Reject};
use crate::snapshot::{Route, Snapshot};
use crate::token::Claims;
use crate::{endpoints, path, route, Body};

/// What the listener knows about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// "https" or "http", for X-Forwarded-Proto.
    pub proto: &'static str,
    /// The client's address: the peer's, or what a trusted proxy says it is.
    pub client: IpAddr,
}

/// Serves one request: the upstream's response, or the gateway's refusal.
pub async fn handle(app: &App, conn: &ConnInfo, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let snapshot = app.shared.load_full();
    let conn = &if snapshot.trusted_proxies.is_empty() {
        *conn
    } else {
        let client =
            proxies::client_ip(&snapshot.trusted_proxies, conn.peer.ip(), request.headers());
        let proto =
            proxies::forwarded_proto(&snapshot.trusted_proxies, conn.peer.ip(), request.headers());
        ConnInfo {
            client,
            proto: proto.unwrap_or(conn.proto),
            ..*conn
        }
    };
    let method = request.method().clone();
    let mut trace = Trace::new();
    let response = match proxy(app, &snapshot, conn, request, &mut trace).await {
        Ok(response) => response,
        Err(rejected) => {
            app.metrics.gateway_answer(rejected);
            reject::respond(rejected)
        }
    };
    if let Some(route) = trace.route {
        route.stats.record(response.status());
    }
    trace.log(conn, &method, response.status(), started.elapsed());
    response
}

/// The stages in order; each returns a `Reject` to stop the request.
async fn proxy<'s>(
    app: &App,
    snap: &'s Snapshot,
    conn: &ConnInfo,
    mut request: Request<Incoming>,
    trace: &mut Trace<'s>,
) -> Result<Response<Body>, Reject> {
    crate::limits::check_head(&app.listen, &request)?;
    let host = request_host(&request)?.map(str::to_owned);
    let normalized = path::normalize(request.uri().path()).map_err(Reject::BadPath)?;
    if trace.logging {
        trace.path = Some(normalized.to_string());
    }
    if let Some(endpoint) = endpoints::classify(snap, request.method(), &normalized) {
        drop(normalized);
        // Boxed: the auth endpoints' futures are large, and hyper keeps a slot the size of
        // this future on every open connection, idle ones included.
        return Box::pin(endpoints::handle(app, snap, conn, endpoint, request)).await;
    }
    let route = find_route(snap, host.as_deref(), request.method(), &normalized)?;
    trace.route = Some(route);
    let claims =
        authorize_route(app, snap, conn, route, request.method(), request.headers()).await?;
    let forwarded: Cow<'_, str> = match &route.strip_prefix {
        Some(prefix) => route::strip_prefix(&normalized, prefix),
        None => Cow::Borrowed(&normalized),
    };
    let target = route
        .upstream
        .target_for(&forwarded, request.uri().query())?;
    drop(normalized);
    let upgrade = is_upgrade(&request);
    rewrite_request(
        snap,
        conn,
        &mut request,
        host.as_deref(),
        claims.as_ref(),
        upgrade,
    );
    if let (Some(claims), Some(assertion)) = (&claims, &route.assertion) {
        let name = &snap.identity.assertion;
        assertion.add(
            request.headers_mut(),
            name,
            &route.pattern,
            claims,
            unix_now(),
        )?;
    }
    trace.sub = claims.map(|claims| claims.sub);
    trace.request_id = request.headers().get(&X_REQUEST_ID).cloned();
    *request.uri_mut() = target;
    *request.version_mut() = Version::HTTP_11;
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let sent = Instant::now();
    let mut response = route.upstream.send(request, route.read_timeout).await?;
    let upstream_took = sent.elapsed();
    app.metrics.upstream_latency(upstream_took);
    trace.upstream = Some(upstream_took);
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (Some(client), true) = (client_upgrade, switching) {
        tunnel(client, hyper::upgrade::on(&mut response));
    }
    headers::sanitize_response(response.headers_mut(), switching && upgrade);
    Ok(response.map(Body::Left))
}

/// The first route in file order for a normalized path, or 404.
///
/// Shared by the proxy and forward-auth, so both decide on the same route.
pub(crate) fn find_route<'s>(
    snap: &'s Snapshot,
    host: Option<&str>,
    method: &http::Method,
    normalized: &str,
) -> Result<&'s Route, Reject> {
    snap.routes
        .find(host, method, normalized)
        .map(|(_, route)| route)
        .ok_or(Reject::NoRoute)
}

/// What a route demands of a request: nothing for a public route, else the CSRF check
/// (cookie mode) and `authorize`.
///
/// Shared by the proxy and forward-auth; the claims are None on a public route.
pub(crate) async fn authorize_route(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    route: &Route,
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<Option<Claims>, Reject> {
    if !route.policy.requires_token() {
        return Ok(None);
    }
    if let Err(rejected) = crate::cookies::check_csrf(snap.auth.cookies.as_ref(), method, headers) {
        app.metrics.auth_decision(Some(rejected.reason()));
        audit_denied(conn, route, None, rejected);
        return Err(rejected);
    }
    authorize(app, snap, conn, route, headers).await.map(Some)
}

/// Token, revocation, then policy; the claims are returned for the identity headers.
///
/// Every denial is logged here, once, on the `audit` target with the route and reason.
async fn authorize(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    route: &Route,
    headers: &http::HeaderMap,
) -> Result<Claims, Reject> {
    let now = unix_now();
    let verified = crate::cookies::access_token(snap.auth.cookies.as_ref(), headers)
        .and_then(|token| crate::issuers::verify_access(snap, token, now));
    let claims = match verified {
        Ok(claims) => claims,
        Err(err) => {
            app.metrics.auth_decision(Some(err.reason()));
            audit_denied(conn, route, None, Reject::Token(err));
            return Err(Reject::Token(err));
        }
    };
    // A local read while the mirror is in sync; a Redis round trip only while it is not.
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
    let refused = match revoked {
        Ok(false) => route.policy.evaluate(&claims).err().map(Reject::Forbidden),
        Ok(true) => Some(Reject::Revoked),
        Err(_) if app.on_error == OnError::Allow => {
            tracing::error!(target: "audit", event = "revocation_unchecked", sub = %claims.sub, route = %route.pattern,
                "revocation store unavailable: request let through unchecked (on_error = \"allow\")");
            route.policy.evaluate(&claims).err().map(Reject::Forbidden)
        }
        Err(_) => Some(Reject::Unavailable("revocation store unavailable")),
    };
    app.metrics.auth_decision(refused.map(Reject::reason));
    if let Some(rejected) = refused {
        audit_denied(conn, route, Some(&claims.sub), rejected);
        return Err(rejected);
    }
    Ok(claims)
}

fn audit_denied(conn: &ConnInfo, route: &Route, sub: Option<&str>, rejected: Reject) {
    tracing::info!(target: "audit", event = "denied", client = %conn.client, route = %route.pattern,
        sub = sub.unwrap_or("-"), status = rejected.status().as_u16(), reason = rejected.reason(), "request denied");
}

/// The host a request is for: the URI authority (HTTP/2, absolute-form) or Host.
///
/// When both are present they must agree, so that the host the route was chosen
/// for is the host the upstream sees.
pub(crate) fn request_host(request: &Request<Incoming>) -> Result<Option<&str>, Reject> {
    let mut host_headers = request.headers().get_all(header::HOST).iter();
    let host_header = host_headers.next();
    if host_headers.next().is_some() {
        return Err(Reject::BadRequest("more than one Host header"));
    }
    let host_header = host_header.map(valid_host).transpose()?;
    let authority = request.uri().authority().map(|a| a.as_str());
    if authority.is_some_and(|a| !route::is_valid_authority(a)) {
        return Err(BAD_HOST);
    }
    match (authority, host_header) {
        (Some(authority), Some(host)) if !authority.eq_ignore_ascii_case(host) => Err(
            Reject::BadRequest("Host header does not match the request target"),
        ),
        (Some(authority), _) => Ok(Some(authority)),
        // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400.
        (None, None) if request.version() == Version::HTTP_11 => {
            Err(Reject::BadRequest("missing Host header"))
        }
        (None, host) => Ok(host),
    }
}

/// A Host value that is a plain `host[:port]`, or 400.
///
/// Shared by the proxy (Host) and forward-auth (the original host a front proxy reports).
pub(crate) fn valid_host(value: &HeaderValue) -> Result<&str, Reject> {
    value
        .to_str()
        .ok()
        .filter(|h| route::is_valid_authority(h))
        .ok_or(BAD_HOST)
}

const BAD_HOST: Reject = Reject::BadRequest("invalid Host (expected host[:port])");

fn is_upgrade(request: &Request<Incoming>) -> bool {
    request.version() == Version::HTTP_11
        && request.headers().contains_key(header::UPGRADE)
        && request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

fn rewrite_request(
    snap: &Snapshot,
    conn: &ConnInfo,
    request: &mut Request<Incoming>,
    host: Option<&str>,
    claims: Option<&Claims>,
    upgrade: bool,
) {
    let h = request.headers_mut();
    let forwarded_for = proxies::forwarded_for(&snap.trusted_proxies, conn.peer.ip(), h);
    headers::sanitize_request(h, &snap.identity, upgrade);
    crate::cookies::strip(snap.auth.cookies.as_ref(), h);
    h.remove(header::EXPECT);
    let host_value = host.and_then(|host| HeaderValue::from_str(host).ok());
    if let Some(host_value) = &host_value {
        h.insert(header::HOST, host_value.clone());
    }
    headers::add_forwarding(h, forwarded_for, conn.proto, host_value.as_ref());
    let keep_id = h
        .get(&X_REQUEST_ID)
        .is_some_and(headers::is_valid_request_id);
    if !keep_id {
        h.insert(X_REQUEST_ID.clone(), headers::fresh_request_id());
    }
    if let Some(claims) = claims {
        headers::add_identity(h, &snap.identity, claims);
    }
}

/// Joins the client and upstream sides of an upgraded connection (WebSocket etc.).
fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(error = %err, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(error = %err, "upgraded connection ended with an error");
        }
    });
}

/// Seconds since the Unix epoch; a clock before 1970 counts as 0 (tokens then fail nbf).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
