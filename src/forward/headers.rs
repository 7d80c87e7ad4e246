//! Header rewriting between client and upstream: hop-by-hop and forged identity out,
//! the gateway's identity and forwarding headers in.

use std::fmt::Write as _;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::values::ValueBuf;
use crate::token::{fits_roles_header, fits_user_header, Claims};

/// Hop-by-hop headers (RFC 9110 7.6.1) plus the non-standard ones proxies also drop.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

static PROXY: HeaderName = HeaderName::from_static("proxy");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The request id header, kept when the client's is well formed.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The identity headers an upstream receives, built once per snapshot.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    /// Carries `sub`.
    pub user: HeaderName,
    /// Carries the roles, comma separated.
    pub roles: HeaderName,
    /// Extra claims, each to its own header.
    pub claims: Vec<(String, HeaderName)>,
    /// Lowercase namespace prefix, with `-` as separator (e.g. "x-auth-").
    pub strip_prefix: String,
    /// Whether Authorization reaches the upstream.
    pub forward_authorization: bool,
    /// Carries the signed assertion (upstreams with `assertion = true`).
    pub assertion: HeaderName,
}

impl IdentityHeaders {
    /// Whether a client-sent header name falls in the identity namespace.
    ///
    /// Some frameworks (CGI, WSGI, Rails) fold `_` and `.` into `-`, so `X_Auth_User`
    /// would reach them as `X-Auth-User`: those spellings are in the namespace too.
    pub fn is_identity(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        let prefix = self.strip_prefix.as_bytes();
        let in_namespace =
            name.len() >= prefix.len() && name.iter().zip(prefix).all(|(&n, &p)| fold(n) == p);
        in_namespace
            || self.same_folded(name, &self.user)
            || self.same_folded(name, &self.roles)
            || self.same_folded(name, &self.assertion)
            || self.claims.iter().any(|(_, h)| self.same_folded(name, h))
    }

    fn same_folded(&self, name: &[u8], header: &HeaderName) -> bool {
        let header = header.as_str().as_bytes();
        name.len() == header.len() && name.iter().zip(header).all(|(&n, &h)| fold(n) == fold(h))
    }
}

/// Lowercases and maps the separators some frameworks treat as equal to `-`.
fn fold(byte: u8) -> u8 {
    match byte {
        b'_' | b'.' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

/// Removes what must never cross the gateway from a client request.
///
/// Keeps `Upgrade` (and `Connection: upgrade`) only when `upgrade` is set, since an
/// upgrade handshake is the one place those hop-by-hop headers must be forwarded.
pub fn sanitize_request(headers: &mut HeaderMap, identity: &IdentityHeaders, upgrade: bool) {
    remove_connection_listed(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name)
            // httpoxy: CGI-style upstreams turn `Proxy` into HTTP_PROXY, which many HTTP
            // client libraries then use as their outbound proxy. No legitimate request
            // carries it.
            || name == PROXY
            || (!upgrade && name == header::UPGRADE)
            || (!identity.forward_authorization && name == header::AUTHORIZATION)
            || identity.is_identity(name)
            || is_forwarding(name)
    });
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes every header whose name `doomed` picks.
///
/// One pass over the names the message has, instead of a lookup for each name that must
/// not pass: most messages carry none of them, or one (an upstream's `Connection`). The
/// rest, if any, are collected in a second pass, so that a client sending a hundred forged
/// headers costs two passes, not one pass per header.
fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    let Some(first) = headers.keys().find(|name| doomed(name)).cloned() else {
        return;
    };
    headers.remove(&first);
    let rest: Vec<HeaderName> = headers
        .keys()
        .filter(|name| doomed(name))
        .cloned()
        .collect();
    for name in rest {
        headers.remove(&name);
    }
}

/// Whether a client-sent name is a forwarding header the gateway sets, in any spelling.
///
/// A framework that folds `X_Forwarded_For` into `X-Forwarded-For` would otherwise take a
/// forged client address, scheme or host next to (or instead of) the gateway's.
fn is_forwarding(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    [
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &FORWARDED,
    ]
    .iter()
    .any(|header| {
        let header = header.as_str().as_bytes();
        name.len() == header.len() && name.iter().zip(header).all(|(&n, &h)| fold(n) == h)
    })
}

/// Removes hop-by-hop headers from an upstream response.
pub fn sanitize_response(headers: &mut HeaderMap, upgrade: bool) {
    remove_connection_listed(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name) || (!upgrade && name == header::UPGRADE)
    });
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes every header the `Connection` header names (RFC 9110 7.6.1).
fn remove_connection_listed(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONNECTION) {
        return;
    }
    // `keep-alive` and `close`, what almost every Connection header says, are removed by
    // their static names; only a name outside those is copied out of the map.
    let (mut close, mut keep_alive) = (false, false);
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| {
            if token.eq_ignore_ascii_case("close") {
                close = true;
                false
            } else if token.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
                false
            } else {
                !token.eq_ignore_ascii_case("upgrade")
            }
        })
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    if close {
        headers.remove("close");
    }
    if keep_alive {
        headers.remove("keep-alive");
    }
}

/// Whether a client-sent request id is safe to pass on and to log.
pub fn is_valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A fresh request id: a version-4 UUID in 32 lowercase hex digits.
///
/// Its 122 random bits come from SipHash, keyed per thread from the OS generator, over a
/// per-thread counter: a request id has to be unique, not secret, and this costs no system
/// call per request (uuid's `new_v4` made one).
pub fn fresh_request_id(values: &mut ValueBuf) -> HeaderValue {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static KEYED: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    let bytes = KEYED.with(|(keys, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&keys.hash_one((n, 0u8)).to_le_bytes());
        bytes[8..].copy_from_slice(&keys.hash_one((n, 1u8)).to_le_bytes());
        bytes
    });
    let mut text = uuid::Uuid::encode_buffer();
    let id = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .encode_lower(&mut text);
    values
        .value(id.as_bytes())
        .unwrap_or_else(|| HeaderValue::from_static("-"))
}

/// Adds X-Forwarded-For/-Proto/-Host.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    forwarded_for: Option<HeaderValue>,
    proto: &'static str,
    host: Option<&HeaderValue>,
) {
    if let Some(chain) = forwarded_for {
        headers.insert(X_FORWARDED_FOR.clone(), chain);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
}

/// Adds the identity of a verified token. Verification already applies the header rules to
/// `sub` and roles; again here, so that no path can make one role read as two.
pub fn add_identity(
    headers: &mut HeaderMap,
    identity: &IdentityHeaders,
    claims: &Claims,
    values: &mut ValueBuf,
) {
    let user = Some(&claims.sub).filter(|sub| fits_user_header(sub));
    if let Some(Some(user)) = user.map(|sub| values.value(sub.as_bytes())) {
        headers.insert(identity.user.clone(), user);
    }
    roles_value(&claims.roles, values);
    if let Some(roles) = values.take_value() {
        headers.insert(identity.roles.clone(), roles);
    }
    for (claim, name) in &identity.claims {
        match claims.extra.get(claim) {
            Some(serde_json::Value::String(s)) => values.push(s.as_bytes()),
            Some(other) => {
                let _ = write!(values, "{other}");
            }
            None => continue,
        }
        if let Some(value) = values.take_value() {
            headers.insert(name.clone(), value);
        }
    }
}

/// Writes the roles header: the roles that fit it, comma separated.
fn roles_value(roles: &[String], values: &mut ValueBuf) {
    let fitting = roles.iter().filter(|role| fits_roles_header(role));
    for (i, role) in fitting.enumerate() {
        if i > 0 {
            values.push(b",");
        }
        values.push(role.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_the_header_cannot_carry_are_left_out_of_it() {
        let roles = ["staff,admin", "dev", " admin", "ops"].map(String::from);
        let mut values = ValueBuf::new();
        roles_value(&roles, &mut values);
        assert_eq!(values.take(), "dev,ops");
        roles_value(&[], &mut values);
        assert_eq!(values.take(), "");
    }

    #[test]
    fn fresh_request_ids_are_valid_distinct_v4_uuids() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = fresh_request_id(&mut ValueBuf::new());
            assert!(is_valid_request_id(&id));
            let parsed = uuid::Uuid::parse_str(id.to_str().expect("ascii")).expect("a uuid");
            assert_eq!(parsed.get_version_num(), 4);
            assert!(seen.insert(id), "ids repeat");
        }
        let other_thread = std::thread::spawn(|| fresh_request_id(&mut ValueBuf::new()))
            .join()
            .expect("thread");
        assert!(
            !seen.contains(&other_thread),
            "threads draw from their own keys"
        );
    }

    fn identity() -> IdentityHeaders {
        IdentityHeaders {
            user: HeaderName::from_static("x-auth-user"),
            roles: HeaderName::from_static("x-auth-roles"),
            claims: vec![("tenant".into(), HeaderName::from_static("x-tenant"))],
            strip_prefix: "x-auth-".into(),
            forward_authorization: true,
            assertion: HeaderName::from_static("x-auth-assertion"),
        }
    }

    fn request_with(names: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in names {
            let name =
                HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
            headers.append(name, HeaderValue::from_static("admin"));
        }
        headers
    }

    #[test]
    fn forged_identity_headers_in_every_spelling_are_removed() {
        let forged = [
            "X-Auth-User",
            "x_auth_user",
            "X.Auth.User",
            "X-AUTH-ROLES",
            "x-auth-anything",
            "X_Tenant",
        ];
        let mut headers = request_with(&forged);
        headers.insert("accept", HeaderValue::from_static("*/*"));
        sanitize_request(&mut headers, &identity(), false);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn a_client_sent_assertion_is_removed_whatever_the_namespace() {
        let mut id = identity();
        id.strip_prefix = "x-gw-".into();
        let mut headers = request_with(&["X-Auth-Assertion", "x_auth_assertion"]);
        sanitize_request(&mut headers, &id, false);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut headers = request_with(&[
            "keep-alive",
            "te",
            "transfer-encoding",
            "x-secret-hop",
            "upgrade",
        ]);
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret-Hop"),
        );
        sanitize_request(&mut headers, &identity(), false);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn headers_named_like_the_usual_connection_options_are_removed_in_any_case() {
        // "close" and "keep-alive" are removed by static name; any other listed name is
        // copied out of the map first. Both ways, what the header lists is gone.
        for listed in [
            "Close, KEEP-ALIVE",
            "keep-alive ,close",
            " close,x-hop , Upgrade",
        ] {
            let mut headers = request_with(&["close", "keep-alive", "x-hop", "x-second", "x-kept"]);
            headers.insert(header::CONNECTION, HeaderValue::from_str(listed).unwrap());
            // A second Connection line counts as much as the first.
            headers.append(header::CONNECTION, HeaderValue::from_static("X-Second"));
            remove_connection_listed(&mut headers);
            for name in listed.split(',').map(str::trim).chain(["x-second"]) {
                assert!(!headers.contains_key(name), "{listed}: {headers:?}");
            }
            assert!(headers.contains_key("x-kept"), "{listed}: {headers:?}");
        }
    }

    #[test]
    fn many_forged_headers_among_many_kept_ones_all_go_and_only_they() {
        let mut headers = HeaderMap::new();
        for i in 0..100 {
            let kept = HeaderName::from_bytes(format!("x-kept-{i}").as_bytes()).unwrap();
            headers.insert(kept, HeaderValue::from_static("kept"));
            let forged = HeaderName::from_bytes(format!("x-auth-{i}").as_bytes()).unwrap();
            headers.append(forged.clone(), HeaderValue::from_static("forged"));
            headers.append(forged, HeaderValue::from_static("again"));
        }
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        sanitize_request(&mut headers, &identity(), false);
        assert_eq!(headers.len(), 100, "{headers:?}");
        assert!(headers
            .iter()
            .all(|(name, value)| { name.as_str().starts_with("x-kept-") && value == "kept" }));
    }

    #[test]
    fn upgrade_is_kept_only_for_an_upgrade_handshake() {
        let mut headers = request_with(&["upgrade"]);
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        sanitize_request(&mut headers, &identity(), true);
        assert!(headers.contains_key(header::UPGRADE));
        assert_eq!(headers[header::CONNECTION], "upgrade");
    }

    #[test]
    fn client_forwarding_headers_are_replaced() {
        let mut headers = request_with(&["x-forwarded-for", "forwarded", "x-forwarded-host"]);
        sanitize_request(&mut headers, &identity(), false);
        add_forwarding(
            &mut headers,
            Some(HeaderValue::from_static("10.1.2.3")),
            "https",
            None,
        );
        assert_eq!(headers["x-forwarded-for"], "10.1.2.3");
        assert!(!headers.contains_key("forwarded"));
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn forged_forwarding_headers_in_every_spelling_are_removed() {
        // Found by the `headers` fuzz target: X_Forwarded-For passed through, and a WSGI or
        // CGI upstream reads it as X-Forwarded-For, a client address of the client's choice.
        let forged = [
            "x_forwarded-for",
            "X_Forwarded_For",
            "x.forwarded.proto",
            "X-FORWARDED_HOST",
            "Forwarded",
        ];
        let mut headers = request_with(&forged);
        headers.insert("x-forwarded-by", HeaderValue::from_static("kept"));
        sanitize_request(&mut headers, &identity(), false);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-forwarded-by"));
    }

    #[test]
    fn a_proxy_header_never_reaches_the_upstream() {
        // httpoxy (CVE-2016-5385 and siblings): `Proxy` becomes HTTP_PROXY in CGI.
        let mut headers = request_with(&["Proxy"]);
        headers.insert("proxy-status", HeaderValue::from_static("kept"));
        sanitize_request(&mut headers, &identity(), false);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("proxy-status"));
    }

    #[test]
    fn authorization_is_dropped_when_not_forwarded() {
        let mut headers = request_with(&["authorization"]);
        let mut id = identity();
        id.forward_authorization = false;
        sanitize_request(&mut headers, &id, false);
        assert!(headers.is_empty());
    }

    #[test]
    fn request_ids_must_be_short_and_plain() {
        assert!(is_valid_request_id(&HeaderValue::from_static(
            "abc-123_x.y"
        )));
        assert!(!is_valid_request_id(&HeaderValue::from_static("")));
        assert!(!is_valid_request_id(&HeaderValue::from_static("a b")));
        assert!(!is_valid_request_id(
            &HeaderValue::from_str(&"a".repeat(129)).expect("ascii")
        ));
    }
}
