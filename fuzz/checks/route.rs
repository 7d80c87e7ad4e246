//! The compiled route table against a naive first-match linear scan over the same rules.

use http::Method;

use super::input::Input;
use portcullis::path::normalize;
use portcullis::route::{is_valid_authority, Matcher, Pattern, Table};

/// Segments a pattern or path is built from; few, so that rules and requests overlap.
const SEGMENTS: [&str; 10] = ["a", "b", "api", "*", "**", "", ".", "..", "%61", "A"];
/// Rule hosts, as the config loader leaves them (lowercase, maybe a root dot).
const RULE_HOSTS: [&str; 3] = ["api.example", "admin.example.", "x"];
/// Request hosts: the rule hosts in other spellings, and others.
const REQUEST_HOSTS: [&str; 10] = [
    "api.example",
    "API.Example:8443",
    "api.example.",
    "admin.example",
    "ADMIN.example.:443",
    "x:1",
    "other.example",
    "[::1]:8443",
    "x.",
    "api.example.x",
];
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// Builds a random table and random requests; `Table::find` must equal the naive scan.
pub fn route(data: &[u8]) {
    let mut input = Input::new(data);
    let rules: Vec<(Matcher, usize)> = (0..input.below(12))
        .filter_map(|_| matcher(&mut input))
        .enumerate()
        .map(|(i, m)| (m, i))
        .collect();
    let naive: Vec<Matcher> = rules.iter().map(|(m, _)| m.clone()).collect();
    let table = Table::new(rules);
    while !input.is_empty() {
        let host = match input.below(REQUEST_HOSTS.len() + 1) {
            0 => None,
            n => Some(REQUEST_HOSTS[n - 1]),
        };
        let method = METHODS[input.below(METHODS.len())].clone();
        let Ok(path) = normalize(&text(&mut input)).map(|p| p.into_owned()) else {
            continue;
        };
        let found = table.find(host, &method, &path).map(|(i, &v)| (i, v));
        let expected = first_match(&naive, host, &method, &path).map(|i| (i, i));
        assert_eq!(
            found, expected,
            "{host:?} {method} {path:?} over {naive:#?}"
        );
    }
}

/// A rule from the input, or None when its pattern does not parse.
fn matcher(input: &mut Input<'_>) -> Option<Matcher> {
    let host = match input.below(RULE_HOSTS.len() + 2) {
        n if n < RULE_HOSTS.len() => Some(RULE_HOSTS[n].to_owned()),
        _ => None,
    };
    let mask = input.byte();
    let methods: Vec<Method> = (0..METHODS.len())
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| METHODS[bit].clone())
        .collect();
    let methods = (mask & 0x80 == 0 && !methods.is_empty()).then_some(methods);
    let pattern = Pattern::parse(&text(input)).ok()?;
    Some(Matcher {
        host,
        pattern,
        methods,
    })
}

/// A path or pattern: mostly from the segment alphabet, sometimes raw bytes.
fn text(input: &mut Input<'_>) -> String {
    let count = input.byte();
    if count >= 0xF0 {
        return format!("/{}", input.text());
    }
    let mut out = String::new();
    for _ in 0..count % 6 {
        out.push('/');
        out.push_str(input.pick(&SEGMENTS));
    }
    if out.is_empty() || count & 0x08 != 0 {
        out.push('/');
    }
    out
}

/// The index of the first rule in file order that matches, by the plain reading of a rule.
pub(crate) fn first_match(
    rules: &[Matcher],
    host: Option<&str>,
    method: &Method,
    path: &str,
) -> Option<usize> {
    rules.iter().position(|rule| {
        host_matches(rule.host.as_deref(), host)
            && rule.methods.as_ref().is_none_or(|m| m.contains(method))
            && pattern_matches(rule.pattern.as_str(), path)
    })
}

/// A host rule matches the same name in any case, with or without a port or root dot.
fn host_matches(rule: Option<&str>, request: Option<&str>) -> bool {
    let Some(rule) = rule else {
        return true;
    };
    let Some(request) = request.filter(|r| is_valid_authority(r)) else {
        return false;
    };
    let name = if request.starts_with('[') {
        request.split_inclusive(']').next().unwrap_or(request)
    } else {
        request.split(':').next().unwrap_or(request)
    };
    let bare = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    bare(name) == bare(rule)
}

/// Literal segments match themselves, `*` any one segment, a final `**` any rest (even none).
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let wanted: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut have = path.split('/').filter(|s| !s.is_empty());
    for (i, want) in wanted.iter().enumerate() {
        if *want == "**" && i + 1 == wanted.len() {
            return true;
        }
        match have.next() {
            Some(seg) if *want == "*" || seg == *want => {}
            _ => return false,
        }
    }
    have.next().is_none()
}
