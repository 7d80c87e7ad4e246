//! The request-head limits, checked exactly on every request before any other stage.
//!
//! hyper's own HTTP/1.1 limits are approximate (its read buffer may take in a head well past
//! `max_buf_size`) and it answers them with an empty 431. So hyper is configured with twice
//! the configured limits, as an outer bound on what one connection may buffer, and the
//! configured limits are enforced here, to the byte and the field, with the gateway's own
//! JSON refusal.

use http::{Request, Version};

use crate::config::snapshot::ListenSettings;
use crate::reject::Reject;

/// The largest `max_header_bytes` the configuration accepts.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// The largest `max_header_fields` the configuration accepts.
pub const MAX_HEADER_FIELDS: usize = 1000;

/// How far hyper's own limits sit above the configured ones: heads between the two are
/// refused here, with the JSON body; beyond them hyper refuses before a request exists.
pub const PARSER_HEADROOM: usize = 2;

/// Refuses (431) a request whose head is over `max_header_bytes` or has more than
/// `max_header_fields` fields.
///
/// The HTTP/1.x head is measured as it is written on the wire with single spaces: the
/// request line (`METHOD SP target SP HTTP/1.1 CRLF`), each field as `name: value CRLF`,
/// and the final CRLF; whitespace around a field value is not counted. HTTP/2 heads are
/// bounded by the h2 codec (SETTINGS_MAX_HEADER_LIST_SIZE); their fields are counted here.
pub fn check_head<B>(settings: &ListenSettings, request: &Request<B>) -> Result<(), Reject> {
    if request.headers().len() > settings.max_header_fields {
        return Err(Reject::HeadTooLarge("too many header fields"));
    }
    let http1 = request.version() < Version::HTTP_2;
    if http1 && head_bytes(request) > settings.max_header_bytes {
        return Err(Reject::HeadTooLarge("request head too large"));
    }
    Ok(())
}

/// The size of an HTTP/1.x request head as counted by `check_head`; no allocation.
fn head_bytes<B>(request: &Request<B>) -> usize {
    const CRLF: usize = 2;
    // "HTTP/1.1" and "HTTP/1.0" alike.
    const VERSION: usize = 8;
    let uri = request.uri();
    // The request-target as sent: origin-form `/p?q`, absolute-form `http://host/p?q`,
    // authority-form `host:port` (CONNECT) or `*`.
    let target = uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |path| path.as_str().len());
    let line = request.method().as_str().len() + 1 + target + 1 + VERSION + CRLF;
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + CRLF)
        .sum();
    line + fields + CRLF
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bytes: usize, fields: usize) -> ListenSettings {
        ListenSettings {
            addr: ([127, 0, 0, 1], 0).into(),
            plain_addr: None,
            admin_addr: None,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_header_bytes: bytes,
            max_header_fields: fields,
            max_connections: 1,
            shutdown_grace: std::time::Duration::from_secs(30),
            tls_cert: std::path::PathBuf::new(),
        }
    }

    #[test]
    fn a_head_is_counted_as_written_with_single_spaces() {
        let request = Request::get("/a?b")
            .header("host", "x")
            .header("x-y", "zz")
            .body(())
            .expect("a valid request");
        let wire = "GET /a?b HTTP/1.1\r\nhost: x\r\nx-y: zz\r\n\r\n";
        assert_eq!(head_bytes(&request), wire.len());
        let absolute = Request::get("http://h:1/p").body(()).expect("valid");
        assert_eq!(
            head_bytes(&absolute),
            "GET http://h:1/p HTTP/1.1\r\n\r\n".len()
        );
    }

    #[test]
    fn the_byte_limit_is_exact() {
        let request = |len: usize| {
            let head = "GET / HTTP/1.1\r\nx: \r\n\r\n".len();
            Request::get("/")
                .header("x", "a".repeat(len - head))
                .body(())
                .expect("a valid request")
        };
        assert_eq!(check_head(&settings(8192, 100), &request(8192)), Ok(()));
        assert_eq!(
            check_head(&settings(8192, 100), &request(8193)),
            Err(Reject::HeadTooLarge("request head too large"))
        );
    }

    #[test]
    fn the_field_limit_is_exact_and_holds_for_http2() {
        let request = |fields: usize, version: Version| {
            let mut builder = Request::get("/").version(version);
            for i in 0..fields {
                builder = builder.header(format!("x-{i}"), "v");
            }
            builder.body(()).expect("a valid request")
        };
        for version in [Version::HTTP_11, Version::HTTP_2] {
            assert_eq!(
                check_head(&settings(8192, 20), &request(20, version)),
                Ok(())
            );
            assert_eq!(
                check_head(&settings(8192, 20), &request(21, version)),
                Err(Reject::HeadTooLarge("too many header fields"))
            );
        }
    }
}
