//! Property tests for request header rewriting: whatever the spelling of a forged name, in a
//! header or in a `Connection` list, nothing in the identity namespace survives unless the
//! gateway set it (the checks are shared with the `headers` fuzz target).

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use crate::fuzz_checks::headers::{
    check_rewrite, fold_prefix, CLIENT_NAMES, IDENTITY_NAMES, PREFIXES,
};
use portcullis::forward::headers::IdentityHeaders;
use portcullis::token::{Audience, Claims, TokenType};

/// `name` with each letter in either case and each '-' as '-', '_' or '.'.
fn spelling(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..3, name.len()).prop_map(move |choice| {
        name.bytes()
            .zip(choice)
            .map(|(b, c)| match (b, c) {
                (b'-', 1) => '_',
                (b'-', 2) => '.',
                (b, 1) => char::from(b.to_ascii_uppercase()),
                (b, _) => char::from(b),
            })
            .collect()
    })
}

fn client_name() -> impl Strategy<Value = String> {
    prop::sample::select(CLIENT_NAMES.to_vec()).prop_flat_map(spelling)
}

fn header_name(name: &str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).expect("built from header-name characters")
}

fn identity() -> impl Strategy<Value = IdentityHeaders> {
    let name = || prop::sample::select(IDENTITY_NAMES.to_vec()).prop_map(header_name);
    (
        prop::sample::select(PREFIXES.to_vec()),
        name(),
        name(),
        prop::option::of(name()),
        any::<bool>(),
        name(),
    )
        .prop_map(
            |(prefix, user, roles, tenant, forward_authorization, assertion)| IdentityHeaders {
                user,
                roles,
                assertion,
                claims: tenant
                    .map(|h| ("tenant".to_owned(), h))
                    .into_iter()
                    .collect(),
                strip_prefix: fold_prefix(prefix),
                forward_authorization,
            },
        )
}

fn request() -> impl Strategy<Value = HeaderMap> {
    let plain = (client_name(), "[ -~]{0,8}");
    let listing = prop::collection::vec(client_name(), 1..4)
        .prop_map(|names| ("Connection".to_owned(), names.join(" , ")));
    let header = prop_oneof![4 => plain, 1 => listing];
    prop::collection::vec(header, 0..12).prop_map(|headers| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let value = HeaderValue::from_str(&value).expect("visible ASCII");
            map.append(header_name(&name), value);
        }
        map
    })
}

fn claims() -> impl Strategy<Value = Claims> {
    ("[a-z]{1,6}", prop::option::of("[ -~]{0,6}")).prop_map(|(sub, tenant)| {
        let mut extra = serde_json::Map::new();
        if let Some(tenant) = tenant {
            extra.insert("tenant".into(), tenant.into());
        }
        Claims {
            iss: "iss".into(),
            aud: Audience::One("aud".into()),
            sub,
            iat: 0,
            nbf: 0,
            exp: 1,
            jti: "j".into(),
            roles: vec!["dev".into()],
            typ: TokenType::Access,
            fam: None,
            amr: Vec::new(),
            auth_time: None,
            idp: None,
            extra,
        }
    })
}

proptest! {
    #[test]
    fn no_forged_identity_header_survives_rewriting(
        identity in identity(),
        upgrade in any::<bool>(),
        claims in claims(),
        headers in request(),
    ) {
        check_rewrite(&identity, upgrade, &claims, headers);
    }
}
