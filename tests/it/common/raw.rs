//! Raw HTTP/1.1 bytes: requests hyper would refuse to build, and responses read by hand.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Client, DEADLINE};

impl Client {
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

/// GET over plain HTTP/1.1 with `Connection: close`: (status, body).
pub async fn plain_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    plain_get_raw(addr, path)
        .await
        .map(|raw| (raw.status, raw.body))
}

/// GET over plain HTTP/1.1 with `Connection: close`: the whole answer, head included.
pub async fn plain_get_raw(addr: SocketAddr, path: &str) -> Result<RawResponse, String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        RawResponse::parse(&buf)
            .ok_or_else(|| format!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)))
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Read one response head (through the blank line) from `stream`, within `DEADLINE`.
///
/// Returns the head as text and whatever arrived after it (for an upgrade, tunnel bytes).
pub async fn read_head<S>(stream: &mut S) -> Result<(String, Vec<u8>), String>
where
    S: AsyncRead + Unpin,
{
    let fut = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = buf.split_off(end + 4);
                return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
            }
            match stream.read(&mut chunk).await {
                Ok(0) => {
                    return Err(format!(
                        "closed before a full response head: {:?}",
                        String::from_utf8_lossy(&buf)
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .map_err(|_| format!("no response head within {DEADLINE:?}"))?
}

/// Read one response with a `Content-Length` body from a connection that stays open.
pub async fn read_sized_response<S>(stream: &mut S) -> Result<RawResponse, String>
where
    S: AsyncRead + Unpin,
{
    let (head, mut body) = read_head(stream).await?;
    let parsed = RawResponse::parse(head.as_bytes())
        .ok_or_else(|| format!("not an HTTP response head: {head:?}"))?;
    let len: usize = match parsed.header("content-length") {
        Some(v) => v.parse().map_err(|_| format!("bad content-length {v:?}"))?,
        None => 0,
    };
    let fut = async {
        let mut chunk = [0u8; 4096];
        while body.len() < len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .map_err(|_| format!("body of {len} bytes not read within {DEADLINE:?}"))?;
    let mut all = head.into_bytes();
    all.extend_from_slice(&body);
    RawResponse::parse(&all).ok_or_else(|| "unparsable response".to_string())
}

/// One request on a kept-alive raw connection; the answer must carry a Content-Length.
pub async fn keep_alive_get<S>(stream: &mut S, path: &str) -> RawResponse
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .expect("write request");
    stream.flush().await.expect("flush");
    read_sized_response(stream)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}
