//! The admin listener (plain HTTP, keep it on loopback): /healthz, /readyz, /metrics
//! (Prometheus text) and POST /revoke, which `portcullis revoke` calls.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::control::app::App;
use crate::runtime::unix_now;

/// Serves the admin endpoints until shutdown starts, then closes the listener: a probe
/// during the drain is refused, which reads as not ready (requests already accepted are
/// still answered).
pub async fn serve(listener: TcpListener, app: Arc<App>, mut stopping: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, peer.ip(), request).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
        });
    }
}

async fn answer(
    app: &App,
    peer: std::net::IpAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // The listeners are bound before this serves, so ready means serving.
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        // Ready: configuration loaded (it is, or we would not serve) and the revocation
        // mirror fresh (in sync, or out of sync for less than max_mirror_staleness), so a
        // load balancer stops sending traffic to a blind instance but a failover of a few
        // seconds does not take every instance out at once.
        // External issuers' key status is reported, never a reason for 503: see issuers::report.
        (&Method::GET, "/readyz") => {
            let issuers = crate::issuers::report::readiness(&app.shared.load().issuers);
            let (status, head) = match (app.revocations.in_sync(), app.revocations.fresh()) {
                (true, _) => (StatusCode::OK, "ok\n"),
                (false, true) => (
                    StatusCode::OK,
                    "ok (revocation store out of sync, within max_mirror_staleness)\n",
                ),
                (false, false) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "revocation store out of sync\n",
                ),
            };
            let mut response = Response::new(Full::new(Bytes::from(format!("{head}{issuers}"))));
            *response.status_mut() = status;
            response
        }
        (&Method::GET, "/metrics") => {
            let (stale_for, master_changes) = app.revocations.staleness_and_master_changes();
            let store = crate::control::metrics::StoreState {
                revocations: app.revocations.len(),
                in_sync: app.revocations.in_sync(),
                stale_for,
                master_changes,
            };
            let body = app.metrics.render(&app.shared.load(), &store);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        // The admin listener may have to face a network (probes, Prometheus); revoking
        // stays a local operator's act.
        (&Method::POST, "/revoke") if peer.is_loopback() => revoke(app, request).await,
        (&Method::POST, "/revoke") => text(
            StatusCode::FORBIDDEN,
            "revoke is accepted from loopback only\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// What to revoke: one token by jti, or everything a subject holds now.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeOrder {
    /// A token id.
    #[serde(default)]
    pub jti: Option<String>,
    /// A subject: every token issued to it until now.
    #[serde(default)]
    pub sub: Option<String>,
}

async fn revoke(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Ok(body) = Limited::new(request.into_body(), 4096).collect().await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    };
    let Ok(order) = serde_json::from_slice::<RevokeOrder>(&body.to_bytes()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected {\"jti\": ID} or {\"sub\": NAME}\n",
        );
    };
    let now = unix_now();
    let snap = app.shared.load_full();
    // The CLI does not know a token's exp: keep the entry as long as any token can live.
    let longest =
        snap.lifetimes.access.max(snap.lifetimes.refresh).as_secs() + snap.expect.leeway_secs;
    let result = match (&order.jti, &order.sub) {
        (Some(jti), None) if !jti.is_empty() => {
            app.revocations.revoke_jti(jti, now + longest).await
        }
        (None, Some(sub)) if !sub.is_empty() => {
            let cut_off = subject_cut_off(now, snap.expect.leeway_secs);
            app.revocations.revoke_subject(sub, cut_off).await
        }
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "expected exactly one of jti, sub\n",
            )
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(target: "audit", event = "revoke", jti = order.jti.as_deref().unwrap_or("-"),
                user = order.sub.as_deref().unwrap_or("-"));
            text(StatusCode::OK, "revoked\n")
        }
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "revocation store unavailable\n",
        ),
    }
}

/// The `iat` before which a subject's tokens are revoked at `now`.
///
/// Past this second (`now + 1`, so tokens of this very second go too) by `leeway`: verify
/// accepts an `iat` up to `now + leeway`, so a token issued before the revocation by a clock
/// (another instance, a provider) running ahead by up to `leeway` can carry any `iat` below
/// this. The cost: a token issued in the next `leeway` seconds is refused too, so the
/// subject signs in again after that. An `iat` further ahead is refused at verification.
fn subject_cut_off(now: u64, leeway: u64) -> u64 {
    now.saturating_add(1).saturating_add(leeway)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Client side of POST /revoke, for `portcullis revoke`.
pub async fn post_revoke(
    admin: std::net::SocketAddr,
    order: &serde_json::Value,
) -> Result<String, AdminError> {
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(AdminError::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(AdminError::Http)?;
    tokio::spawn(conn);
    let request = Request::post("/revoke")
        .header(http::header::HOST, admin.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(order.to_string())))
        .map_err(|_| AdminError::Status(StatusCode::BAD_REQUEST, String::new()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(AdminError::Http)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(AdminError::Http)?
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(AdminError::Status(status, text))
    }
}

/// Why the admin listener could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No connection.
    #[error("cannot reach the admin listener: {0}")]
    Connect(std::io::Error),
    /// HTTP failed.
    #[error("admin request failed: {0}")]
    Http(hyper::Error),
    /// The gateway refused.
    #[error("admin listener answered {0}: {1}")]
    Status(StatusCode, String),
}

#[cfg(test)]
mod tests {
    use super::subject_cut_off;

    #[test]
    fn a_subject_cut_off_covers_every_iat_verification_accepts_now() {
        // verify accepts iat <= now + leeway; revoked means iat < cut-off.
        let (now, leeway) = (1_700_000_000, 30);
        assert!(now + leeway < subject_cut_off(now, leeway));
        assert_eq!(subject_cut_off(u64::MAX, leeway), u64::MAX);
    }
}
