//! One keep-alive HTTP/1.1 connection pool per upstream; connect and response faults become
//! 502/504.
//!
//! A bodiless request with an idempotent method (RFC 9110 9.2.2) whose pooled connection dies
//! before answering is sent once more on a new connection, as nginx's `proxy_next_upstream
//! error` does: the upstream may have closed that keep-alive connection just as the request
//! went out. Any other request that was written is never sent twice.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::UpstreamBody;
use super::pool::Pool;
use super::values::ValueBuf;
use crate::reject::Reject;

/// How long an unused upstream connection is kept open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Pooled connections tried for one request before a new one is opened.
const POOLED_TRIES: usize = 3;

/// The body of a request to an upstream: the client's, or none for a request sent again.
pub type RequestBody = Either<Incoming, Empty<Bytes>>;

/// A response from an upstream; its body returns the connection to the pool.
pub type UpstreamResponse = Response<UpstreamBody<RequestBody>>;

/// A named upstream with its own keep-alive pool.
#[derive(Debug)]
pub struct Upstream {
    /// Name from routes.toml, for logs.
    pub name: String,
    authority: Authority,
    /// Path prefix of the upstream URL without a trailing '/', often empty.
    base_path: String,
    connect_timeout: Duration,
    timeout: Duration,
    pool: Arc<Pool<RequestBody>>,
}

/// Why an upstream URL is not usable.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Not an absolute http:// URL with a host.
    #[error("expected an absolute http:// URL such as \"http://127.0.0.1:8080\"")]
    BadUrl,
    /// Has a query or fragment.
    #[error("an upstream URL cannot carry a query")]
    HasQuery,
}

impl Upstream {
    /// Builds the upstream and its (lazily connecting) pool.
    pub fn new(
        name: &str,
        url: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let uri: Uri = url.parse().map_err(|_| UpstreamError::BadUrl)?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(UpstreamError::BadUrl);
        }
        let authority = uri.authority().cloned().ok_or(UpstreamError::BadUrl)?;
        if uri.query().is_some() {
            return Err(UpstreamError::HasQuery);
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Upstream {
            name: name.to_string(),
            authority,
            base_path,
            connect_timeout,
            timeout,
            pool: Arc::new(Pool::new(name, POOL_IDLE_TIMEOUT)),
        })
    }

    /// Whether anything accepts a TCP connection at the upstream's address within `wait`;
    /// for `portcullis check`, never on the request path.
    pub fn probe(&self, wait: Duration) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<_> = (self.host(), self.port())
            .to_socket_addrs()
            .map_err(|err| format!("host \"{}\" does not resolve: {err}", self.authority.host()))?
            .collect();
        let mut last = String::from("no address");
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, wait) {
                Ok(_) => return Ok(()),
                Err(err) => last = format!("nothing accepts connections at {addr}: {err}"),
            }
        }
        Err(last)
    }

    /// The absolute URI for a forwarded path and query, as `explain` shows it.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, Reject> {
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query(path, query, &mut ValueBuf::new())?)
            .build()
            .map_err(|_| Reject::BadRequest("request target cannot be forwarded"))
    }

    /// The origin-form request target (`/base/path?query`) sent on the upstream connection,
    /// written into the request's `values`.
    pub fn target_for(
        &self,
        path: &str,
        query: Option<&str>,
        values: &mut ValueBuf,
    ) -> Result<Uri, Reject> {
        self.path_and_query(path, query, values).map(Uri::from)
    }

    fn path_and_query(
        &self,
        path: &str,
        query: Option<&str>,
        values: &mut ValueBuf,
    ) -> Result<PathAndQuery, Reject> {
        values.push(self.base_path.as_bytes());
        values.push(path.as_bytes());
        if let Some(query) = query {
            values.push(b"?");
            values.push(query.as_bytes());
        }
        PathAndQuery::from_maybe_shared(values.take())
            .map_err(|_| Reject::BadRequest("request target cannot be forwarded"))
    }

    /// This upstream with `old`'s pool, when both have the same name and address: a reload
    /// then keeps the open keep-alive connections (and the stall count) instead of making
    /// every worker connect anew. None when they differ.
    pub fn with_pool_of(&self, old: &Upstream) -> Option<Upstream> {
        (self.name == old.name && self.authority == old.authority).then(|| Upstream {
            name: self.name.clone(),
            authority: self.authority.clone(),
            base_path: self.base_path.clone(),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            pool: Arc::clone(&old.pool),
        })
    }

    /// Counts `count` stalls from before a reload, so the metric goes on from there.
    pub fn add_stalls(&self, count: u64) {
        self.pool.add_stalls(count);
    }

    /// Responses from this upstream cut because their body stalled, since it was built.
    pub fn stalls(&self) -> u64 {
        self.pool.stalls()
    }

    /// Sends the request; connection failures and a body bad from its first byte are 502, a
    /// slow connect or response head 504. The body is cut after `read_timeout` without bytes.
    pub async fn send(
        &self,
        request: Request<Incoming>,
        read_timeout: Duration,
    ) -> Result<UpstreamResponse, Reject> {
        let exchange = self.exchange(request.map(Either::Left), read_timeout);
        let mut response = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => return Err(Reject::UpstreamTimeout),
            Ok(result) => result?,
        };
        // Nothing has reached the client yet: a body bad from its first byte is still a 502.
        let mut body = Pin::new(response.body_mut());
        let first = std::future::poll_fn(|cx| Poll::Ready(body.as_mut().take_first(cx)));
        match first.await {
            Ok(()) => Ok(response),
            Err(err) => Err(self.failed(&err)),
        }
    }

    /// One request on a pooled connection, else on a new one.
    ///
    /// A pooled connection the upstream closed while it was idle fails before the request is
    /// written; hyper hands the request back and it goes out on the next connection. One that
    /// fails after, with no answer, is retried on a new connection only if the request may be
    /// sent twice (`replay_copy`).
    async fn exchange(
        &self,
        mut request: Request<RequestBody>,
        read_timeout: Duration,
    ) -> Result<UpstreamResponse, Reject> {
        for _ in 0..POOLED_TRIES {
            let Some(mut sender) = self.pool.checkout() else {
                break;
            };
            let copy = replay_copy(&request);
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.lend(response, sender, read_timeout)),
                Err(mut failed) => match (failed.take_message(), copy) {
                    (Some(unsent), _) => request = unsent,
                    (None, Some(copy)) if connection_lost(failed.error()) => {
                        tracing::debug!(upstream = %self.name, error = %failed.error(),
                            "pooled connection lost before the answer: sending again on a new one");
                        request = *copy;
                        break;
                    }
                    (None, _) => return Err(self.failed(failed.error())),
                },
            }
        }
        // Boxed: connecting is rare next to reusing, and its future would size every request's.
        let mut sender = Box::pin(self.connect()).await?;
        match sender.send_request(request).await {
            Ok(response) => Ok(self.lend(response, sender, read_timeout)),
            Err(err) => Err(self.failed(&err)),
        }
    }

    /// The response, with its connection lent to the body unless the protocol changed.
    fn lend(
        &self,
        response: Response<Incoming>,
        sender: SendRequest<RequestBody>,
        read_timeout: Duration,
    ) -> UpstreamResponse {
        let reusable = response.status() != StatusCode::SWITCHING_PROTOCOLS;
        let lease = reusable.then(|| (sender, Arc::clone(&self.pool)));
        response.map(|body| UpstreamBody::new(body, lease, read_timeout))
    }

    fn failed(&self, err: &hyper::Error) -> Reject {
        tracing::warn!(upstream = %self.name, error = %err, "upstream request failed");
        Reject::UpstreamUnavailable
    }

    /// A new connection, its task spawned; a connect slower than `connect_timeout` is 504.
    async fn connect(&self) -> Result<SendRequest<RequestBody>, Reject> {
        let stream = match tokio::time::timeout(self.connect_timeout, self.dial()).await {
            Err(_) => return Err(Reject::UpstreamTimeout),
            Ok(Err(err)) => {
                tracing::warn!(upstream = %self.name, error = %err, "cannot connect to upstream");
                return Err(Reject::UpstreamUnavailable);
            }
            Ok(Ok(stream)) => stream,
        };
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| self.failed(&err))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(upstream = %name, error = %err, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// A TCP connection to the first of the host's addresses that accepts one.
    async fn dial(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in tokio::net::lookup_host((self.host(), self.port())).await? {
            match connect_nodelay(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("the host has no address")))
    }

    /// The host without IPv6 brackets, as a resolver takes it.
    fn host(&self) -> &str {
        let host = self.authority.host();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(80)
    }
}

/// A copy of a request that may be sent twice: an idempotent method (RFC 9110 9.2.2) and no
/// body, since a streamed body is spent once sent. Boxed, so that the request future hyper
/// keeps per connection does not grow by a whole request.
fn replay_copy(request: &Request<RequestBody>) -> Option<Box<Request<RequestBody>>> {
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    if !idempotent || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = Box::new(Request::new(Either::Right(Empty::new())));
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// Whether a request failed because its connection went away (closed, reset, cut short)
/// rather than because the upstream answered something unparsable.
fn connection_lost(err: &hyper::Error) -> bool {
    !err.is_parse() && !err.is_user()
}

async fn connect_nodelay(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Result<Upstream, UpstreamError> {
        Upstream::new("api", url, Duration::from_secs(1), Duration::from_secs(1))
    }

    #[tokio::test]
    async fn joins_base_path_path_and_query() {
        let up = upstream("http://127.0.0.1:8080/base/").expect("valid url");
        let uri = up.uri_for("/x/y", Some("a=1")).expect("valid target");
        assert_eq!(uri.to_string(), "http://127.0.0.1:8080/base/x/y?a=1");
        let target = up
            .target_for("/x/y", Some("a=1"), &mut ValueBuf::new())
            .expect("valid target");
        assert_eq!(
            target.to_string(),
            "/base/x/y?a=1",
            "origin-form on the wire"
        );
    }

    #[tokio::test]
    async fn rejects_non_http_urls() {
        for bad in [
            "https://x",
            "127.0.0.1:80",
            "ftp://x/",
            "http://x/?q=1",
            "/relative",
        ] {
            assert!(upstream(bad).is_err(), "{bad}");
        }
    }
}
