//! Host header values turned into route-table keys, without allocating on the request path.

/// Longest host name kept for matching; longer ones only match host-less rules.
pub(super) const MAX_LEN: usize = 256;

/// The host part of a Host value: port removed, one trailing root dot removed.
///
/// Returns None for an empty or malformed value (unclosed or garbage-suffixed IPv6 literal).
fn host_part(raw: &str) -> Option<&str> {
    let name = if raw.starts_with('[') {
        // IPv6 literal: the colons inside the brackets are not a port separator.
        let end = raw.find(']')?;
        let after = &raw[end + 1..];
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        &raw[..=end]
    } else {
        raw.split_once(':').map_or(raw, |(name, _port)| name)
    };
    // "admin.example.com." names the same host; without this it would fall through to the
    // host-less rules and dodge the host-specific ones.
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

/// Whether a Host value (or request-target authority) is a plain `host[:port]`.
///
/// RFC 9112 3.2 wants 400 for an invalid Host. Beyond that, anything an upstream might
/// read differently from us is refused: userinfo (`x@admin`), lists (`a, b`), spaces,
/// escapes, paths and empty labels, since a parser that drops or splits those could see
/// a host whose rules we never applied.
pub fn is_valid_authority(value: &str) -> bool {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let v6 = !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !v6 {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(value), None),
        }
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = name.is_none_or(|n| {
        let n = n.strip_suffix('.').unwrap_or(n);
        !n.is_empty()
            && n.len() <= 253
            && n.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    });
    port_ok && name_ok
}

/// Lowercases the host part of `raw` into `buf` and returns it, or None when there is none
/// or it does not fit.
pub(super) fn key<'b>(raw: &str, buf: &'b mut [u8; MAX_LEN]) -> Option<&'b str> {
    let name = host_part(raw)?.as_bytes();
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    // ASCII lowercasing keeps UTF-8 valid, so this only fails on an invariant break.
    std::str::from_utf8(dst).ok()
}

/// The key a rule's configured host is stored under, normalized like request hosts.
pub(super) fn rule_key(host: &str) -> Box<str> {
    host_part(host).unwrap_or(host).to_ascii_lowercase().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `key` with a fresh buffer and returns an owned result.
    fn k(raw: &str) -> Option<String> {
        let mut buf = [0u8; MAX_LEN];
        key(raw, &mut buf).map(str::to_owned)
    }

    #[test]
    fn plain_hosts_and_ports_are_valid_authorities() {
        for ok in [
            "admin.example",
            "Admin.Example:8443",
            "admin.example.",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8443",
            "a_b.internal",
        ] {
            assert!(is_valid_authority(ok), "{ok}");
        }
    }

    #[test]
    fn authorities_an_upstream_could_read_differently_are_invalid() {
        let bad = [
            "",
            "x@admin.example",
            "admin.example, public.example",
            "admin.example public",
            "admin.example/",
            "admin.example%2e",
            "admin.example..",
            ".admin",
            "admin:",
            "admin:80:80",
            "admin:8a",
            "[::1",
            "[::1]x",
            "[]",
            "admin.example,public.example",
        ];
        for value in bad {
            assert!(!is_valid_authority(value), "{value:?}");
        }
    }

    #[test]
    fn port_and_case_are_ignored() {
        assert_eq!(
            k("Admin.Example.COM:8443").as_deref(),
            Some("admin.example.com")
        );
        assert_eq!(k("admin.example.com").as_deref(), Some("admin.example.com"));
    }

    #[test]
    fn ipv6_literal_keeps_its_brackets_and_drops_the_port() {
        assert_eq!(k("[::1]:8443").as_deref(), Some("[::1]"));
        assert_eq!(k("[FE80::1]").as_deref(), Some("[fe80::1]"));
    }

    #[test]
    fn malformed_ipv6_literal_has_no_key() {
        assert_eq!(k("[::1"), None);
        assert_eq!(k("[::1]evil.com"), None);
    }

    #[test]
    fn trailing_root_dot_is_the_same_host() {
        assert_eq!(
            k("admin.example.com.:443").as_deref(),
            Some("admin.example.com")
        );
    }

    #[test]
    fn empty_host_has_no_key() {
        assert_eq!(k(""), None);
        assert_eq!(k(":8443"), None);
    }

    #[test]
    fn overlong_host_has_no_key() {
        assert_eq!(k(&"a".repeat(MAX_LEN)).map(|s| s.len()), Some(MAX_LEN));
        assert_eq!(k(&"a".repeat(MAX_LEN + 1)), None);
    }

    #[test]
    fn rule_hosts_are_stored_like_request_hosts() {
        assert_eq!(&*rule_key("Admin.Example.com"), "admin.example.com");
        assert_eq!(&*rule_key("[::1]:8443"), "[::1]");
    }
}
