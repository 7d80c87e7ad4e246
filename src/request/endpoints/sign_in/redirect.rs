//! Where a browser may be sent after signing in: `rd` is followed only to the request's own
//! origin or an allowed host, never off-site by a trick of syntax.
//!
//! Browsers forgive a lot when they resolve a Location (a backslash for a slash, tabs and
//! newlines dropped, `//host` as another site), so anything outside plain printable ASCII,
//! and any percent-encoding of such a character, is refused rather than interpreted.

use percent_encoding::percent_decode_str;

use crate::config::snapshot::HostRule;

/// The origin the request came in on: scheme and Host as sent (name and optional port).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `https`, or `http` on the plain listener.
    pub scheme: &'a str,
    /// The request's host, lowercase, with its port if the client sent one.
    pub host: &'a str,
}

impl Origin<'_> {
    /// The page a refused or absent `rd` falls back to.
    pub fn home(&self) -> String {
        format!("{}://{}/", self.scheme, self.host)
    }

    /// The absolute URL of `request` as the browser addressed it.
    pub fn url_of<B>(&self, request: &http::Request<B>) -> String {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        format!("{}://{}{path}", self.scheme, self.host)
    }
}

/// Longest `rd` followed.
const MAX_RD: usize = 4096;

/// The absolute URL `rd` names, when it is safe to send the browser there.
pub fn target(rd: &str, origin: Origin<'_>, allowed: &[HostRule]) -> Option<String> {
    if rd.is_empty() || rd.len() > MAX_RD || !plain_layers(rd) {
        return None;
    }
    if rd.starts_with('/') {
        return (!rd.starts_with("//")).then(|| format!("{}://{}{rd}", origin.scheme, origin.host));
    }
    let (scheme, rest) = split_scheme(rd)?;
    if scheme != "https" && !(scheme == "http" && origin.scheme == "http") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = authority.to_ascii_lowercase();
    let host = host_of(&authority)?;
    let same_origin = scheme == origin.scheme && authority == origin.host;
    if !same_origin && !allowed.iter().any(|rule| rule.allows(host)) {
        return None;
    }
    let path = if path.is_empty() { "/" } else { path };
    Some(format!("{scheme}://{authority}{path}"))
}

/// `https://rest` -> ("https", "rest"); the scheme lowercase. None without `://`.
fn split_scheme(rd: &str) -> Option<(String, &str)> {
    let (scheme, rest) = rd.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "https" | "http").then_some((scheme, rest))
}

/// The host name of an authority (`name` or `name:port`), when it is a plain DNS name or
/// IPv4 address: no userinfo, no percent-encoding, no IDN, a numeric port.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-']);
    (port_ok && host_ok).then_some(host)
}

/// Whether `rd` and every percent-decoding of it are printable ASCII without a backslash,
/// and no decoding turns a path into `//host`.
fn plain_layers(rd: &str) -> bool {
    let mut layer = std::borrow::Cow::Borrowed(rd);
    for depth in 0..4 {
        let printable = layer
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'\\');
        // Raw non-ASCII is refused outright; once decoded, UTF-8 in a path is fine.
        let controls = layer.bytes().any(|b| b < 0x21 || b == 0x7f || b == b'\\');
        if (depth == 0 && !printable) || controls || layer.starts_with("//") {
            return false;
        }
        if !layer.contains('%') {
            return true;
        }
        let decoded = percent_decode_str(&layer).decode_utf8_lossy().into_owned();
        if decoded == *layer {
            return true;
        }
        layer = std::borrow::Cow::Owned(decoded);
    }
    false
}
