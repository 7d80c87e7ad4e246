//! Bearer extraction and token verification up to and including the signature check.

use std::sync::OnceLock;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use super::input::Input;
use portcullis::token::keys::{KeyMaterial, KeyRing, KeySpec};
use portcullis::token::mint::{mint, Grant};
use portcullis::token::verify::{bearer, verify, Expectations, TokenError};
use portcullis::token::{Alg, TokenType, ALL_ALGS};

/// The time every token is minted and checked at.
pub const NOW: u64 = 1_700_000_000;

/// One ring per signing algorithm (each holding every key), and a valid token from each.
struct Setup {
    rings: Vec<KeyRing>,
    tokens: Vec<String>,
    expect: Expectations,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let specs: Vec<KeySpec> = ALL_ALGS.into_iter().map(spec).collect();
        let rings: Vec<KeyRing> = ALL_ALGS
            .into_iter()
            .map(|alg| KeyRing::new(specs.clone(), alg.as_str()).expect("generated keys load"))
            .collect();
        let roles = ["dev".to_owned()];
        let tokens = rings
            .iter()
            .map(|ring| {
                let grant = Grant {
                    sub: "alice",
                    roles: &roles,
                    extra: serde_json::Map::new(),
                    typ: TokenType::Access,
                    fam: None,
                    ttl_secs: 900,
                    authn: Default::default(),
                };
                mint(ring, "iss", "aud", grant, NOW).expect("mint").0
            })
            .collect();
        let expect = Expectations {
            issuer: "iss".into(),
            audience: "aud".into(),
            leeway_secs: 0,
        };
        Setup {
            rings,
            tokens,
            expect,
        }
    })
}

/// A key generated for this process (HMAC: random bytes), its kid the alg name.
fn spec(alg: Alg) -> KeySpec {
    let material = if alg.is_hmac() {
        let secret: String = (0..3)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        KeyMaterial::Secret(secret.into_bytes())
    } else {
        let pem = portcullis::tools::keygen::generate_private_pem(alg).expect("key generation");
        KeyMaterial::PrivatePem(pem.into_bytes())
    };
    KeySpec {
        kid: alg.as_str().to_owned(),
        alg,
        material,
        verify_only: false,
    }
}

/// The ring signing with `alg`, a valid access token it minted, and what verifies it.
pub fn minted(alg: Alg) -> (&'static KeyRing, &'static str, &'static Expectations) {
    let setup = setup();
    let at = ALL_ALGS
        .iter()
        .position(|a| *a == alg)
        .expect("every alg is listed");
    (&setup.rings[at], &setup.tokens[at], &setup.expect)
}

/// Either a raw Authorization header or a valid token altered at a few places.
pub fn token(data: &[u8]) {
    let setup = setup();
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => header(setup, &mut input),
        1 => altered(setup, &mut input),
        _ => {
            if let Ok(token) = std::str::from_utf8(input.rest()) {
                refused_before_claims(setup, token);
            }
        }
    }
}

/// `bearer` returns exactly the token of a single `Bearer <token68-ish>` header.
fn header(setup: &Setup, input: &mut Input<'_>) {
    let twice = input.byte() & 1 == 1;
    let Ok(value) = HeaderValue::from_bytes(input.rest()) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append(AUTHORIZATION, value.clone());
    if twice {
        headers.append(AUTHORIZATION, value.clone());
    }
    let text = value.to_str().ok();
    let scheme_is_bearer = text.is_some_and(|t| {
        let scheme = t.split(' ').next().unwrap_or(t);
        scheme.eq_ignore_ascii_case("bearer")
    });
    let well_formed = text.and_then(|t| {
        let spaces = t.get(6..).filter(|rest| rest.starts_with(' '))?;
        let token = spaces.trim_start_matches(' ');
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        (!token.is_empty() && token.bytes().all(ok)).then_some(token)
    });
    match bearer(&headers) {
        Ok(token) => {
            assert!(!twice, "a duplicated Authorization header was accepted");
            assert!(scheme_is_bearer, "non-Bearer scheme accepted: {value:?}");
            assert_eq!(Some(token), well_formed, "{value:?}");
            refused_before_claims(setup, token);
        }
        Err(TokenError::Missing) => {
            assert!(!twice && text.is_some() && !scheme_is_bearer, "{value:?}");
        }
        Err(TokenError::Malformed) => {
            assert!(twice || well_formed.is_none(), "{value:?} refused");
        }
        Err(other) => panic!("bearer returned {other:?} for {value:?}"),
    }
}

/// A valid token with bytes replaced, inserted or removed never verifies, whichever key.
fn altered(setup: &Setup, input: &mut Input<'_>) {
    let which = input.below(setup.tokens.len());
    let original = &setup.tokens[which];
    let mut bytes = original.clone().into_bytes();
    for _ in 0..=input.below(3) {
        let at = (usize::from(input.byte()) << 8 | usize::from(input.byte())) % (bytes.len() + 1);
        let byte = input.byte();
        match input.below(4) {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let last = bytes.len() - 1;
                bytes[at.min(last)] ^= 1 << (byte % 8);
            }
        }
        if bytes.is_empty() {
            return;
        }
    }
    let Ok(token) = std::str::from_utf8(&bytes) else {
        return;
    };
    let ring = &setup.rings[which];
    if token == original {
        let claims = verify(ring, &setup.expect, token, TokenType::Access, NOW);
        assert!(
            claims.is_ok(),
            "the unaltered token must verify: {claims:?}"
        );
        return;
    }
    refused_before_claims(setup, token);
}

/// Nothing but a minted token passes the signature check, so no claim check is ever reached.
fn refused_before_claims(setup: &Setup, token: &str) {
    if setup.tokens.iter().any(|t| t == token) {
        return;
    }
    // Every ring holds every key, so one ring stands for all.
    for typ in [TokenType::Access, TokenType::Refresh] {
        match verify(&setup.rings[0], &setup.expect, token, typ, NOW) {
            Err(
                TokenError::Malformed
                | TokenError::MissingKid
                | TokenError::UnknownKid
                | TokenError::AlgMismatch
                | TokenError::BadSignature,
            ) => {}
            other => panic!("forged token {token:?} reached {other:?}"),
        }
    }
}
