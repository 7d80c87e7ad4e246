//! `portcullis echo`: a demo upstream that answers with the request it saw, as JSON.
//!
//! An upgrade request (WebSocket and the like) is accepted with 101 and every byte
//! sent afterwards is echoed back, so tunnels can be tried end to end.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_FIELDS};

/// Headers the gateway may add to a request it forwards, and their bytes, with room to spare.
const ADDED_FIELDS: usize = 64;
const ADDED_BYTES: usize = 64 * 1024;

/// Serves the echo upstream on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "echo upstream listening");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service =
                service_fn(|request| async move { Ok::<_, Infallible>(answer(request).await) });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // Never refuse a head the gateway forwards: the most it lets through, plus room
            // for the identity and forwarding headers it adds (hyper's defaults are 100
            // fields and about 400 KiB).
            builder
                .http1()
                .max_headers(MAX_HEADER_FIELDS + ADDED_FIELDS)
                .max_buf_size(MAX_HEADER_BYTES + ADDED_BYTES);
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(mut request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.headers().contains_key(UPGRADE) {
        return upgrade(&mut request);
    }
    let headers = header_map(&request);
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let body_bytes = count_body(request.into_body()).await;
    let report = serde_json::json!({
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(Full::new(Bytes::from(report.to_string())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Header names lowercase; repeated headers joined with ", ".
fn header_map(request: &Request<Incoming>) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    headers
}

async fn count_body(mut body: Incoming) -> u64 {
    let mut total = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
        }
    }
    total
}

fn upgrade(request: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let protocol = request.headers()[UPGRADE].clone();
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response.headers_mut().insert(UPGRADE, protocol);
    response
        .headers_mut()
        .insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    response
}
