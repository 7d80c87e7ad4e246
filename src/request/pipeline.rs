//! The request path, stage by stage: normalize, route, authenticate, authorize, forward.

use std::borrow::Cow;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::forward::headers::{self, X_REQUEST_ID};
use crate::forward::proxies;
use crate::forward::values::ValueBuf;
use crate::reject::{self, Reject};
use crate::request::access_log::Trace;
use crate::request::authorize::{authorize_route, find_route};
use crate::request::client::ConnInfo;
use crate::request::endpoints;
use crate::request::endpoints::sign_in::navigation;
use crate::request::host::{host_value, request_host};
use crate::runtime::unix_now;
use crate::token::Claims;
use crate::{path, route, Body};

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
    let mut response = match proxy(app, &snapshot, conn, request, &mut trace).await {
        Ok(response) => response,
        Err(rejected) => {
            app.metrics.gateway_answer(rejected);
            reject::respond(rejected).map(Body::Right)
        }
    };
    if let (Some(hsts), "https") = (&snapshot.hsts, conn.proto) {
        // An upstream that sets its own policy keeps it.
        response
            .headers_mut()
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert_with(|| hsts.clone());
    }
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
    let mut values = ValueBuf::new();
    let host = match request_host(&request)? {
        Some(name) => host_value(&request, name, &mut values),
        None => None,
    };
    let host_name = host.as_ref().and_then(|value| value.to_str().ok());
    let normalized = path::normalize(request.uri().path()).map_err(Reject::BadPath)?;
    if trace.logging {
        values.push(normalized.as_bytes());
        trace.path = Some(values.take());
    }
    if let Some(endpoint) = endpoints::classify(snap, request.method(), &normalized) {
        drop(normalized);
        // Boxed: the auth endpoints' futures are large, and hyper keeps a slot the size of
        // this future on every open connection, idle ones included.
        return Box::pin(endpoints::handle(app, snap, conn, endpoint, request)).await;
    }
    let route = find_route(snap, host_name, request.method(), &normalized)?;
    trace.route = Some(route);
    let authorized =
        authorize_route(app, snap, conn, route, request.method(), request.headers()).await;
    let claims = match authorized {
        Ok(claims) => claims,
        Err(rejected) => return sign_in_instead(snap, conn, route, &request, host_name, rejected),
    };
    let forwarded: Cow<'_, str> = match &route.strip_prefix {
        Some(prefix) => route::strip_prefix(&normalized, prefix),
        None => Cow::Borrowed(&normalized),
    };
    let target = route
        .upstream
        .target_for(&forwarded, request.uri().query(), &mut values)?;
    drop(normalized);
    let upgrade = is_upgrade(&request);
    rewrite_request(
        snap,
        conn,
        &mut request,
        host.as_ref(),
        claims.as_deref(),
        upgrade,
        &mut values,
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
    // Everything written is cut out; the buffer's rest need not live across the exchange.
    drop(values);
    // The claims themselves, shared: the subject is read only if a line is written.
    trace.claims = claims;
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

/// A browser navigation that lacks a session goes to sign in; anything else keeps its refusal.
fn sign_in_instead(
    snap: &Snapshot,
    conn: &ConnInfo,
    route: &crate::config::snapshot::Route,
    request: &Request<Incoming>,
    host: Option<&str>,
    rejected: Reject,
) -> Result<Response<Body>, Reject> {
    let original_url = || {
        let path = request.uri().path_and_query()?.as_str();
        Some(format!("{}://{}{path}", conn.proto, host?))
    };
    let headers = request.headers();
    match navigation::redirect(
        snap,
        route,
        request.method(),
        headers,
        original_url,
        rejected,
    ) {
        Some(location) => Ok(navigation::found(&location)),
        None => Err(rejected),
    }
}

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

/// The request as the upstream gets it; the values the gateway writes are cut from `values`.
fn rewrite_request(
    snap: &Snapshot,
    conn: &ConnInfo,
    request: &mut Request<Incoming>,
    host: Option<&HeaderValue>,
    claims: Option<&Claims>,
    upgrade: bool,
    values: &mut ValueBuf,
) {
    let h = request.headers_mut();
    let forwarded_for = proxies::forwarded_for(&snap.trusted_proxies, conn.peer.ip(), h, values);
    headers::sanitize_request(h, &snap.identity, upgrade);
    crate::cookies::strip(snap.auth.cookies.as_ref(), h);
    h.remove(header::EXPECT);
    if let Some(host) = host {
        h.insert(header::HOST, host.clone());
    }
    headers::add_forwarding(h, forwarded_for, conn.proto, host);
    let keep_id = h
        .get(&X_REQUEST_ID)
        .is_some_and(headers::is_valid_request_id);
    if !keep_id {
        h.insert(X_REQUEST_ID.clone(), headers::fresh_request_id(values));
    }
    if let Some(claims) = claims {
        headers::add_identity(h, &snap.identity, claims, values);
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
