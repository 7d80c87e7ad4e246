//! The watch over a served connection (idle timeout, graceful drain) and parking: an
//! HTTP/1.1 keep-alive connection that idles is taken apart, and only its socket (with the
//! TLS session) is kept until the client sends again; hyper then serves it anew.
//!
//! hyper holds about 20 KiB per connection while it waits for the next request (8 KiB read
//! and write buffers, the cached header map, the slot for the request future) and has no
//! setting to release them; most of an idle connection's memory goes away with it.
//!
//! A connection is taken apart only where nothing can be lost or misread (see
//! `Activity::parkable`): the last request had no body and asked for no upgrade, its
//! response has been written out and flushed, and hyper waits for the next request. Bytes
//! hyper had read ahead of it (part of the next request) go back in front of the stream.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1::Parts;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::control::metrics::Metrics;
use crate::server::conn::{Body, Graceful, Server};
use crate::server::idle::{Activity, Tracked};

/// How long an HTTP/1.1 connection idles before it is parked: a client that sends requests
/// back to back never pays for taking the connection apart and building it again.
pub(super) const PARK_AFTER: Duration = Duration::from_secs(1);

/// How often the heap is looked at for memory that parking freed.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Parks (each about 20 KiB freed) that make a trim worth its cost: about 5 MiB.
const TRIM_AFTER_PARKS: u64 = 256;

/// Connections parked since the heap was last trimmed, process-wide.
static PARKS: AtomicU64 = AtomicU64::new(0);

/// Serves HTTP/1.1 on `io`, parked whenever it idles, until the connection ends.
pub(super) async fn serve_h1<I, S>(
    server: &Server,
    mut io: Tracked<I>,
    mut service: S,
    activity: &Activity,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Readiness + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = Body> + Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let connection = server
            .http
            .http1
            .serve_connection(TokioIo::new(io), service);
        // Boxed: while parked, the task holds none of it.
        let connection = Box::pin(connection.with_upgrades());
        // Both waits boxed: the task keeps the size of its largest state for good.
        let Some(idle) = Box::pin(drive(server, connection, activity, peer, true)).await else {
            return;
        };
        // None only for an upgraded connection, which never idles here.
        let Some(Parts {
            io: parted,
            read_buf,
            service: kept,
            ..
        }) = Pin::into_inner(idle).into_parts()
        else {
            return;
        };
        io = parted.into_inner();
        // Copied, and the original dropped here: the bytes hyper read ahead are a view into
        // its 8 KiB read buffer, which they would keep for as long as the connection parks.
        io.rewind(Bytes::copy_from_slice(&read_buf));
        drop(read_buf);
        service = kept;
        PARKS.fetch_add(1, Ordering::Relaxed);
        if !Box::pin(parked(server, &io, activity)).await {
            // As hyper closes an idle connection: TLS close_notify, then FIN.
            let _ = tokio::time::timeout(server.settings.header_timeout, io.shutdown()).await;
            return;
        }
    }
}

/// Gives the memory parked connections freed back to the system, every `TRIM_EVERY` after
/// at least `TRIM_AFTER_PARKS` parks.
///
/// glibc's malloc keeps freed memory for reuse, and hyper's buffers freed by parking lie
/// between the small blocks of the connections that stay (their tasks and sockets): without
/// a trim, the heap stays at its high-water mark, about as large as when every one of those
/// connections was active. `malloc_trim` hands back each whole free page: a walk over the
/// free blocks off the workers, 5-35 ms with 8,000 connections parked, during which a
/// worker that allocates from the arena being walked waits; hence at most one per
/// `TRIM_EVERY`, and only after enough parks to be worth it.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if PARKS.load(Ordering::Relaxed) >= TRIM_AFTER_PARKS {
                PARKS.store(0, Ordering::Relaxed);
                let _ = tokio::task::spawn_blocking(trim_heap).await;
            }
        }
    });
}

/// Returns free heap pages to the system (glibc only; elsewhere nothing to do).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim takes each arena's lock itself and may run at any time.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(took = ?started.elapsed(), released, "heap trimmed after parking");
    }
}

/// Holds the connection until its client sends again (true), or until its idle or header
/// timeout passes or the server stops (false).
///
/// Bytes put back in front of the stream are never a whole request (hyper was waiting for
/// more when the connection parked): they wait for the rest as well.
async fn parked<I: Readiness>(server: &Server, io: &Tracked<I>, activity: &Activity) -> bool {
    let _parked = Parked::count(&server.app.metrics);
    // hyper's header timeout runs from the end of the last response, as the idle one does.
    let limit = server
        .settings
        .idle_timeout
        .min(server.settings.header_timeout);
    let Some(left) = limit.checked_sub(activity.idle_for()) else {
        return false;
    };
    let mut stopping = server.stopping.clone();
    tokio::select! {
        readable = io.get_ref().wait_readable() => readable,
        () = tokio::time::sleep(left) => false,
        _ = stopping.wait_for(|stop| *stop) => false,
    }
}

/// A stream that can say when its client has sent something, without reading it.
pub(super) trait Readiness {
    /// Resolves when there is something to read (or the stream has ended): true, or false
    /// if the stream failed.
    fn wait_readable(&self) -> impl Future<Output = bool> + Send + '_;
}

impl Readiness for TcpStream {
    async fn wait_readable(&self) -> bool {
        self.readable().await.is_ok()
    }
}

impl Readiness for TlsStream<TcpStream> {
    async fn wait_readable(&self) -> bool {
        let (tcp, session) = self.get_ref();
        // Decrypted bytes already wait (they came with the last record), or the session has
        // ended: nothing to wait for.
        !session.wants_read() || tcp.readable().await.is_ok()
    }
}

impl<T: Readiness + Sync> Readiness for Box<T> {
    fn wait_readable(&self) -> impl Future<Output = bool> + Send + '_ {
        (**self).wait_readable()
    }
}

/// One connection counted in `parked_connections` for as long as this lives.
struct Parked<'a>(&'a Metrics);

impl<'a> Parked<'a> {
    fn count(metrics: &'a Metrics) -> Self {
        metrics.parked_connections.fetch_add(1, Ordering::Relaxed);
        Parked(metrics)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.parked_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives a connection until it ends, closing it gracefully once it idles past
/// idle_timeout or the server stops. With `park`, an HTTP/1.1 connection idle for
/// `PARK_AFTER` that can be taken apart is handed back instead (see `server::park`).
pub(super) async fn drive<C, E>(
    server: &Server,
    mut connection: C,
    activity: &Activity,
    peer: SocketAddr,
    park: bool,
) -> Option<C>
where
    C: Future<Output = Result<(), E>> + Graceful + Unpin,
    E: std::fmt::Display,
{
    let idle_timeout = server.settings.idle_timeout;
    let first_look = if park { PARK_AFTER } else { idle_timeout };
    let mut wait = first_look.min(idle_timeout);
    let mut closing = false;
    let mut stopping = server.stopping.clone();
    loop {
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                // Finish what is in flight, take no new request on this connection.
                std::pin::Pin::new(&mut connection).shutdown();
                closing = true;
                wait = server.settings.shutdown_grace;
            }
            result = &mut connection => {
                if let Err(err) = result {
                    tracing::debug!(client = %peer, error = %err, "connection ended with an error");
                }
                return None;
            }
            () = tokio::time::sleep(wait) => {
                // A peer that ignores the graceful close gets one header_timeout, then is dropped.
                if closing {
                    return None;
                }
                let idle = activity.idle_for();
                if idle >= idle_timeout {
                    std::pin::Pin::new(&mut connection).shutdown();
                    closing = true;
                    wait = server.settings.header_timeout;
                } else if park && idle >= PARK_AFTER && activity.parkable() {
                    return Some(connection);
                } else if park && idle < PARK_AFTER {
                    wait = PARK_AFTER - idle;
                } else {
                    wait = idle_timeout - idle;
                }
            }
        }
    }
}
