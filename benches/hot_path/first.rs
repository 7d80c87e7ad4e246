//! Issue 19 target 4: the first verification of an HS256 token beside the bare HMAC, as a
//! criterion group and as a loop for callgrind (`HOT_PATH_REPEAT`).

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{BatchSize, Criterion};

use portcullis::token::cache;
use portcullis::token::keys::KeyRing;
use portcullis::token::verify::{self, Expectations};
use portcullis::token::{Alg, Claims, TokenType};

use super::{fresh_token, signed, AUDIENCE, ISSUER};

/// Issue 19 target 4: the first verification of an HS256 token (not in the cache yet) through
/// the gateway's verifier, beside the bare HMAC-SHA256 over the same token-sized input.
pub fn first_verification(c: &mut Criterion) {
    let case = FirstVerification::new();
    let mut group = c.benchmark_group("first_verification");
    group.bench_function("HS256/bare_hmac", |b| b.iter(|| case.bare_hmac()));
    group.bench_function("HS256/uncached", |b| {
        b.iter_batched(
            || fresh_token(&case.ring),
            |token| case.verify(&token),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// An HS256 ring and token, and what the bare HMAC check of that token needs.
struct FirstVerification {
    ring: KeyRing,
    expect: Expectations,
    key: hmac::Key,
    input: Vec<u8>,
    sig: Vec<u8>,
    now: u64,
}

impl FirstVerification {
    fn new() -> FirstVerification {
        let (ring, token, _) = signed(Alg::HS256);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let secret = b"bench-secret-bench-secret-bench-secret-0123456789";
        FirstVerification {
            expect: Expectations {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                leeway_secs: 30,
            },
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            input: input.as_bytes().to_vec(),
            sig: URL_SAFE_NO_PAD.decode(sig).unwrap(),
            now: portcullis::runtime::unix_now(),
            ring,
        }
    }

    /// HMAC-SHA256 of the token's signing input, compared in constant time with its MAC.
    fn bare_hmac(&self) -> bool {
        hmac::verify(&self.key, black_box(&self.input), &self.sig).is_ok()
    }

    /// What a request pays: the per-thread cache (a miss), then the full verification.
    fn verify(&self, token: &str) -> Arc<Claims> {
        let (ring, expect, now) = (&self.ring, &self.expect, self.now);
        cache::verify(ring, expect, black_box(token), TokenType::Access, now).unwrap()
    }
}

/// `HOT_PATH_REPEAT=CASE:N`: run one case N times and exit, for an instruction count under
/// callgrind (benches/callgrind_verify.sh runs each case at two N and takes the difference,
/// so set-up cancels out). Cases: `bare_hmac`, `uncached` (N distinct tokens, minted before
/// the loop), `verify` (the verifier without the cache, one token), `cached` (cache hits).
pub fn repeat(spec: &str) {
    let (name, n) = spec.split_once(':').expect("HOT_PATH_REPEAT=CASE:N");
    let n: usize = n.parse().expect("N is a count");
    let case = FirstVerification::new();
    // The same set-up at every N: a pool of POOL tokens, of which the loop uses the first N.
    const POOL: usize = 4000;
    assert!(n <= POOL, "N at most {POOL}");
    let pool: Vec<String> = (0..POOL).map(|_| fresh_token(&case.ring)).collect();
    let mut ok = 0usize;
    for token in &pool[..n] {
        ok += match name {
            "bare_hmac" => case.bare_hmac() as usize,
            "uncached" => case.verify(token).exp.min(1) as usize,
            "verify" => {
                let (ring, expect) = (&case.ring, &case.expect);
                let claims = verify::verify(ring, expect, &pool[0], TokenType::Access, case.now);
                claims.unwrap().exp.min(1) as usize
            }
            "cached" => case.verify(&pool[0]).exp.min(1) as usize,
            other => panic!("unknown case {other}"),
        };
    }
    assert_eq!(ok, n);
}
