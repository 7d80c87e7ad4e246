//! What one request did, gathered along the pipeline and written once as the access log.
//!
//! With the default text format the line is formatted here, byte for byte as the tracing
//! subscriber would, and handed straight to the log's writer thread: the subscriber's
//! generic formatting costs several microseconds a line, a fifth of a proxied request. JSON
//! and coloured (terminal) output go through the subscriber.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};

use crate::config::snapshot::Route;
use crate::control::log;
use crate::request::client::ConnInfo;
use crate::token::Claims;

/// Facts about a request the pipeline learns as it goes; logged when the answer is sent.
#[derive(Debug, Default)]
pub struct Trace<'s> {
    /// The route that matched.
    pub route: Option<&'s Route>,
    /// The verified claims (the log writes their subject).
    pub claims: Option<Arc<Claims>>,
    /// The request id sent upstream.
    pub request_id: Option<HeaderValue>,
    /// Time to the upstream's response head.
    pub upstream: Option<Duration>,
    /// The normalized path, kept only when the access log is on.
    pub path: Option<Bytes>,
    /// Whether the access log is on (so the path is worth copying).
    pub logging: bool,
}

/// The fields of one access line, in the order they are written.
struct Fields<'a> {
    client: IpAddr,
    method: &'a str,
    path: &'a str,
    route: &'a str,
    status: u16,
    took: Duration,
    upstream: Option<Duration>,
    sub: &'a str,
    request_id: &'a str,
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
        let fields = Fields {
            client: conn.client,
            method: method.as_str(),
            path: self
                .path
                .as_deref()
                .and_then(|path| std::str::from_utf8(path).ok())
                .unwrap_or("-"),
            route: self.route.map_or("-", |r| r.pattern.as_str()),
            status: status.as_u16(),
            took,
            upstream: self.upstream,
            sub: self
                .claims
                .as_deref()
                .map_or("-", |claims| claims.sub.as_str()),
            request_id: self
                .request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
        };
        match log::text_writer() {
            Some(writer) => fields.write_direct(writer),
            None => fields.trace(),
        }
    }
}

impl Fields<'_> {
    /// Through the tracing subscriber: its format, whatever it is configured to.
    fn trace(&self) {
        tracing::info!(
            target: "access",
            client = %self.client,
            method = %self.method,
            path = self.path,
            route = self.route,
            status = self.status,
            duration_ms = millis(self.took),
            upstream_ms = self.upstream.map(millis),
            sub = self.sub,
            request_id = self.request_id,
        );
    }

    /// Formatted here and queued for the writer thread, in one buffer kept per thread.
    fn write_direct(&self, writer: &log::LogWriter) {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return self.trace();
            };
            line.clear();
            self.format_text(&mut line, SystemTime::now());
            writer.write_line(&line);
            // A line with a huge path must not keep its buffer for the thread's lifetime.
            line.shrink_to(1024);
        });
    }

    /// The line as the subscriber's default text format writes it (no ANSI colours):
    /// `<RFC 3339 UTC, microseconds>  INFO access: name=value ...`, strings `{:?}`-quoted.
    fn format_text(&self, out: &mut Vec<u8>, now: SystemTime) {
        timestamp(out, now);
        out.extend_from_slice(b"  INFO access: client=");
        match self.client {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
        out.extend_from_slice(b" method=");
        out.extend_from_slice(self.method.as_bytes());
        quoted(out, b" path=", self.path);
        quoted(out, b" route=", self.route);
        out.extend_from_slice(b" status=");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b" duration_ms=");
        write_millis(out, self.took);
        if let Some(upstream) = self.upstream {
            out.extend_from_slice(b" upstream_ms=");
            write_millis(out, upstream);
        }
        quoted(out, b" sub=", self.sub);
        quoted(out, b" request_id=", self.request_id);
        out.push(b'\n');
    }
}

/// Milliseconds to the microsecond: "14.422", never a float's tail ("14.422402000000002").
fn millis(took: Duration) -> f64 {
    // Whole microseconds over 1000.0 is the double nearest to a 3-decimal number, which
    // prints as exactly those decimals.
    took.as_micros() as f64 / 1000.0
}

/// What `{:?}` of `millis(took)` prints ("14.422", "3.5", "2.0"), without the float.
fn write_millis(out: &mut Vec<u8>, took: Duration) {
    let micros = took.as_micros();
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    out.push(b'.');
    let fraction = micros % 1000;
    if fraction == 0 {
        out.push(b'0');
        return;
    }
    let digits = [fraction / 100, fraction / 10 % 10, fraction % 10];
    let len = digits
        .iter()
        .rposition(|d| *d != 0)
        .map_or(1, |last| last + 1);
    out.extend(digits[..len].iter().map(|d| b'0' + *d as u8));
}

/// ` name="value"` as `{:?}` quotes a string; printable ASCII needs no escaping.
fn quoted(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.extend_from_slice(name);
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{value:?}");
    }
}

/// `2026-12-02T11:50:05.123456Z`, as the subscriber's `SystemTime` timer writes it.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    out.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
    for (sep, value) in [
        (b'-', month),
        (b'-', day),
        (b'T', of_day / 3600),
        (b':', of_day / 60 % 60),
        (b':', of_day % 60),
    ] {
        out.extend_from_slice(&[sep, b'0' + (value / 10) as u8, b'0' + (value % 10) as u8]);
    }
    out.push(b'.');
    let micros = since.subsec_micros();
    out.extend(
        (0..6)
            .rev()
            .map(|place| b'0' + (micros / 10u32.pow(place) % 10) as u8),
    );
    out.push(b'Z');
}

/// (year, month, day) of a day count since 1970-01-01: Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the subscriber writes, as the gateway configures it for a file (no colours).
    fn through_subscriber(fields: &Fields<'_>) -> String {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Captured {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || fields.trace());
        let line = captured.0.lock().unwrap().clone();
        String::from_utf8(line).unwrap()
    }

    fn direct(fields: &Fields<'_>) -> String {
        let mut out = Vec::new();
        fields.format_text(&mut out, SystemTime::now());
        String::from_utf8(out).unwrap()
    }

    /// The line from its first space on: the part after the timestamp.
    fn after_timestamp(line: &str) -> &str {
        &line[line.find(' ').unwrap()..]
    }

    fn fields<'a>(path: &'a str, sub: &'a str, took: Duration) -> Fields<'a> {
        Fields {
            client: [10, 0, 0, 17].into(),
            method: "GET",
            path,
            route: "/api/**",
            status: 200,
            took,
            upstream: Some(took / 2),
            sub,
            request_id: "0123456789abcdef",
        }
    }

    #[test]
    fn the_direct_line_is_the_subscribers_line_byte_for_byte() {
        let micros = [
            0,
            1,
            10,
            100,
            999,
            1000,
            1001,
            1500,
            14_422,
            2_000_000,
            123_456_789,
        ];
        for micros in micros {
            let f = fields("/api/orders/42", "alice", Duration::from_micros(micros));
            let (via, direct) = (through_subscriber(&f), direct(&f));
            assert_eq!(
                after_timestamp(&direct),
                after_timestamp(&via),
                "{micros} us"
            );
            assert!(
                via.contains(" INFO access: client=10.0.0.17 method=GET"),
                "{via}"
            );
        }
        let mut f = fields(
            "/api/\"quoted\"/\u{1b}[31m/é",
            "-",
            Duration::from_millis(3),
        );
        f.upstream = None;
        f.client = "2001:db8::1".parse().unwrap();
        f.method = "PROPFIND";
        let (via, direct) = (through_subscriber(&f), direct(&f));
        assert_eq!(after_timestamp(&direct), after_timestamp(&via));
        assert!(
            direct.ends_with('\n') && !direct.contains('\u{1b}'),
            "{direct}"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_to_the_microsecond() {
        let at = |secs: u64, micros: u64| {
            let mut out = Vec::new();
            timestamp(
                &mut out,
                UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros),
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_764_676_205, 123_456), "2025-12-02T11:50:05.123456Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        // The subscriber's own timer, read between two of ours, agrees with one of them to
        // the second (both, unless a second ended in between).
        let f = fields("/", "-", Duration::ZERO);
        let (before, via, after) = (direct(&f), through_subscriber(&f), direct(&f));
        assert_eq!(via.len() - after_timestamp(&via).len(), 27, "{via}");
        assert!(
            [&before[..19], &after[..19]].contains(&&via[..19]),
            "{before} / {via} / {after}"
        );
    }
}
