//! One client connection as hyper serves it: what every connection task shares, the protocol
//! (the one TLS negotiated by ALPN, else sniffed from the first bytes), and the graceful
//! close.

use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{watch, Semaphore};

use crate::config::snapshot::ListenSettings;
use crate::control::app::App;
use crate::limits::PARSER_HEADROOM;
use crate::server::idle::Watched;

/// The body of every response a connection sends, counted while hyper holds it.
pub type Body = Watched<crate::Body>;

/// What every connection task needs, shared across the accept loops.
pub(super) struct Server {
    pub(super) app: Arc<App>,
    pub(super) settings: ListenSettings,
    pub(super) http: Builders,
    /// One permit per open connection; holding all of them means every connection closed.
    pub(super) slots: Arc<Semaphore>,
    /// Turns true once shutdown starts.
    pub(super) stopping: watch::Receiver<bool>,
}

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
///
/// hyper's head limits are only the outer bound on what a connection buffers: set above the
/// configured ones, so that `limits::check_head` sees, measures exactly and answers (with
/// the JSON body) every head up to twice the configured size or field count.
macro_rules! http1_settings {
    ($builder:expr, $settings:expr) => {
        $builder
            .timer(TokioTimer::new())
            .header_read_timeout($settings.header_timeout)
            .max_buf_size($settings.max_header_bytes * PARSER_HEADROOM)
            .max_headers($settings.max_header_fields * PARSER_HEADROOM)
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

/// A connection hyper serves that can be asked to finish what is in flight and close.
pub trait Graceful {
    /// Takes no new request; ends once the ones in flight are answered.
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http1::UpgradeableConnection<I, S>
where
    S: HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Graceful for http2::Connection<I, S, TokioExecutor>
where
    S: HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin,
    TokioExecutor: Http2ServerConnExec<S::Future, Body>,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Graceful for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    S: HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin,
    TokioExecutor: auto::HttpServerConnExec<S::Future, Body>,
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
