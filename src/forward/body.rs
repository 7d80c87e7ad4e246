//! An upstream response body on its way to the client: it hands its connection back to the
//! pool once it has ended, can take its first frame before the head is sent, and gives up on
//! an upstream that stops sending it.
//!
//! The first frame is taken only if it has already arrived (it usually comes in the same read
//! as the head, and so does a malformed chunk right behind the head): a bad body is then
//! still a 502, and a head sent ahead of its body (SSE, long polls) is never held back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::pool::Lease;

/// Why a response body ended before its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The upstream connection failed, or the body was malformed.
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    /// No body bytes came from the upstream for this long.
    #[error("the upstream sent no body bytes for {0:?}")]
    Stalled(Duration),
}

/// A frame taken from the body before the response head was sent.
enum Taken {
    Nothing,
    Data(Bytes),
    Trailers(Box<HeaderMap>),
    End,
}

pin_project_lite::pin_project! {
    /// An upstream response body that returns its connection to the pool once it has ended.
    ///
    /// A body dropped before its end (the client went away) or cut for stalling closes the
    /// connection instead: the rest of that response is still on the wire.
    pub struct UpstreamBody<B> {
        #[pin]
        inner: Incoming,
        lease: Option<Lease<B>>,
        taken: Taken,
        read_timeout: Duration,
        // Armed the first time the upstream keeps the body waiting: a body that arrives with
        // its head, as most do, never touches the timer wheel.
        stall: Option<Pin<Box<Sleep>>>,
        // A frame came since the timer was last armed.
        moved: bool,
    }
}

impl<B> UpstreamBody<B> {
    /// Wraps a response body; `lease` is the connection to return when it ends, if reusable,
    /// and `read_timeout` how long the upstream may send nothing before the body is cut.
    pub fn new(inner: Incoming, lease: Option<Lease<B>>, read_timeout: Duration) -> Self {
        let mut body = UpstreamBody {
            inner,
            lease,
            taken: Taken::Nothing,
            read_timeout,
            stall: None,
            moved: false,
        };
        if body.inner.is_end_stream() {
            release(&mut body.lease);
        }
        body
    }

    /// Takes the first frame if it has already arrived, never waiting for it; the error of a
    /// body that is bad from its first byte.
    pub fn take_first(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<(), hyper::Error> {
        let mut this = self.project();
        if this.inner.is_end_stream() {
            return Ok(());
        }
        let Poll::Ready(frame) = this.inner.as_mut().poll_frame(cx) else {
            return Ok(());
        };
        settle(&frame, this.inner.is_end_stream(), this.lease);
        *this.taken = match frame {
            None => Taken::End,
            Some(Err(err)) => return Err(err),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => Taken::Data(data),
                Err(frame) => frame
                    .into_trailers()
                    .map_or(Taken::Nothing, |t| Taken::Trailers(Box::new(t))),
            },
        };
        Ok(())
    }
}

impl<B> Body for UpstreamBody<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        match std::mem::replace(this.taken, Taken::Nothing) {
            Taken::Nothing => {}
            Taken::Data(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
            Taken::Trailers(map) => return Poll::Ready(Some(Ok(Frame::trailers(*map)))),
            Taken::End => {
                *this.taken = Taken::End;
                return Poll::Ready(None);
            }
        }
        if let Poll::Ready(frame) = this.inner.as_mut().poll_frame(cx) {
            *this.moved = true;
            settle(&frame, this.inner.is_end_stream(), this.lease);
            return Poll::Ready(frame.map(|result| result.map_err(BodyError::from)));
        }
        let limit = *this.read_timeout;
        if !stalled(this.stall, this.moved, limit, cx) {
            return Poll::Pending;
        }
        if let Some((_, pool)) = this.lease.take() {
            pool.record_stall(limit);
        }
        Poll::Ready(Some(Err(BodyError::Stalled(limit))))
    }

    fn is_end_stream(&self) -> bool {
        match self.taken {
            Taken::Nothing => self.inner.is_end_stream(),
            Taken::End => true,
            Taken::Data(_) | Taken::Trailers(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.inner.size_hint();
        let taken = match &self.taken {
            Taken::Data(data) => data.len() as u64,
            Taken::End => return SizeHint::with_exact(0),
            Taken::Nothing | Taken::Trailers(_) => 0,
        };
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + taken);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + taken);
        }
        hint
    }
}

/// Whether `limit` has passed without a frame; the timer restarts after every frame.
fn stalled(
    stall: &mut Option<Pin<Box<Sleep>>>,
    moved: &mut bool,
    limit: Duration,
    cx: &mut Context<'_>,
) -> bool {
    let timer = match stall {
        Some(timer) => {
            if std::mem::take(moved) {
                timer.as_mut().reset(Instant::now() + limit);
            }
            timer
        }
        None => {
            *moved = false;
            stall.insert(Box::pin(tokio::time::sleep(limit)))
        }
    };
    timer.as_mut().poll(cx).is_ready()
}

/// After a frame: the connection goes back at the end, and is closed after an error.
fn settle<B>(
    frame: &Option<Result<Frame<Bytes>, hyper::Error>>,
    ended: bool,
    lease: &mut Option<Lease<B>>,
) {
    match frame {
        None => release(lease),
        Some(Ok(_)) if ended => release(lease),
        Some(Ok(_)) => {}
        Some(Err(_)) => drop(lease.take()),
    }
}

fn release<B>(lease: &mut Option<Lease<B>>) {
    if let Some((sender, pool)) = lease.take() {
        pool.checkin(sender);
    }
}
