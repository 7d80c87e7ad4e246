//! Upstreams: `portcullis echo` as a child process, and in-process hyper servers.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::{addr_in_use, eventually, free_port, BoxBody, Proc, TestDir, DEADLINE};

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
    /// Hold every request until `MockUpstream::release`, then 200.
    Held,
    /// 200 with a body of this many bytes of `pattern_byte`.
    Download(u64),
    /// Read the whole request body; 200 with `{"len": n, "fnv": hash}`.
    Digest,
    /// A request carrying `Upgrade`: 101 with the same `Upgrade`, then every tunnel byte is
    /// echoed back. Any other request: as `Record`.
    Upgrade,
}

/// An in-process HTTP/1.1 upstream on 127.0.0.1:0 that records every request it receives.
pub struct MockUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Turns true on `release`: what `Mode::Held` requests wait for.
    released: tokio::sync::watch::Sender<bool>,
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
        let (released, gate) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen2.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            let gate = gate.clone();
                            async move { Ok::<_, Infallible>(mock_answer(mode, seen, gate, req).await) }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        MockUpstream {
            addr,
            seen,
            released,
            task,
        }
    }
    /// Lets every `Mode::Held` request, waiting or to come, be answered.
    pub fn release(&self) {
        self.released.send_replace(true);
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

async fn mock_answer(
    mode: Mode,
    seen: Arc<Mutex<Vec<Seen>>>,
    mut gate: tokio::sync::watch::Receiver<bool>,
    mut req: Request<hyper::body::Incoming>,
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
        Mode::Upgrade if req.headers().contains_key(http::header::UPGRADE) => {
            upgrade_and_echo(&mut req)
        }
        Mode::Record | Mode::Upgrade => json_resp(json!({ "path": target })),
        Mode::Held => {
            let _ = gate.wait_for(|open| *open).await;
            json_resp(json!({ "path": target }))
        }
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

/// 101 Switching Protocols; once hyper hands over the connection, echo it back to itself.
fn upgrade_and_echo(req: &mut Request<hyper::body::Incoming>) -> http::Response<BoxBody> {
    let protocol = req.headers()[http::header::UPGRADE].clone();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut rd, &mut wr).await;
        }
    });
    http::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, protocol)
        .header(http::header::CONNECTION, "upgrade")
        .body(http_body_util::Empty::new().boxed())
        .expect("valid response")
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
