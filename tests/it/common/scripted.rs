//! `ScriptedUpstream`: a raw TCP upstream that does, byte for byte, what a test scripts for
//! each connection: the faults a well-behaved HTTP server never commits (bad framing, a body
//! that stalls, a hang-up right after an answer).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A raw upstream on 127.0.0.1:0; every accepted connection runs the script. Stopped on drop.
pub struct ScriptedUpstream {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

/// One accepted connection, as a script sees it.
pub struct Conn {
    pub stream: TcpStream,
    /// 0 for the first connection accepted, 1 for the next, ...
    pub index: usize,
    buf: Vec<u8>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Conn {
    /// Reads the next request, recording its request line ("GET /x") once the head is in,
    /// then its `Content-Length` body. None when the peer closed first.
    pub async fn next_request(&mut self) -> Option<String> {
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut words = head.split(' ');
        let line = format!(
            "{} {}",
            words.next().unwrap_or("?"),
            words.next().unwrap_or("?")
        );
        self.requests
            .lock()
            .expect("requests lock")
            .push(line.clone());
        let body_len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while self.buf.len() < body_len {
            self.fill().await?;
        }
        self.buf.drain(..body_len);
        Some(line)
    }

    /// Reads more bytes into the buffer; None when the peer closed.
    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }
}

impl ScriptedUpstream {
    pub async fn start<F, Fut>(script: F) -> ScriptedUpstream
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut index = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let conn = Conn {
                    stream,
                    index,
                    buf: Vec::new(),
                    requests: Arc::clone(&seen),
                };
                index += 1;
                tokio::spawn(script(conn));
            }
        });
        ScriptedUpstream {
            url,
            requests,
            task,
        }
    }

    /// Request lines received ("GET /x"), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// How many times this request line was received.
    pub fn count(&self, line: &str) -> usize {
        self.requests().iter().filter(|seen| *seen == line).count()
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
