//! Connection I/O that remembers when it last moved a byte, for the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The process-wide origin of activity stamps.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn stamp_now() -> u64 {
    u64::try_from(origin().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// When a connection last moved a byte, and how many of its requests are being served,
/// shared between the I/O, the service and the watchdog.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Stamps>);

#[derive(Debug)]
struct Stamps {
    last_byte: AtomicU64,
    in_flight: AtomicU32,
}

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(Stamps {
            last_byte: AtomicU64::new(stamp_now()),
            in_flight: AtomicU32::new(0),
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

    /// Marks one request as being served until the returned guard is dropped.
    pub fn serving(&self) -> Serving {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        Serving(self.clone())
    }

    fn touch(&self) {
        self.0.last_byte.store(stamp_now(), Ordering::Relaxed);
    }
}

/// A request in progress on a connection; the idle clock restarts when it ends.
#[derive(Debug)]
pub struct Serving(Activity);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.touch();
        self.0 .0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wraps a stream, stamping `Activity` on every read or write that moves data.
#[derive(Debug)]
pub struct Tracked<I> {
    inner: I,
    activity: Activity,
}

impl<I> Tracked<I> {
    /// Wraps `inner`; the returned `Activity` reads its stamps.
    pub fn new(inner: I) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Tracked {
                inner,
                activity: activity.clone(),
            },
            activity,
        )
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
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
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
