//! The HTTPS client: hyper over rustls for well-formed requests, raw bytes for the rest.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{BoxBody, Digest, PatternBody, DEADLINE};

/// An HTTPS client for one gateway: trusts its generated cert, server name "localhost".
/// Each request uses a fresh connection; paths are sent exactly as given.
#[derive(Clone)]
pub struct Client {
    pub(super) addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
}

impl Client {
    pub fn new(addr: SocketAddr, cert: rustls::pki_types::CertificateDer<'static>) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("add test cert to root store");
        Client {
            addr,
            roots: Arc::new(roots),
        }
    }

    pub fn tls_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default TLS versions")
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// A TLS connection to the gateway offering `alpn`.
    pub async fn connect_tls(&self, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        self.tls_over(tcp, alpn).await
    }

    /// TLS over a TCP connection already made to the gateway (to separate connect from
    /// handshake, e.g. when the gateway has not accepted yet).
    pub async fn tls_over(
        &self,
        tcp: TcpStream,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid server name");
        TlsConnector::from(self.tls_config(alpn))
            .connect(name, tcp)
            .await
    }

    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method: Method::from_bytes(method.as_bytes()).expect("valid method"),
            path: path.to_string(),
            headers: Vec::new(),
            host: None,
            body: ReqBody::Empty,
            deadline: DEADLINE,
        }
    }
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request("GET", path)
    }
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request("POST", path)
    }
}

enum ReqBody {
    Empty,
    Bytes(Bytes),
    Pattern(u64),
}

pub struct RequestBuilder {
    client: Client,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    host: Option<String>,
    body: ReqBody,
    deadline: std::time::Duration,
}

/// A response with its body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}); status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }
    /// A header as `portcullis echo` reported seeing it (names lowercase).
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .get(name.to_ascii_lowercase())
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }
    /// Every header name `portcullis echo` reported.
    pub fn echoed_header_names(&self) -> Vec<String> {
        self.json()["headers"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
    pub fn digest(&self) -> Digest {
        let mut d = Digest::new();
        d.update(&self.body);
        d
    }
}

impl RequestBuilder {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    /// The Host header (HTTP/1.1) or :authority (HTTP/2); default `localhost:PORT`.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.body = ReqBody::Bytes(b.into());
        self
    }
    /// How long the whole exchange may take (default `DEADLINE`), for requests that queue
    /// behind deliberate work such as password hashing.
    pub fn deadline(mut self, d: std::time::Duration) -> Self {
        self.deadline = d;
        self
    }
    /// A streamed body of `n` bytes of `pattern_byte`.
    pub fn pattern_body(mut self, n: u64) -> Self {
        self.body = ReqBody::Pattern(n);
        self
    }

    fn build(self, version: Version) -> (Client, Request<BoxBody>, std::time::Duration) {
        let host = self
            .host
            .clone()
            .unwrap_or_else(|| format!("localhost:{}", self.client.addr.port()));
        let uri = match version {
            // HTTP/2 needs scheme and authority; the path goes into :path verbatim.
            Version::HTTP_2 => format!("https://{host}{}", self.path),
            _ => self.path.clone(),
        };
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(uri.as_str())
            .version(version);
        if version != Version::HTTP_2 {
            b = b.header("host", host.as_str());
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let body = match self.body {
            ReqBody::Empty => http_body_util::Empty::new().boxed(),
            ReqBody::Bytes(bytes) => Full::new(bytes).boxed(),
            ReqBody::Pattern(n) => PatternBody::new(n).boxed(),
        };
        let req = b
            .body(body)
            .unwrap_or_else(|e| panic!("cannot build request for {uri:?}: {e}"));
        (self.client, req, self.deadline)
    }

    /// Send over `version` (HTTP/1.1 or HTTP/2, chosen by ALPN); panics if the exchange fails.
    pub async fn send(self, version: Version) -> Response {
        match version {
            Version::HTTP_2 => self.send_h2().await,
            _ => self.send_h1().await,
        }
    }

    /// Send over HTTP/1.1 (ALPN http/1.1); panics if the exchange fails.
    pub async fn send_h1(self) -> Response {
        self.try_send_h1()
            .await
            .unwrap_or_else(|e| panic!("HTTP/1.1 request failed: {e}"))
    }

    /// Send over HTTP/2 (ALPN h2); panics if the exchange fails.
    pub async fn send_h2(self) -> Response {
        self.try_send_h2()
            .await
            .unwrap_or_else(|e| panic!("HTTP/2 request failed: {e}"))
    }

    pub async fn try_send_h1(self) -> Result<Response, String> {
        let (client, req, deadline) = self.build(Version::HTTP_11);
        let fut = async move {
            let tls = client
                .connect_tls(&[b"http/1.1"])
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("h1 handshake: {e}"))?;
            tokio::spawn(conn);
            let resp = send
                .send_request(req)
                .await
                .map_err(|e| format!("h1 send: {e}"))?;
            read_response(resp).await
        };
        tokio::time::timeout(deadline, fut)
            .await
            .map_err(|_| format!("timed out after {deadline:?}"))?
    }

    pub async fn try_send_h2(self) -> Result<Response, String> {
        let (client, req, deadline) = self.build(Version::HTTP_2);
        let fut = async move {
            let tls = client
                .connect_tls(&[b"h2"])
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
            if alpn.as_deref() != Some(b"h2".as_slice()) {
                return Err(format!("server did not select h2 by ALPN (got {alpn:?})"));
            }
            let (mut send, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                TokioIo::new(tls),
            )
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            let resp = send
                .send_request(req)
                .await
                .map_err(|e| format!("h2 send: {e}"))?;
            read_response(resp).await
        };
        tokio::time::timeout(deadline, fut)
            .await
            .map_err(|_| format!("timed out after {deadline:?}"))?
    }
}

async fn read_response(resp: http::Response<hyper::body::Incoming>) -> Result<Response, String> {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading body: {e}"))?
        .to_bytes();
    Ok(Response {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}
