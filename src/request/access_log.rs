//! What one request did, gathered along the pipeline and written once as the access log.

use std::time::Duration;

use http::{HeaderValue, Method, StatusCode};

use crate::config::snapshot::Route;
use crate::request::client::ConnInfo;

/// Facts about a request the pipeline learns as it goes; logged when the answer is sent.
#[derive(Debug, Default)]
pub struct Trace<'s> {
    /// The route that matched.
    pub route: Option<&'s Route>,
    /// The verified subject.
    pub sub: Option<String>,
    /// The request id sent upstream.
    pub request_id: Option<HeaderValue>,
    /// Time to the upstream's response head.
    pub upstream: Option<Duration>,
    /// The normalized path, kept only when the access log is on.
    pub path: Option<String>,
    /// Whether the access log is on (so the path is worth copying).
    pub logging: bool,
}

impl Trace<'_> {
    /// A fresh trace; checks once whether access lines will be written.
    pub fn new() -> Self {
        Trace {
            logging: tracing::enabled!(target: "access", tracing::Level::INFO),
            ..Trace::default()
        }
    }

    /// Writes the access line: never the token, never a header value but the request id.
    pub fn log(&self, conn: &ConnInfo, method: &Method, status: StatusCode, took: Duration) {
        if !self.logging {
            return;
        }
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            target: "access",
            client = %conn.client,
            method = %method,
            path = self.path.as_deref().unwrap_or("-"),
            route = self.route.map_or("-", |r| r.pattern.as_str()),
            status = status.as_u16(),
            duration_ms = millis(took),
            upstream_ms = self.upstream.map(millis),
            sub = self.sub.as_deref().unwrap_or("-"),
            request_id,
        );
    }
}

/// Milliseconds to the microsecond: "14.422", never a float's tail ("14.422402000000002").
fn millis(took: Duration) -> f64 {
    // Whole microseconds over 1000.0 is the double nearest to a 3-decimal number, which
    // prints as exactly those decimals.
    took.as_micros() as f64 / 1000.0
}
