//! The test harness: the only code that knows how to start things.
//!
//! `Gateway::start(cfg)` runs the real `portcullis` binary on loopback ports with a TLS
//! cert and an Ed25519 signing key generated at test time; `Upstream::echo()` runs
//! `portcullis echo`; `MockUpstream` is an in-process hyper server for behaviour the echo
//! cannot show (slow answers, big bodies, proof that a request never arrived).
//! `Client` speaks HTTP/1.1 or HTTP/2 over rustls and sends paths byte for byte.
//! Every handle kills or stops what it started on `Drop`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// How long anything in the harness may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// A loopback port the OS considers free right now (bind :0, read, drop).
pub fn free_port() -> u16 {
    let l = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr()
        .expect("local addr of a bound listener")
        .port()
}

/// A temp dir that lives as long as its owner.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("portcullis-test")
                .tempdir()
                .expect("tempdir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

/// Poll `f` until it returns `Ok`, or fail with its last error after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut last;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("not true within {deadline:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A self-signed TLS cert for localhost, 127.0.0.1 and ::1 (cert PEM, key PEM, cert DER).
pub fn tls_cert() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("rcgen self-signed cert");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().clone(),
    )
}

/// An Ed25519 key pair as PEM (PKCS#8 private key, SPKI public key).
pub fn ed25519_pem() -> (String, String) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 keygen");
    (kp.serialize_pem(), kp.public_key_pem())
}

/// Run the binary to completion.
pub fn run_cli(args: &[&str]) -> CliOutput {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A child process killed (and reaped) on drop; its output goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
    what: String,
}

impl Proc {
    fn spawn(what: &str, args: &[&str], log: PathBuf) -> Proc {
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file handle");
        let child = Command::new(BIN)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN} {args:?}: {e}"));
        Proc {
            child,
            log,
            what: what.to_string(),
        }
    }
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- {} output ({}) -----\n{}\n----- end -----",
                self.what,
                self.log.display(),
                self.log()
            );
        }
    }
}

fn addr_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("in use") || l.contains("os error 98") || l.contains("addrinuse")
}

// ---------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------

/// The knobs of one gateway under test.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// routes.toml, verbatim.
    pub routes: String,
    /// TOML appended to gateway.toml (whole sections, e.g. `[identity]`).
    pub extra: String,
    pub header_timeout: String,
    pub idle_timeout: String,
    pub max_header_bytes: usize,
    /// Also open the plain-HTTP listener.
    pub plain: bool,
}

impl GatewayConfig {
    pub fn new(routes: impl Into<String>) -> GatewayConfig {
        GatewayConfig {
            routes: routes.into(),
            extra: String::new(),
            header_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            max_header_bytes: 16384,
            plain: false,
        }
    }
    /// `standard_routes(upstream_url)`.
    pub fn standard(upstream_url: &str) -> GatewayConfig {
        GatewayConfig::new(standard_routes(upstream_url))
    }
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
    pub fn header_timeout(mut self, d: &str) -> Self {
        self.header_timeout = d.into();
        self
    }
    pub fn idle_timeout(mut self, d: &str) -> Self {
        self.idle_timeout = d.into();
        self
    }
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }
}

/// The route table most tests use, all on one upstream named `api`:
/// `/public/**` GET/HEAD without auth, `/open/**` any method without auth,
/// `/admin/**` needs role admin, `/api/**` needs any valid token.
pub fn standard_routes(upstream_url: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{upstream_url}"
connect_timeout = "2s"
timeout = "10s"

[[routes]]
path = "/public/**"
methods = ["GET", "HEAD"]
upstream = "api"
auth = "none"

[[routes]]
path = "/open/**"
upstream = "api"
auth = "none"

[[routes]]
path = "/admin/**"
upstream = "api"
roles_any = ["admin"]

[[routes]]
path = "/api/**"
upstream = "api"
"#
    )
}

/// A running `portcullis run`, killed on drop.
pub struct Gateway {
    proc: Proc,
    pub dir: TestDir,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub plain: Option<SocketAddr>,
    pub config_path: PathBuf,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    pub signing_key_pem: String,
    pub public_key_pem: String,
}

impl Gateway {
    pub async fn start(cfg: GatewayConfig) -> Gateway {
        let dir = TestDir::new();
        let (cert_pem, key_pem, cert_der) = tls_cert();
        dir.write("cert.pem", &cert_pem);
        dir.write("key.pem", &key_pem);
        let (signing, public) = ed25519_pem();
        dir.write("main.pem", &signing);
        dir.write("main.pub.pem", &public);
        dir.write("routes.toml", &cfg.routes);

        let mut attempt = 0;
        loop {
            attempt += 1;
            let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let plain: Option<SocketAddr> = cfg
                .plain
                .then(|| format!("127.0.0.1:{}", free_port()).parse().expect("addr"));
            let config_path = dir.write("gateway.toml", &gateway_toml(&cfg, https, admin, plain));
            let log = dir.join(&format!("gateway-{attempt}.log"));
            let cfg_arg = config_path.to_str().expect("utf-8 temp path").to_string();
            let mut proc = Proc::spawn("gateway", &["run", "--config", &cfg_arg], log);

            let ready = wait_ready(&mut proc, admin).await;
            match ready {
                Ok(()) => {
                    return Gateway {
                        proc,
                        dir,
                        https,
                        admin,
                        plain,
                        config_path,
                        cert_der,
                        signing_key_pem: signing,
                        public_key_pem: public,
                    }
                }
                Err(e) if attempt < 4 && addr_in_use(&proc.log()) => {
                    drop(e);
                    continue;
                }
                Err(e) => {
                    let log = proc.log();
                    let toml = std::fs::read_to_string(&config_path).unwrap_or_default();
                    // Keep the temp dir for inspection; the log is the diagnosis.
                    let kept = dir.dir.keep();
                    panic!("gateway did not become ready: {e} (files kept in {})\n--- gateway.toml ---\n{toml}\n--- routes.toml ---\n{}\n--- gateway output ---\n{log}", kept.display(), cfg.routes);
                }
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.https, self.cert_der.clone())
    }

    /// `localhost:PORT`, what a browser would send as Host.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.https.port())
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn config_arg(&self) -> String {
        self.config_path
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    /// Claims of a valid access token for `sub` with `roles`.
    pub fn claims(&self, sub: &str, roles: &[&str]) -> Value {
        let now = now_secs();
        json!({
            "iss": "portcullis",
            "aud": "portcullis",
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "jti": format!("test-{}-{}", sub, now_nanos()),
            "roles": roles,
            "typ": "access",
        })
    }

    /// A header for EdDSA with kid "main".
    pub fn header(&self) -> jsonwebtoken::Header {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some("main".into());
        h.typ = Some("JWT".into());
        h
    }

    /// Sign `claims` with the gateway's own key under `header`.
    pub fn sign(&self, header: &jsonwebtoken::Header, claims: &Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_ed_pem(self.signing_key_pem.as_bytes())
            .expect("ed25519 PEM");
        jsonwebtoken::encode(header, claims, &key).expect("sign token")
    }

    /// A valid access token, minted in the test with the key the gateway trusts (kid "main").
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.sign(&self.header(), &self.claims(sub, roles))
    }

    /// A token minted by `portcullis token --config ... --sub S --role R...`.
    pub fn cli_token(&self, sub: &str, roles: &[&str]) -> String {
        let cfg = self.config_arg();
        let mut args = vec!["token", "--config", cfg.as_str(), "--sub", sub];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        let out = run_cli(&args);
        assert_eq!(out.code, Some(0), "portcullis token failed: {out:?}");
        out.stdout.trim().to_string()
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn gateway_toml(
    cfg: &GatewayConfig,
    https: SocketAddr,
    admin: SocketAddr,
    plain: Option<SocketAddr>,
) -> String {
    let plain_line = plain
        .map(|p| format!("plain_addr = \"{p}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[listen]
addr = "{https}"
tls_cert = "cert.pem"
tls_key = "key.pem"
{plain_line}header_timeout = "{ht}"
idle_timeout = "{it}"
max_header_bytes = {mhb}
max_connections = 10000

[admin]
addr = "{admin}"

[tokens]
issuer = "portcullis"
audience = "portcullis"
access_ttl = "15m"
leeway = "30s"
signing_kid = "main"

[[keys]]
kid = "main"
alg = "EdDSA"
private_key = "main.pem"

[routes]
file = "routes.toml"

{extra}"#,
        ht = cfg.header_timeout,
        it = cfg.idle_timeout,
        mhb = cfg.max_header_bytes,
        extra = cfg.extra,
    )
}

async fn wait_ready(proc: &mut Proc, admin: SocketAddr) -> Result<(), String> {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!("gateway exited early with {status}"));
        }
        match plain_get(admin, "/readyz").await {
            Ok((200, _)) => return Ok(()),
            Ok((s, _)) if tokio::time::Instant::now() >= until => {
                return Err(format!("/readyz answered {s}"))
            }
            Err(e) if tokio::time::Instant::now() >= until => return Err(format!("/readyz: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// GET over plain HTTP/1.1 with `Connection: close`: (status, body).
pub async fn plain_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let raw = RawResponse::parse(&buf)
            .ok_or_else(|| format!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)))?;
        Ok((raw.status, raw.body))
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

// ---------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------

/// `portcullis echo` on a free port, killed on drop.
pub struct Upstream {
    proc: Proc,
    _dir: TestDir,
    pub addr: SocketAddr,
}

impl Upstream {
    pub async fn echo() -> Upstream {
        let dir = TestDir::new();
        for attempt in 1..=5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let a = addr.to_string();
            let mut proc = Proc::spawn(
                "echo upstream",
                &["echo", "--listen", &a],
                dir.join(&format!("echo-{attempt}.log")),
            );
            let res = eventually(DEADLINE, || {
                let exited = proc.exited();
                async move {
                    if let Some(s) = exited {
                        return Err(format!("echo exited with {s}"));
                    }
                    StdTcpStream::connect_timeout(&addr, Duration::from_millis(200))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            match res {
                Ok(()) if proc.exited().is_none() => {
                    return Upstream {
                        proc,
                        _dir: dir,
                        addr,
                    }
                }
                _ if attempt < 5 && addr_in_use(&proc.log()) => continue,
                other => panic!("portcullis echo did not start: {other:?}\n{}", proc.log()),
            }
        }
        unreachable!("the loop returns or panics")
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A request as an in-process upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as received on the wire.
    pub target: String,
    pub headers: HeaderMap,
}

/// What a `MockUpstream` does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// 200 with `{"path": ...}`.
    Record,
    /// Wait this long, then 200.
    Slow(Duration),
    /// 200 with a body of this many bytes of `pattern_byte`.
    Download(u64),
    /// Read the whole request body; 200 with `{"len": n, "fnv": hash}`.
    Digest,
}

/// An in-process HTTP/1.1 upstream on 127.0.0.1:0 that records every request it receives.
pub struct MockUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    pub async fn start(mode: Mode) -> MockUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock upstream");
        let addr = listener.local_addr().expect("local addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            async move { Ok::<_, Infallible>(mock_answer(mode, seen, req).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MockUpstream { addr, seen, task }
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
    pub fn seen_targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn mock_answer(
    mode: Mode,
    seen: Arc<Mutex<Vec<Seen>>>,
    req: Request<hyper::body::Incoming>,
) -> http::Response<BoxBody> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    seen.lock().expect("seen lock").push(Seen {
        method: req.method().to_string(),
        target: target.clone(),
        headers: req.headers().clone(),
    });
    let json_resp = |v: Value| {
        http::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())).boxed())
            .expect("valid response")
    };
    match mode {
        Mode::Record => json_resp(json!({ "path": target })),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            json_resp(json!({ "slow": true }))
        }
        Mode::Download(n) => http::Response::builder()
            .header("content-type", "application/octet-stream")
            .body(PatternBody::new(n).boxed())
            .expect("valid response"),
        Mode::Digest => {
            let mut body = req.into_body();
            let mut d = Digest::new();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(data) = f.data_ref() {
                            d.update(data);
                        }
                    }
                    Err(e) => return json_resp(json!({ "error": e.to_string() })),
                }
            }
            json_resp(json!({ "len": d.len, "fnv": d.hash.to_string() }))
        }
    }
}

/// Byte `i` of every generated big body. 251 is prime, so a dropped or repeated chunk shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Length plus 64-bit FNV-1a: enough to prove a body arrived intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    pub len: u64,
    pub hash: u64,
}

impl Digest {
    pub fn new() -> Digest {
        Digest {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        for b in data {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.len += data.len() as u64;
    }
    pub fn of_pattern(n: u64) -> Digest {
        let mut d = Digest::new();
        let mut i = 0;
        while i < n {
            let end = (i + 65536).min(n);
            let chunk: Vec<u8> = (i..end).map(pattern_byte).collect();
            d.update(&chunk);
            i = end;
        }
        d
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

/// A streamed body of `n` bytes of `pattern_byte`, in 64 KiB frames.
pub struct PatternBody {
    pos: u64,
    len: u64,
}

impl PatternBody {
    pub fn new(len: u64) -> PatternBody {
        PatternBody { pos: 0, len }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.pos >= self.len {
            return Poll::Ready(None);
        }
        let end = (self.pos + 65536).min(self.len);
        let chunk: Vec<u8> = (self.pos..end).map(pattern_byte).collect();
        self.pos = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
    fn is_end_stream(&self) -> bool {
        self.pos >= self.len
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.pos)
    }
}

// ---------------------------------------------------------------------------------------
// HTTPS client
// ---------------------------------------------------------------------------------------

/// An HTTPS client for one gateway: trusts its generated cert, server name "localhost".
/// Each request uses a fresh connection; paths are sent exactly as given.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
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
        }
    }
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request("GET", path)
    }
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request("POST", path)
    }

    /// Send raw bytes over HTTP/1.1-over-TLS, read until the server closes (or 10 s pass).
    pub async fn raw(&self, bytes: &[u8]) -> RawResponse {
        let fut = async {
            let mut tls = self.connect_tls(&[b"http/1.1"]).await.expect("TLS connect");
            tls.write_all(bytes).await.expect("write raw request");
            tls.flush().await.expect("flush");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf
        };
        let buf = tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("raw request: server neither answered nor closed within 10 s");
        RawResponse::parse(&buf).unwrap_or_else(|| {
            panic!(
                "no HTTP response to raw request: {:?}",
                String::from_utf8_lossy(&buf)
            )
        })
    }

    /// Send raw bytes; collect whatever comes back until the server closes or `wait` passes.
    pub async fn raw_collect(&self, bytes: &[u8], wait: Duration) -> String {
        let mut buf = Vec::new();
        let Ok(mut tls) = self.connect_tls(&[b"http/1.1"]).await else {
            return String::new();
        };
        if tls.write_all(bytes).await.is_err() || tls.flush().await.is_err() {
            return String::new();
        }
        let _ = tokio::time::timeout(wait, async {
            let mut chunk = [0u8; 16384];
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// `GET {path} HTTP/1.1` written byte for byte, plus `headers`, with `Connection: close`.
    pub async fn raw_get(&self, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\n",
            self.addr.port()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        self.raw(req.as_bytes()).await
    }
}

/// The first response in a raw byte stream (body left as text, chunked or not).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
    pub all: String,
}

impl RawResponse {
    pub fn parse(buf: &[u8]) -> Option<RawResponse> {
        let all = String::from_utf8_lossy(buf).into_owned();
        let first = all.lines().next()?;
        let mut parts = first.split_whitespace();
        let version = parts.next()?;
        if !version.starts_with("HTTP/") {
            return None;
        }
        let status = parts.next()?.parse().ok()?;
        let (head, body) = all.split_once("\r\n\r\n").unwrap_or((all.as_str(), ""));
        Some(RawResponse {
            status,
            head: head.to_string(),
            body: body.to_string(),
            all: all.clone(),
        })
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
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
    /// A streamed body of `n` bytes of `pattern_byte`.
    pub fn pattern_body(mut self, n: u64) -> Self {
        self.body = ReqBody::Pattern(n);
        self
    }

    fn build(self, version: Version) -> (Client, Request<BoxBody>) {
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
        (self.client, req)
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
        let (client, req) = self.build(Version::HTTP_11);
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
        tokio::time::timeout(DEADLINE, fut)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    pub async fn try_send_h2(self) -> Result<Response, String> {
        let (client, req) = self.build(Version::HTTP_2);
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
        tokio::time::timeout(DEADLINE, fut)
            .await
            .map_err(|_| "timed out".to_string())?
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

// ---------------------------------------------------------------------------------------
// Assertions shared by test groups
// ---------------------------------------------------------------------------------------

/// 401 with the RFC 6750 challenge and JSON body for `reason`, never echoing `token`.
pub fn assert_invalid_token(resp: &Response, reason: &str, token: &str) {
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some(
            format!(
                r#"Bearer realm="portcullis", error="invalid_token", error_description="{reason}""#
            )
            .as_str()
        ),
        "WWW-Authenticate"
    );
    let ctype = resp.header("content-type").unwrap_or_default();
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}"
    );
    let body = resp.json();
    assert_eq!(body["error"], "invalid_token", "body: {body}");
    assert_eq!(body["error_description"], reason, "body: {body}");
    assert_no_token_in(resp, token);
}

/// Neither the token nor any of its three parts appears in the response.
pub fn assert_no_token_in(resp: &Response, token: &str) {
    let text = resp.text();
    let mut headers = String::new();
    for (k, v) in &resp.headers {
        headers.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    for part in std::iter::once(token).chain(token.split('.')) {
        if part.len() >= 8 {
            assert!(
                !text.contains(part),
                "response body echoes (part of) the token: {text}"
            );
            assert!(
                !headers.contains(part),
                "response headers echo (part of) the token: {headers}"
            );
        }
    }
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}
