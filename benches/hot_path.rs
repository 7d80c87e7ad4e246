//! Micro-benchmarks of the per-request work: path normalization and route match (10 and
//! 1,000 routes), token verification per algorithm (full, and a hit in the per-thread cache
//! of verified tokens) next to the bare aws-lc-rs signature check it wraps, the revocation
//! lookup, the identity-header rewrite, and the request-head checks (size, field count,
//! bearer extraction), and one access-log line on the worker (off, formatted by the tracing
//! subscriber and written synchronously or queued for the log's writer thread, or formatted
//! directly and queued as the gateway does by default).
//!
//! The first verification of an HS256 token (issue 19 target 4) has its own group beside the
//! bare HMAC; `HOT_PATH_REPEAT` runs one case in a loop for callgrind (see [`repeat`]).
//!
//! Run: `cargo bench --bench hot_path`. Keys are generated at run time; none is stored.

use std::hint::black_box;

use aws_lc_rs::{hmac, signature};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, BatchSize, Criterion};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;

use portcullis::forward::headers::{self, IdentityHeaders};
use portcullis::forward::values::ValueBuf;
use portcullis::path;
use portcullis::revoke::memory::MemoryStore;
use portcullis::route::{Matcher, Pattern, Table};
use portcullis::token::cache;
use portcullis::token::keys::{KeyMaterial, KeyRing, KeySpec};
use portcullis::token::mint::{self, Grant};
use portcullis::token::verify::{self, Expectations};
use portcullis::token::{Alg, Claims, TokenType};
use portcullis::tools::keygen::generate_private_pem;

// The first verification of an HS256 token (issue 19 target 4) and its callgrind loop.
#[path = "hot_path/first.rs"]
mod first;
use first::{first_verification, repeat};

const ISSUER: &str = "portcullis";
const AUDIENCE: &str = "portcullis";

/// A table of `n` rules `/svc{i}/v1/*/items/**`, GET only, plus a catch-all public rule.
fn table(n: usize) -> Table<usize> {
    let mut rules: Vec<(Matcher, usize)> = (0..n)
        .map(|i| {
            let matcher = Matcher {
                host: None,
                pattern: Pattern::parse(&format!("/svc{i}/v1/*/items/**")).unwrap(),
                methods: Some(vec![Method::GET]),
            };
            (matcher, i)
        })
        .collect();
    let catch_all = Matcher {
        host: None,
        pattern: Pattern::parse("/public/**").unwrap(),
        methods: None,
    };
    rules.push((catch_all, n));
    Table::new(rules)
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_and_route");
    for n in [10, 1_000] {
        let table = table(n);
        // The last service's rule: a linear scan would pay for every rule before it.
        let raw = format!("/svc{}/v1/tenant-7/items/./42/../43", n - 1);
        group.bench_function(format!("{n}_routes"), |b| {
            b.iter(|| {
                let normalized = path::normalize(black_box(&raw)).unwrap();
                let found = table.find(Some("gw.example:8443"), &Method::GET, &normalized);
                black_box(found.map(|(index, _)| index))
            })
        });
    }
    group.finish();
}

/// A ring with one key for `alg` (kid "bench"), a token it signed, and the private PEM.
fn signed(alg: Alg) -> (KeyRing, String, Option<String>) {
    let (material, pem) = if alg.is_hmac() {
        let secret = b"bench-secret-bench-secret-bench-secret-0123456789".to_vec();
        (KeyMaterial::Secret(secret), None)
    } else {
        let pem = generate_private_pem(alg).unwrap();
        (KeyMaterial::PrivatePem(pem.clone().into_bytes()), Some(pem))
    };
    let spec = KeySpec {
        kid: "bench".into(),
        alg,
        material,
        verify_only: false,
    };
    let ring = KeyRing::new(vec![spec], "bench").unwrap();
    let token = fresh_token(&ring);
    (ring, token, pem)
}

/// A new token from `ring` (its own jti, so never in the cache yet): a gateway-minted access
/// token with one role, 250-300 bytes for HS256.
fn fresh_token(ring: &KeyRing) -> String {
    let roles = vec!["admin".to_owned()];
    let grant = Grant {
        sub: "bench",
        roles: &roles,
        extra: serde_json::Map::new(),
        typ: TokenType::Access,
        fam: None,
        ttl_secs: 3600,
        authn: Default::default(),
    };
    let now = portcullis::runtime::unix_now();
    mint::mint(ring, ISSUER, AUDIENCE, grant, now).unwrap().0
}

/// The bare aws-lc-rs check of `token`'s signature: what jsonwebtoken calls underneath.
fn bare_check(alg: Alg, token: &str, pem: Option<&str>) -> Box<dyn Fn() -> bool> {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let input = input.as_bytes().to_vec();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    if alg == Alg::HS256 {
        let key = hmac::Key::new(
            hmac::HMAC_SHA256,
            b"bench-secret-bench-secret-bench-secret-0123456789",
        );
        return Box::new(move || hmac::verify(&key, black_box(&input), &sig).is_ok());
    }
    let public = rcgen::KeyPair::from_pem(pem.unwrap())
        .unwrap()
        .public_key_raw()
        .to_vec();
    let scheme: &'static dyn signature::VerificationAlgorithm = match alg {
        Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::EdDSA => &signature::ED25519,
        other => panic!("no bare check for {other}"),
    };
    let key = signature::UnparsedPublicKey::new(scheme, public);
    Box::new(move || key.verify(black_box(&input), &sig).is_ok())
}

fn tokens(c: &mut Criterion) {
    let expect = Expectations {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway_secs: 30,
    };
    let mut group = c.benchmark_group("token");
    for alg in [Alg::HS256, Alg::ES256, Alg::RS256, Alg::EdDSA] {
        let (ring, token, pem) = signed(alg);
        let now = portcullis::runtime::unix_now();
        group.bench_function(format!("{alg}/verify"), |b| {
            b.iter(|| {
                verify::verify(&ring, &expect, black_box(&token), TokenType::Access, now).unwrap()
            })
        });
        group.bench_function(format!("{alg}/verify_cached"), |b| {
            b.iter(|| {
                cache::verify(&ring, &expect, black_box(&token), TokenType::Access, now).unwrap()
            })
        });
        let bare = bare_check(alg, &token, pem.as_deref());
        assert!(
            bare(),
            "the bare check must accept the token it is compared on"
        );
        group.bench_function(format!("{alg}/bare_signature"), |b| b.iter(&bare));
    }
    group.finish();
}

fn revocation(c: &mut Criterion) {
    // 10,000 revoked tokens and 1,000 revoked subjects; the lookup is for a live token.
    let store = MemoryStore::new();
    let now = portcullis::runtime::unix_now();
    for i in 0..10_000 {
        store.revoke_jti(&format!("{i:032x}"), now + 900);
    }
    for i in 0..1_000 {
        store.revoke_subject(&format!("user-{i}"), now);
    }
    let jti = "0123456789abcdef0123456789abcdef";
    c.bench_function("revocation/lookup_10k", |b| {
        b.iter(|| store.is_revoked(black_box(jti), "bench", now, None, now))
    });
}

fn identity_headers(c: &mut Criterion) {
    let identity = IdentityHeaders {
        user: HeaderName::from_static("x-auth-user"),
        roles: HeaderName::from_static("x-auth-roles"),
        claims: Vec::new(),
        strip_prefix: "x-auth-".into(),
        assertion: HeaderName::from_static("x-auth-assertion"),
        forward_authorization: true,
    };
    let mut incoming = HeaderMap::new();
    for (name, value) in [
        ("host", "gw.example:8443"),
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("connection", "keep-alive"),
        ("x-auth-user", "forged"),
    ] {
        incoming.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let (ring, token, _) = signed(Alg::HS256);
    let expect = Expectations {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway_secs: 30,
    };
    let now = portcullis::runtime::unix_now();
    let claims: Claims = verify::verify(&ring, &expect, &token, TokenType::Access, now).unwrap();
    let host = HeaderValue::from_static("gw.example:8443");
    c.bench_function("identity_rewrite", |b| {
        b.iter_batched_ref(
            || incoming.clone(),
            |h| {
                headers::sanitize_request(h, &identity, false);
                headers::add_forwarding(h, None, "https", Some(&host));
                headers::add_identity(h, &identity, &claims, &mut ValueBuf::new());
            },
            BatchSize::SmallInput,
        )
    });
}

/// The checks every request's head goes through before routing: its size and field count
/// against the listener limits, and the bearer token taken out of `Authorization`.
fn request_head(c: &mut Criterion) {
    let mut request = http::Request::get("/api/v1/items?page=2").body(()).unwrap();
    for (name, value) in [
        ("host", "gw.example:8443"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("cookie", "theme=dark; lang=en"),
        ("x-request-id", "0123456789abcdef"),
    ] {
        request.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let settings = portcullis::config::snapshot::ListenSettings {
        addr: ([127, 0, 0, 1], 8443).into(),
        plain_addr: None,
        admin_addr: None,
        header_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(60),
        max_header_bytes: 16384,
        max_header_fields: 100,
        max_connections: 10_000,
        shutdown_grace: std::time::Duration::from_secs(30),
        tls_cert: std::path::PathBuf::new(),
    };
    c.bench_function("request_head/check_8_fields", |b| {
        b.iter(|| portcullis::limits::check_head(black_box(&settings), black_box(&request)))
    });
    c.bench_function("request_head/bearer", |b| {
        b.iter(|| verify::bearer(black_box(request.headers())).is_ok())
    });
}

/// One access line as a proxied request writes it, through the same subscriber as the
/// gateway's, to a file: the worker's cost only (the writer thread's runs beside it).
fn access_log(c: &mut Criterion) {
    use portcullis::control::log::{LogWriter, QUEUE_BYTES};
    use portcullis::request::access_log::Trace;
    use portcullis::request::client::ConnInfo;
    use std::sync::Mutex;

    let conn = ConnInfo {
        peer: ([127, 0, 0, 1], 40_000).into(),
        proto: "https",
        client: [127, 0, 0, 1].into(),
    };
    let claims: std::sync::Arc<Claims> = std::sync::Arc::new(
        serde_json::from_value(serde_json::json!({
            "iss": "portcullis", "aud": "portcullis", "sub": "bench", "iat": 1, "nbf": 1, "exp": 2,
            "jti": "j", "roles": ["admin"], "typ": "access",
        }))
        .unwrap(),
    );
    let line = || {
        let mut trace = Trace::new();
        trace.path = trace
            .logging
            .then(|| bytes::Bytes::from_static(b"/api/orders/42"));
        trace.claims = Some(claims.clone());
        trace.request_id = Some(HeaderValue::from_static("0123456789abcdef0123456789abcdef"));
        trace.upstream = Some(std::time::Duration::from_micros(412));
        let took = std::time::Duration::from_micros(655);
        trace.log(&conn, &Method::GET, http::StatusCode::OK, took);
    };
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    bench_line(c, "access_log/off", "warn", std::io::sink, &line);
    bench_line(c, "access_log/format_only", "info", std::io::sink, &line);
    let sync = Mutex::new(file("sync.log"));
    bench_line(c, "access_log/sync_write", "info", sync, &line);
    let (queued, flush) = LogWriter::spawn(file("queued.log"), QUEUE_BYTES).unwrap();
    bench_line(c, "access_log/queued", "info", queued.clone(), &line);
    // As the gateway runs by default: formatted without the subscriber, queued.
    queued.install(true);
    bench_line(c, "access_log/direct_queued", "info", queued.clone(), &line);
    drop(flush);
    // Dropped lines would be a cheaper path than a queued one: say so if there were any.
    eprintln!("access_log/queued: {} lines dropped", queued.dropped());
}

/// `line` under a subscriber as the gateway's (filter `level`) writing to `writer`.
fn bench_line<W>(c: &mut Criterion, name: &str, level: &str, writer: W, line: &dyn Fn())
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function(name, |b| b.iter(line));
    });
}

criterion_group!(
    benches,
    routing,
    tokens,
    first_verification,
    revocation,
    identity_headers,
    request_head,
    access_log
);

fn main() {
    if let Ok(spec) = std::env::var("HOT_PATH_REPEAT") {
        return repeat(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
