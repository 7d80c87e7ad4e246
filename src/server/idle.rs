//! Connection I/O that remembers when it last moved a byte, for the idle timeout, and what
//! the HTTP/1.1 connection on top of it is doing, for parking (see `server::park`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The process-wide origin of activity stamps.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn stamp_now() -> u64 {
    u64::try_from(origin().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The last read found nothing to read: the connection waits on its client.
const READ_WAITING: u8 = 1;
/// Written since the last completed flush: bytes may still sit in a buffer.
const UNFLUSHED: u8 = 2;
/// The last request had a body, or asked for an upgrade: hyper may still be reading it.
const BODY_OR_UPGRADE: u8 = 4;

/// When a connection last moved a byte, and how many of its requests are being served,
/// shared between the I/O, the service and the watchdog.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Stamps>);

#[derive(Debug)]
struct Stamps {
    last_byte: AtomicU64,
    in_flight: AtomicU32,
    /// Response bodies handed to hyper and not yet ended or dropped.
    bodies: AtomicU32,
    flags: AtomicU8,
}

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(Stamps {
            last_byte: AtomicU64::new(stamp_now()),
            in_flight: AtomicU32::new(0),
            bodies: AtomicU32::new(0),
            flags: AtomicU8::new(0),
        }))
    }

    /// How long the connection has been idle: zero while a request is being served, since
    /// waiting on a slow upstream or a queued password hash is not the client's idleness
    /// (the upstream and endpoint timeouts bound that wait instead).
    pub fn idle_for(&self) -> Duration {
        if self.0.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = self.0.last_byte.load(Ordering::Relaxed);
        Duration::from_millis(stamp_now().saturating_sub(last))
    }

    /// Marks one request as being served until the returned guard is dropped. `plain`: it
    /// has no body and asks for no upgrade, so hyper is done reading it once it has its head.
    pub fn serving(&self, plain: bool) -> Serving {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        self.set(BODY_OR_UPGRADE, !plain);
        Serving(self.clone())
    }

    /// Whether an HTTP/1.1 connection can be taken apart without losing or misreading a
    /// byte: no request or response body in progress, everything written flushed, and the
    /// connection waiting for its client's next request.
    pub fn parkable(&self) -> bool {
        let flags = self.0.flags.load(Ordering::Relaxed);
        self.0.in_flight.load(Ordering::Relaxed) == 0
            && self.0.bodies.load(Ordering::Relaxed) == 0
            && flags & (READ_WAITING | UNFLUSHED | BODY_OR_UPGRADE) == READ_WAITING
    }

    fn touch(&self) {
        self.0.last_byte.store(stamp_now(), Ordering::Relaxed);
    }

    fn set(&self, flag: u8, on: bool) {
        let flags = &self.0.flags;
        // Only this connection's task touches its flags: load and store cannot race.
        let old = flags.load(Ordering::Relaxed);
        let new = if on { old | flag } else { old & !flag };
        if new != old {
            flags.store(new, Ordering::Relaxed);
        }
    }
}

/// A request in progress on a connection; the idle clock restarts when it ends.
#[derive(Debug)]
pub struct Serving(Activity);

impl Serving {
    /// Wraps the response body, so that parking waits until hyper is done with it.
    pub fn watch<B>(&self, body: B) -> Watched<B> {
        self.0 .0.bodies.fetch_add(1, Ordering::Relaxed);
        Watched {
            body,
            activity: Some(self.0.clone()),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.touch();
        self.0 .0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A response body counted in its connection's `bodies` until it ends or is dropped.
    pub struct Watched<B> {
        #[pin]
        body: B,
        activity: Option<Activity>,
    }

    impl<B> PinnedDrop for Watched<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(activity) = this.project().activity.take() {
                activity.0.bodies.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl<B: Body> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = this.body.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            if let Some(activity) = this.activity.take() {
                activity.0.bodies.fetch_sub(1, Ordering::Relaxed);
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Wraps a stream, stamping `Activity` on every read or write that moves data.
#[derive(Debug)]
pub struct Tracked<I> {
    inner: I,
    activity: Activity,
    /// Bytes read ahead by a connection taken apart, served before the stream's own.
    rewound: Bytes,
}

impl<I> Tracked<I> {
    /// Wraps `inner`; the returned `Activity` reads its stamps.
    pub fn new(inner: I) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Tracked {
                inner,
                activity: activity.clone(),
                rewound: Bytes::new(),
            },
            activity,
        )
    }

    /// Puts back bytes already read from the stream: the next reads return them first.
    pub fn rewind(&mut self, read_ahead: Bytes) {
        debug_assert!(self.rewound.is_empty(), "rewound bytes not read yet");
        self.rewound = read_ahead;
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.rewound.is_empty() {
            let n = self.rewound.len().min(buf.remaining());
            buf.put_slice(&self.rewound[..n]);
            self.rewound.advance(n);
            self.activity.set(READ_WAITING, false);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match result {
            Poll::Pending => self.activity.set(READ_WAITING, true),
            Poll::Ready(_) => {
                self.activity.set(READ_WAITING, false);
                if buf.filled().len() > before {
                    self.activity.touch();
                }
            }
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.activity.set(UNFLUSHED, true);
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.activity.set(UNFLUSHED, true);
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.activity.set(UNFLUSHED, false);
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
