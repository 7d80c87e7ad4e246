//! Request header rewriting: nothing forged in the identity namespace survives, nothing
//! hop-by-hop or Connection-listed passes, and everything else passes untouched.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::input::Input;
use portcullis::forward::headers::{add_identity, sanitize_request, IdentityHeaders};
use portcullis::forward::values::ValueBuf;
use portcullis::token::{Audience, Claims, TokenType};

pub(crate) const PREFIXES: [&str; 5] = ["X-Auth-", "x_auth_", "X.Auth.", "x-", "co"];
pub(crate) const IDENTITY_NAMES: [&str; 5] = [
    "x-auth-user",
    "X-User",
    "x-auth-roles",
    "x_roles",
    "X-Tenant",
];
/// Names clients send: identity ones, hop-by-hop ones, forwarding ones and ordinary ones.
pub(crate) const CLIENT_NAMES: [&str; 20] = [
    "x-auth-user",
    "x-auth-roles",
    "x-auth-anything",
    "x-user",
    "x-roles",
    "x-tenant",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "forwarded",
    "authorization",
    "accept",
    "x-secret-hop",
    "cookie",
];
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];
const FORWARDING: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// Random identity settings and client headers through `sanitize_request` + `add_identity`.
pub fn headers(data: &[u8]) {
    let mut input = Input::new(data);
    let Some(identity) = identity(&mut input) else {
        return;
    };
    let upgrade = input.byte() & 1 == 1;
    let claims = claims(&mut input);
    let mut headers = HeaderMap::new();
    while !input.is_empty() {
        let name = client_name(&mut input);
        let value = if name == header::CONNECTION {
            connection_list(&mut input)
        } else {
            HeaderValue::from_bytes(input.bytes()).ok()
        };
        if let Some(value) = value {
            headers.append(name, value);
        }
    }
    check_rewrite(&identity, upgrade, &claims, headers);
}

/// Rewrites client headers as the gateway does and checks the result after each step.
pub(crate) fn check_rewrite(
    identity: &IdentityHeaders,
    upgrade: bool,
    claims: &Claims,
    mut headers: HeaderMap,
) {
    let original = headers.clone();
    sanitize_request(&mut headers, identity, upgrade);
    check_sanitized(&original, &headers, identity, upgrade);
    let sanitized = headers.clone();
    add_identity(&mut headers, identity, claims, &mut ValueBuf::new());
    check_identity(&sanitized, &headers, identity, upgrade);
}

/// Identity settings as the config loader builds them (prefix folded to lowercase and '-').
fn identity(input: &mut Input<'_>) -> Option<IdentityHeaders> {
    let prefix = match input.below(PREFIXES.len() + 1) {
        0 => input.text(),
        n => PREFIXES[n - 1].to_owned(),
    };
    if prefix.len() < 2 || HeaderName::from_bytes(prefix.as_bytes()).is_err() {
        return None;
    }
    let user = identity_name(input)?;
    let roles = identity_name(input)?;
    let mut claims = Vec::new();
    for claim in ["tenant", "team"] {
        if input.byte() & 1 == 1 {
            claims.push((claim.to_owned(), identity_name(input)?));
        }
    }
    let assertion = identity_name(input)?;
    Some(IdentityHeaders {
        user,
        roles,
        claims,
        assertion,
        strip_prefix: fold_prefix(&prefix),
        forward_authorization: input.byte() & 1 == 1,
    })
}

/// A configured identity header name: a usual one or raw bytes.
fn identity_name(input: &mut Input<'_>) -> Option<HeaderName> {
    match input.below(IDENTITY_NAMES.len() + 1) {
        0 => HeaderName::from_bytes(input.bytes()).ok(),
        n => HeaderName::from_bytes(IDENTITY_NAMES[n - 1].as_bytes()).ok(),
    }
}

/// Verified claims with fuzzed subject, roles and extra claims.
fn claims(input: &mut Input<'_>) -> Claims {
    let mut extra = serde_json::Map::new();
    for claim in ["tenant", "team", "other"] {
        match input.below(3) {
            0 => {}
            1 => {
                extra.insert(claim.into(), input.text().into());
            }
            _ => {
                extra.insert(claim.into(), input.byte().into());
            }
        }
    }
    Claims {
        iss: "iss".into(),
        aud: Audience::One("aud".into()),
        sub: input.text(),
        iat: 0,
        nbf: 0,
        exp: 1,
        jti: "j".into(),
        roles: (0..input.below(3)).map(|_| input.text()).collect(),
        typ: TokenType::Access,
        fam: None,
        amr: Vec::new(),
        auth_time: None,
        idp: None,
        extra,
    }
}

/// A client header name: a known one respelled (case, '_' or '.' for '-'), or raw bytes.
fn client_name(input: &mut Input<'_>) -> HeaderName {
    let spelled = match input.below(CLIENT_NAMES.len() + 1) {
        0 => input.bytes().to_vec(),
        n => respell(input, CLIENT_NAMES[n - 1]),
    };
    HeaderName::from_bytes(&spelled).unwrap_or(header::ACCEPT)
}

/// `name` with each '-' possibly turned into '_' or '.', and each letter possibly uppercased.
fn respell(input: &mut Input<'_>, name: &str) -> Vec<u8> {
    let style = input.byte();
    name.bytes()
        .enumerate()
        .map(|(i, b)| match (b, style >> (i % 8) & 1) {
            (b'-', 1) if style & 0x80 != 0 => b'.',
            (b'-', 1) => b'_',
            (b, 1) => b.to_ascii_uppercase(),
            (b, _) => b,
        })
        .collect()
}

/// A Connection value listing a few names, with the spacing and case clients use.
fn connection_list(input: &mut Input<'_>) -> Option<HeaderValue> {
    let count = input.below(4);
    let names: Vec<String> = (0..count)
        .map(|_| {
            let base = input.pick(&CLIENT_NAMES);
            let name = respell(input, base);
            format!(" {} ", String::from_utf8_lossy(&name))
        })
        .collect();
    HeaderValue::from_str(&names.join(",")).ok()
}

/// The namespace prefix as the config loader stores it.
pub(crate) fn fold_prefix(prefix: &str) -> String {
    prefix.bytes().map(|b| char::from(fold(b))).collect()
}

/// Lowercase, with the separators some frameworks treat as '-' mapped to it.
fn fold(b: u8) -> u8 {
    match b {
        b'_' | b'.' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

fn folded(name: &str) -> Vec<u8> {
    name.bytes().map(fold).collect()
}

/// Whether an upstream framework could read `name` as an identity header.
fn in_namespace(identity: &IdentityHeaders, name: &HeaderName) -> bool {
    let name = folded(name.as_str());
    let configured = [&identity.user, &identity.roles, &identity.assertion]
        .into_iter()
        .chain(identity.claims.iter().map(|(_, h)| h));
    name.starts_with(&folded(&identity.strip_prefix))
        || configured.into_iter().any(|h| folded(h.as_str()) == name)
}

/// Names the client's Connection headers list.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

fn check_sanitized(
    original: &HeaderMap,
    headers: &HeaderMap,
    identity: &IdentityHeaders,
    upgrade: bool,
) {
    let listed = connection_listed(original);
    // The one header the gateway itself sets while sanitizing.
    let gateway_set = |name: &HeaderName| upgrade && name == header::CONNECTION;
    let must_go = |name: &HeaderName| {
        !gateway_set(name)
            && (in_namespace(identity, name)
                || HOP_BY_HOP.contains(&name.as_str())
                || name.as_str() == "proxy"
                || FORWARDING
                    .iter()
                    .any(|f| folded(f) == folded(name.as_str()))
                || (name == header::UPGRADE && !upgrade)
                || (name == header::AUTHORIZATION && !identity.forward_authorization)
                || (listed.contains(name) && !(upgrade && name == header::UPGRADE)))
    };
    for name in headers.keys() {
        assert!(
            !must_go(name),
            "{name} survived: {original:?} -> {headers:?}"
        );
    }
    if upgrade {
        let connection: Vec<_> = headers.get_all(header::CONNECTION).iter().collect();
        assert_eq!(connection, ["upgrade"], "{headers:?}");
    }
    for name in original.keys().filter(|n| !must_go(n) && !gateway_set(n)) {
        let before: Vec<_> = original.get_all(name).iter().collect();
        let after: Vec<_> = headers.get_all(name).iter().collect();
        assert_eq!(before, after, "{name} changed: {original:?} -> {headers:?}");
    }
}

fn check_identity(
    sanitized: &HeaderMap,
    headers: &HeaderMap,
    identity: &IdentityHeaders,
    upgrade: bool,
) {
    let configured: Vec<&HeaderName> = [&identity.user, &identity.roles]
        .into_iter()
        .chain(identity.claims.iter().map(|(_, h)| h))
        .collect();
    for name in headers.keys() {
        if configured.contains(&name) {
            assert_eq!(headers.get_all(name).iter().count(), 1, "{headers:?}");
        } else if in_namespace(identity, name) {
            assert!(
                upgrade && name == header::CONNECTION,
                "{name} not set by the gateway"
            );
        } else {
            let before: Vec<_> = sanitized.get_all(name).iter().collect();
            let after: Vec<_> = headers.get_all(name).iter().collect();
            assert_eq!(before, after, "add_identity touched {name}");
        }
    }
}
