//! An external identity provider for `[[issuers]]`: an in-process hyper server on loopback
//! laid out like a Keycloak realm (discovery document, JWK Set), whose published keys the
//! test changes and whose fetches it counts, over plain HTTP or HTTPS (a private CA). Tokens are signed here with its private keys.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::{now_secs, BoxBody};

/// Path of the JWK Set under the issuer URL (Keycloak's).
pub const CERTS_PATH: &str = "/protocol/openid-connect/certs";

/// One provider signing key: its private half (for the test to sign) and its public JWK.
#[derive(Clone, Debug)]
pub struct IdpKey {
    pub kid: String,
    /// "RS256", "ES256" or "EdDSA".
    pub alg: &'static str,
    /// PKCS#8 private key PEM.
    pub private_pem: String,
    /// SPKI public key PEM (what an alg-confusion attacker would use as an HMAC secret).
    pub public_pem: String,
    /// The public key as a JWK, with kid, alg and use.
    pub jwk: Value,
}

impl IdpKey {
    /// A fresh key for `alg` ("RS256" = RSA 2048, "ES256" = P-256, "EdDSA" = Ed25519).
    pub fn generate(kid: &str, alg: &'static str) -> IdpKey {
        let sig_alg = match alg {
            "RS256" => &rcgen::PKCS_RSA_SHA256,
            "ES256" => &rcgen::PKCS_ECDSA_P256_SHA256,
            "EdDSA" => &rcgen::PKCS_ED25519,
            other => panic!("IdpKey::generate: unsupported alg {other}"),
        };
        let pair = rcgen::KeyPair::generate_for(sig_alg).expect("provider keygen");
        let raw = pair.public_key_raw();
        let mut jwk = match alg {
            "RS256" => {
                let (n, e) = rsa_public(raw);
                json!({ "kty": "RSA", "n": b64(n), "e": b64(e) })
            }
            "ES256" => {
                let (x, y) = raw[1..].split_at(32);
                json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) })
            }
            _ => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(raw) }),
        };
        jwk["kid"] = kid.into();
        jwk["alg"] = alg.into();
        jwk["use"] = "sig".into();
        IdpKey {
            kid: kid.to_string(),
            alg,
            private_pem: pair.serialize_pem(),
            public_pem: pair.public_key_pem(),
            jwk,
        }
    }

    /// The jsonwebtoken signing key.
    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        let pem = self.private_pem.as_bytes();
        match self.alg {
            "RS256" => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
            "ES256" => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            _ => jsonwebtoken::EncodingKey::from_ed_pem(pem),
        }
        .expect("provider private key PEM")
    }

    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        self.alg.parse().expect("known alg")
    }
}

/// base64url without padding.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// (n, e) of a DER RSAPublicKey, without the DER sign byte.
fn rsa_public(der: &[u8]) -> (&[u8], &[u8]) {
    fn element(der: &[u8]) -> (&[u8], &[u8]) {
        let (len, start) = match der[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(der[2]), 3),
            0x82 => (usize::from(der[2]) << 8 | usize::from(der[3]), 4),
            other => panic!("unexpected DER length byte {other:#x}"),
        };
        (&der[start..start + len], &der[start + len..])
    }
    let (seq, _) = element(der);
    let (n, rest) = element(seq);
    let (e, _) = element(rest);
    let strip = |int: &[u8]| -> usize { int.iter().take_while(|b| **b == 0).count() };
    (&n[strip(n)..], &e[strip(e)..])
}

/// What the provider serves now.
struct State {
    keys: Vec<IdpKey>,
    cache_control: String,
    /// The `issuer` the discovery document claims, when not the real one.
    advertised: Option<String>,
}

/// The running provider; stopped (connections and listener closed) by `stop` or on drop.
pub struct Idp {
    pub addr: SocketAddr,
    /// `http://ADDR/realms/test`: the `iss` of its tokens.
    pub issuer: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    ca_dir: Option<super::TestDir>,
}

/// Serves one connection with the provider's answers.
async fn serve<S>(io: S, served: Served)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let served = served.clone();
        async move { Ok::<_, Infallible>(served.answer(req)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

impl Idp {
    /// A provider over plain HTTP publishing `keys`, with `Cache-Control: max-age=3600`.
    pub async fn start(keys: Vec<IdpKey>) -> Idp {
        Idp::start_with(keys, None).await
    }

    /// The same over HTTPS, with a self-signed certificate for 127.0.0.1 (see `ca_file`).
    pub async fn start_tls(keys: Vec<IdpKey>) -> Idp {
        let (cert, key, der) = super::tls_cert();
        let dir = super::TestDir::new();
        dir.write("idp-ca.pem", &cert);
        use rustls::pki_types::pem::PemObject as _;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes())
            .expect("provider TLS key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .expect("provider TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Idp::start_with(keys, Some((acceptor, dir))).await
    }

    async fn start_with(
        keys: Vec<IdpKey>,
        tls: Option<(tokio_rustls::TlsAcceptor, super::TestDir)>,
    ) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind provider");
        let addr = listener.local_addr().expect("local addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = format!("{scheme}://{addr}/realms/test");
        let state = Arc::new(Mutex::new(State {
            keys,
            cache_control: "max-age=3600".into(),
            advertised: None,
        }));
        let (acceptor, ca_dir) = tls.unzip();
        let idp = Idp {
            addr,
            issuer: issuer.clone(),
            state,
            jwks_fetches: Arc::default(),
            discovery_fetches: Arc::default(),
            tasks: Arc::default(),
            ca_dir,
        };
        let served = Served {
            issuer,
            state: idp.state.clone(),
            jwks_fetches: idp.jwks_fetches.clone(),
            discovery_fetches: idp.discovery_fetches.clone(),
        };
        let tasks = idp.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (served, acceptor) = (served.clone(), acceptor.clone());
                let conn = tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve(tls, served).await;
                            }
                        }
                        None => serve(stream, served).await,
                    }
                });
                tasks.lock().expect("tasks lock").push(conn.abort_handle());
            }
        });
        idp.tasks
            .lock()
            .expect("tasks lock")
            .push(accept.abort_handle());
        idp
    }

    /// The certificate an HTTPS provider presents, for the gateway's SSL_CERT_FILE.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.ca_dir
            .as_ref()
            .expect("ca_file of a provider started with start_tls")
            .join("idp-ca.pem")
    }

    /// The OpenID Connect discovery URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The JWK Set URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{CERTS_PATH}", self.issuer)
    }

    /// Publish exactly these keys from now on.
    pub fn publish(&self, keys: Vec<IdpKey>) {
        self.state.lock().expect("state lock").keys = keys;
    }

    /// The Cache-Control header of JWK Set answers from now on.
    pub fn cache_control(&self, value: &str) {
        self.state.lock().expect("state lock").cache_control = value.to_string();
    }

    /// From now on the discovery document names `issuer` instead of the real one.
    pub fn advertise_issuer(&self, issuer: &str) {
        self.state.lock().expect("state lock").advertised = Some(issuer.to_string());
    }

    /// JWK Set requests served so far.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Discovery requests served so far.
    pub fn discovery_fetches(&self) -> usize {
        self.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Close the listener and every open connection: the provider is down.
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }

    /// `[[issuers]]` for this provider found through discovery, audience "orders-api", roles
    /// at realm_access.roles, with refreshes and unknown-kid refetches an hour apart so every
    /// fetch is one the test caused; `extra` lines are added to the entry.
    pub fn issuer_toml(&self, extra: &str) -> String {
        format!(
            "[[issuers]]\nissuer = \"{}\"\naudience = \"orders-api\"\ndiscovery_url = \"{}\"\nroles_claim = \"realm_access.roles\"\nrefresh_min = \"1h\"\nrefresh_max = \"1h\"\nunknown_kid_refetch = \"1h\"\n{extra}\n",
            self.issuer,
            self.discovery_url()
        )
    }

    /// A gateway on the standard routes to `upstream` that trusts this provider.
    pub async fn gateway(&self, upstream: &str, extra: &str) -> super::Gateway {
        let cfg = super::GatewayConfig::standard(upstream).extra(&self.issuer_toml(extra));
        super::Gateway::start(cfg).await
    }

    /// Keycloak-like access-token claims: realm roles under `realm_access.roles`.
    pub fn claims(&self, sub: &str, realm_roles: &[&str]) -> Value {
        let now = now_secs();
        json!({
            "iss": self.issuer,
            "aud": ["account", "orders-api"],
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "jti": format!("idp-{sub}-{}", uuid_like()),
            "typ": "Bearer",
            "azp": "web",
            "realm_access": { "roles": realm_roles },
            "tenant": "acme",
        })
    }

    /// A token signed with `key`, its header naming `key`'s kid and alg.
    pub fn sign(&self, key: &IdpKey, claims: &Value) -> String {
        let header = json!({ "alg": key.alg, "typ": "JWT", "kid": key.kid });
        sign_raw(&header, claims, key)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// header.claims signed with `key` under `header`'s alg, built by hand so any header field
/// (jku, x5u, jwk) can be set.
pub fn sign_raw(header: &Value, claims: &Value, key: &IdpKey) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding_key(), key.algorithm())
        .expect("sign token");
    format!("{input}.{sig}")
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

#[derive(Clone)]
struct Served {
    issuer: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
}

impl Served {
    fn answer(&self, req: Request<hyper::body::Incoming>) -> http::Response<BoxBody> {
        let path = req.uri().path();
        let prefix = "/realms/test";
        let (status, body, cache) = match path.strip_prefix(prefix) {
            Some("/.well-known/openid-configuration") => {
                self.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                let advertised = self.state.lock().expect("state lock").advertised.clone();
                let doc = json!({
                    "issuer": advertised.unwrap_or_else(|| self.issuer.clone()),
                    "jwks_uri": format!("{}{CERTS_PATH}", self.issuer),
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                });
                (StatusCode::OK, doc, None)
            }
            Some(CERTS_PATH) => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                let state = self.state.lock().expect("state lock");
                let keys: Vec<Value> = state.keys.iter().map(|k| k.jwk.clone()).collect();
                (
                    StatusCode::OK,
                    json!({ "keys": keys }),
                    Some(state.cache_control.clone()),
                )
            }
            _ => (StatusCode::NOT_FOUND, json!({ "error": "not found" }), None),
        };
        let mut builder = http::Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if let Some(cache) = cache {
            builder = builder.header("cache-control", cache);
        }
        builder
            .body(Full::new(Bytes::from(body.to_string())).boxed())
            .expect("valid response")
    }
}
