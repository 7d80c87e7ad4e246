//! Keep-alive connections to one upstream: a stack of idle HTTP/1.1 connections, which the
//! response body (`body.rs`) hands back when the response ends.
//!
//! hyper-util's pooled client spawned a task per request to wait for the connection to be
//! ready again, and hashed a pool key per checkout; here the pool is a short Vec behind an
//! uncontended lock and the body returns the connection itself, so a proxied request costs no
//! extra task. Each worker thread has its own shard: a connection's task runs on the thread
//! that opened it, and only requests on that thread use it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per upstream at most; beyond it a finished connection is closed.
const MAX_IDLE: usize = 1024;

/// The idle connections of one upstream, most recently used last; `B` is the request body.
pub struct Pool<B> {
    /// One stack per worker thread.
    shards: Box<[Mutex<Vec<Idle<B>>>]>,
    idle_timeout: Duration,
    /// The upstream's name, for logs.
    name: Box<str>,
    /// Responses cut because their body stalled (the read timeout).
    stalls: AtomicU64,
}

/// A connection lent to one exchange, and the pool it goes back to.
pub type Lease<B> = (SendRequest<B>, Arc<Pool<B>>);

thread_local! {
    /// This thread's shard in every pool; worker threads each get their own.
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread use shard `index` (modulo the shard count) of every pool.
pub fn use_shard(index: usize) {
    SHARD.with(|shard| shard.set(index));
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

impl<B> std::fmt::Debug for Pool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl<B> Pool<B> {
    /// An empty pool for upstream `name` whose connections are closed after `idle_timeout`
    /// unused.
    pub fn new(name: &str, idle_timeout: Duration) -> Pool<B> {
        let shards = crate::runtime::worker_count();
        Pool {
            shards: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            idle_timeout,
            name: name.into(),
            stalls: AtomicU64::new(0),
        }
    }

    /// The most recently used connection that is open, fresh and ready for a request.
    ///
    /// A connection whose last response body has just ended may not have told its sender it is
    /// ready yet; it stays in the pool for a later request rather than being closed.
    pub fn checkout(&self) -> Option<SendRequest<B>> {
        let now = Instant::now();
        let mut idle = self.lock();
        let mut busy = 0;
        while idle.len() > busy {
            let index = idle.len() - 1 - busy;
            let entry = &idle[index];
            if entry.sender.is_closed() || now.duration_since(entry.since) > self.idle_timeout {
                idle.remove(index);
            } else if entry.sender.is_ready() {
                return Some(idle.remove(index).sender);
            } else {
                busy += 1;
            }
        }
        None
    }

    /// Puts a connection whose response has ended back, dropping expired ones on the way.
    pub fn checkin(&self, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        let expired = idle
            .iter()
            .take_while(|entry| now.duration_since(entry.since) > self.idle_timeout)
            .count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { sender, since: now });
        }
    }

    /// Logs and counts a response cut because its body sent nothing for `read_timeout`; its
    /// connection is closed, not returned.
    pub fn record_stall(&self, read_timeout: Duration) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(upstream = %self.name, ?read_timeout,
            "upstream response body stalled: the response to the client is cut");
    }

    /// Adds stalls counted elsewhere (by the pool this one replaced on reload).
    pub fn add_stalls(&self, count: u64) {
        self.stalls.fetch_add(count, Ordering::Relaxed);
    }

    /// Responses cut because their body stalled, since the pool was built.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// How many connections are idle in this thread's shard.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<B>>> {
        let shard = &self.shards[SHARD.with(Cell::get) % self.shards.len()];
        // Nothing panics while holding the lock; a poisoned Vec of senders is still sound.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Incoming;

    use crate::forward::body::UpstreamBody;
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::{TcpListener, TcpStream};

    type Sender = SendRequest<Empty<Bytes>>;

    /// A real loopback HTTP/1.1 keep-alive server answering "hello"; counts connections.
    async fn server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let answer = service_fn(|_req: http::Request<Incoming>| async {
                        let body = http_body_util::Full::new(Bytes::from_static(b"hello"));
                        Ok::<_, std::convert::Infallible>(http::Response::new(body))
                    });
                    let _ = server::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    async fn connect(addr: std::net::SocketAddr) -> Sender {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        sender
    }

    /// Sends GET / on `sender` and wraps the response body with the lease.
    async fn exchange(
        mut sender: Sender,
        pool: &Arc<Pool<Empty<Bytes>>>,
    ) -> UpstreamBody<Empty<Bytes>> {
        let request = http::Request::builder()
            .uri("/")
            .header("host", "x")
            .body(Empty::new())
            .expect("request");
        sender.ready().await.expect("ready");
        let response = sender.send_request(request).await.expect("response");
        let lease = Some((sender, Arc::clone(pool)));
        UpstreamBody::new(response.into_body(), lease, Duration::from_secs(60))
    }

    #[test]
    fn an_empty_pool_has_nothing_to_check_out() {
        let pool: Pool<Empty<Bytes>> = Pool::new("api", Duration::from_secs(90));
        assert!(pool.checkout().is_none());
    }

    #[tokio::test]
    async fn a_connection_goes_back_when_its_body_ends_and_carries_the_next_request() {
        let (addr, accepted) = server().await;
        let pool = Arc::new(Pool::new("api", Duration::from_secs(90)));
        let body = exchange(connect(addr).await, &pool).await;
        assert_eq!(pool.idle_count(), 0, "lent while the body is unread");
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(pool.idle_count(), 1, "returned at the end of the body");
        let mut sender = None;
        for _ in 0..100 {
            sender = pool.checkout();
            if sender.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let sender = sender.expect("the returned connection becomes ready");
        let again = exchange(sender, &pool).await.collect().await.expect("body");
        assert_eq!(&again.to_bytes()[..], b"hello");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for both requests"
        );
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (addr, _) = server().await;
        let pool = Arc::new(Pool::new("api", Duration::from_secs(90)));
        drop(exchange(connect(addr).await, &pool).await);
        assert_eq!(pool.idle_count(), 0);
        assert!(pool.checkout().is_none());
    }

    #[tokio::test]
    async fn an_expired_connection_is_never_checked_out() {
        let (addr, _) = server().await;
        let pool = Pool::new("api", Duration::from_millis(50));
        pool.checkin(connect(addr).await);
        assert_eq!(pool.idle_count(), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(pool.checkout().is_none(), "expired");
        assert_eq!(pool.idle_count(), 0, "and dropped");
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_never_checked_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pool = Pool::new("api", Duration::from_secs(90));
        let sender = connect(addr).await;
        let (stream, _) = listener.accept().await.expect("accept");
        pool.checkin(sender);
        drop(stream);
        for _ in 0..200 {
            // Until the connection task has seen the close, the sender still looks usable.
            if let Some(open) = pool.checkout() {
                pool.checkin(open);
            }
            if pool.idle_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let closed = pool.idle_count() == 0;
        assert!(closed, "the closed connection left the pool");
    }
}
