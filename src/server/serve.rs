//! One connection served by hyper: the service every request goes through, and the
//! connection for the protocol, watched by `park::drive`.

use std::convert::Infallible;

use http::{header, Method, Request};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::request::client::ConnInfo;
use crate::request::pipeline;
use crate::server::conn::{Protocol, Server};
use crate::server::idle::Tracked;
use crate::server::park::{self, drive, Readiness};

/// Serves `io` with `protocol` until the connection ends.
pub(super) async fn serve_http<I>(server: &Server, io: I, info: ConnInfo, protocol: Protocol)
where
    I: AsyncRead + AsyncWrite + Readiness + Unpin + Send + 'static,
{
    let (io, activity) = Tracked::new(io);
    let app = server.app.clone();
    let requests = activity.clone();
    // Not boxed: hyper keeps a slot the size of this future on every active connection, but
    // boxing it costs an allocation of that size per request.
    let service = service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        let serving = requests.serving(is_plain(&request));
        async move {
            let response = pipeline::handle(&app, &info, request).await;
            let response = response.map(|body| serving.watch(body));
            drop(serving);
            Ok::<_, Infallible>(response)
        }
    });
    let http = &server.http;
    let peer = info.peer;
    match protocol {
        Protocol::Http1 => park::serve_h1(server, io, service, &activity, peer).await,
        // Boxed, as every connection is: a task is as large as its largest state, and an
        // h2 connection is twice the size of an HTTP/1.1 one.
        Protocol::Http2 => {
            let connection = Box::pin(http.http2.serve_connection(TokioIo::new(io), service));
            drive(server, connection, &activity, peer, false).await;
        }
        Protocol::Sniff => {
            let io = TokioIo::new(io);
            let connection = Box::pin(http.sniff.serve_connection_with_upgrades(io, service));
            drive(server, connection, &activity, peer, false).await;
        }
    }
}

/// A request hyper is done reading once it has its head: no body, no upgrade.
fn is_plain(request: &Request<Incoming>) -> bool {
    request.body().is_end_stream()
        && request.method() != Method::CONNECT
        && !request.headers().contains_key(header::UPGRADE)
}
