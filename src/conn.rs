//! One client connection as hyper serves it: the protocol (the one TLS negotiated by ALPN,
//! else sniffed from the first bytes), the per-request service, and the graceful close.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::app::App;
use crate::idle::Activity;
use crate::pipeline::{self, ConnInfo};
use crate::snapshot::ListenSettings;
use crate::Body;

/// The HTTP version a connection is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ALPN chose http/1.1.
    Http1,
    /// ALPN chose h2.
    Http2,
    /// No ALPN (plain listener, or a TLS client that offered none): h2 if the first bytes are
    /// its preface (prior knowledge), HTTP/1.1 otherwise.
    Sniff,
}

impl Protocol {
    /// The protocol for what ALPN negotiated, if anything.
    pub fn from_alpn(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            Some(b"http/1.1") => Protocol::Http1,
            _ => Protocol::Sniff,
        }
    }
}

/// hyper's connection builders, all with the same listener settings.
pub struct Builders {
    /// HTTP/1.1 when ALPN chose it: no sniffing, whose replayed prefix would make hyper double
    /// its 8 KiB read buffer on every connection.
    pub http1: http1::Builder,
    /// h2 when ALPN chose it.
    pub http2: http2::Builder<TokioExecutor>,
    /// Either, sniffed.
    pub sniff: auto::Builder<TokioExecutor>,
}

/// One list of HTTP/1.1 settings for both builder types, so they cannot drift apart.
macro_rules! http1_settings {
    ($builder:expr, $settings:expr) => {
        $builder
            .timer(TokioTimer::new())
            .header_read_timeout($settings.header_timeout)
            .max_buf_size($settings.max_header_bytes)
            .keep_alive(true)
    };
}

/// The same for h2.
macro_rules! http2_settings {
    ($builder:expr, $settings:expr) => {
        $builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from($settings.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(256)
    };
}

impl Builders {
    /// Builders configured from the listener settings.
    pub fn new(settings: &ListenSettings) -> Builders {
        let mut http1 = http1::Builder::new();
        http1_settings!(http1, settings);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2_settings!(http2, settings);
        let mut sniff = auto::Builder::new(TokioExecutor::new());
        http1_settings!(sniff.http1(), settings);
        http2_settings!(sniff.http2(), settings);
        Builders {
            http1,
            http2,
            sniff,
        }
    }
}

/// A request's answer in the making, boxed (see [`Handler`]).
pub type Responding = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// The service of one connection: every request goes through the pipeline.
///
/// Its future is boxed: hyper allocates the slot for a request's future when the connection
/// opens and keeps it while the connection idles; unboxed, that slot would be the whole
/// 4.5 KiB request future on every idle connection.
#[derive(Clone)]
pub struct Handler {
    /// The runtime.
    pub app: Arc<App>,
    /// Where the connection comes from.
    pub info: ConnInfo,
    /// The connection's idle clock: paused while a request is served.
    pub activity: Activity,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Responding;

    fn call(&self, request: Request<Incoming>) -> Responding {
        let app = self.app.clone();
        let info = self.info;
        let serving = self.activity.serving();
        Box::pin(async move {
            let response = pipeline::handle(&app, &info, request).await;
            drop(serving);
            Ok(response)
        })
    }
}

/// A connection hyper serves that can be asked to finish what is in flight and close.
pub trait Graceful {
    /// Takes no new request; ends once the ones in flight are answered.
    fn shutdown(self: Pin<&mut Self>);
}

impl<I: Read + Write + Unpin + Send + 'static> Graceful
    for http1::UpgradeableConnection<I, Handler>
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I: Read + Write + Unpin + Send + 'static> Graceful
    for http2::Connection<I, Handler, TokioExecutor>
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I: Read + Write + Unpin + Send + 'static> Graceful
    for auto::UpgradeableConnection<'_, I, Handler, TokioExecutor>
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<C: Graceful + ?Sized> Graceful for Pin<Box<C>> {
    fn shutdown(self: Pin<&mut Self>) {
        self.get_mut().as_mut().shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol;

    #[test]
    fn alpn_picks_the_protocol_and_anything_else_is_sniffed() {
        assert_eq!(Protocol::from_alpn(Some(b"h2")), Protocol::Http2);
        assert_eq!(Protocol::from_alpn(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::from_alpn(None), Protocol::Sniff);
        // The server offers only these two; anything else cannot be negotiated, but if it
        // were, sniffing is what the connection got before ALPN was looked at.
        assert_eq!(Protocol::from_alpn(Some(b"http/1.0")), Protocol::Sniff);
    }
}
