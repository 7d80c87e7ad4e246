//! The host a request is for, checked before any route is chosen by it.

use http::header::{self, HeaderValue};
use http::{Request, Version};
use hyper::body::Incoming;

use crate::forward::values::ValueBuf;
use crate::reject::Reject;
use crate::route;

/// The host a request is for: the URI authority (HTTP/2, absolute-form) or Host.
///
/// When both are present they must agree, so that the host the route was chosen
/// for is the host the upstream sees.
pub fn request_host(request: &Request<Incoming>) -> Result<Option<&str>, Reject> {
    let mut host_headers = request.headers().get_all(header::HOST).iter();
    let host_header = host_headers.next();
    if host_headers.next().is_some() {
        return Err(Reject::BadRequest("more than one Host header"));
    }
    let host_header = host_header.map(valid_host).transpose()?;
    let authority = request.uri().authority().map(|a| a.as_str());
    if authority.is_some_and(|a| !route::is_valid_authority(a)) {
        return Err(BAD_HOST);
    }
    match (authority, host_header) {
        (Some(authority), Some(host)) if !authority.eq_ignore_ascii_case(host) => Err(
            Reject::BadRequest("Host header does not match the request target"),
        ),
        (Some(authority), _) => Ok(Some(authority)),
        // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400.
        (None, None) if request.version() == Version::HTTP_11 => {
            Err(Reject::BadRequest("missing Host header"))
        }
        (None, host) => Ok(host),
    }
}

/// A Host value that is a plain `host[:port]`, or 400.
///
/// Shared by the proxy (Host) and forward-auth (the original host a front proxy reports).
pub fn valid_host(value: &HeaderValue) -> Result<&str, Reject> {
    value
        .to_str()
        .ok()
        .filter(|h| route::is_valid_authority(h))
        .ok_or(BAD_HOST)
}

/// The request's host as a header value: the Host header's own value when it is the host
/// (shared, not copied), else `host` written into the request's `values`.
pub fn host_value(
    request: &Request<Incoming>,
    host: &str,
    values: &mut ValueBuf,
) -> Option<HeaderValue> {
    match request.headers().get(header::HOST) {
        Some(value) if value.as_bytes() == host.as_bytes() => Some(value.clone()),
        _ => values.value(host.as_bytes()),
    }
}

const BAD_HOST: Reject = Reject::BadRequest("invalid Host (expected host[:port])");
