//! One pooled HTTP/1.1 client per upstream; connect and response faults become 502/504.

use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::reject::Reject;

/// A named upstream with its own keep-alive pool.
#[derive(Debug)]
pub struct Upstream {
    /// Name from routes.toml, for logs.
    pub name: String,
    authority: Authority,
    /// Path prefix of the upstream URL without a trailing '/', often empty.
    base_path: String,
    timeout: Duration,
    client: Client<HttpConnector, Incoming>,
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
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .set_host(false)
            .build(connector);
        Ok(Upstream {
            name: name.to_string(),
            authority,
            base_path,
            timeout,
            client,
        })
    }

    /// Whether anything accepts a TCP connection at the upstream's address within `wait`;
    /// for `portcullis check`, never on the request path.
    pub fn probe(&self, wait: Duration) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let port = self.authority.port_u16().unwrap_or(80);
        let addrs: Vec<_> = (self.authority.host(), port)
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

    /// The absolute URI for a forwarded path and query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, Reject> {
        let mut target = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        target.push_str(&self.base_path);
        target.push_str(path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        let path_and_query = PathAndQuery::try_from(target)
            .map_err(|_| Reject::BadRequest("request target cannot be forwarded"))?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| Reject::BadRequest("request target cannot be forwarded"))
    }

    /// Sends the request; connection failures are 502 and a slow response head 504.
    pub async fn send(&self, request: Request<Incoming>) -> Result<Response<Incoming>, Reject> {
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(Reject::UpstreamTimeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) if is_connect_timeout(&err) => Err(Reject::UpstreamTimeout),
            Ok(Err(err)) => {
                tracing::warn!(upstream = %self.name, error = %err, "upstream request failed");
                Err(Reject::UpstreamUnavailable)
            }
        }
    }
}

/// A connect timeout surfaces as an io::ErrorKind::TimedOut inside the connect error.
fn is_connect_timeout(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = inner.source();
    }
    false
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
