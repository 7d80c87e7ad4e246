//! The configuration files as written: serde structs mirroring the TOML field for field.
//!
//! Nothing here is seen by the request path; `compile` turns these into typed values.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
pub use crate::cookies::SameSite;
pub use crate::forward::proxies::ForwardTrust;
pub use crate::policy::Auth;
pub use crate::revoke::OnError;
use crate::token::Alg;

/// gateway.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Listeners and connection limits.
    pub listen: Listen,
    /// Admin listener (/healthz, /readyz).
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Token issuing and verification settings.
    pub tokens: Tokens,
    /// The key ring.
    #[serde(default)]
    pub keys: Vec<Spanned<Key>>,
    /// Identity header names.
    #[serde(default)]
    pub identity: Identity,
    /// Where the route table lives.
    pub routes: RoutesRef,
    /// Defaults for forwarding to upstreams.
    #[serde(default)]
    pub proxy: Proxy,
    /// The user store behind /auth/login.
    #[serde(default)]
    pub users: Users,
    /// Failed-login throttling.
    #[serde(default)]
    pub login: Login,
    /// Where revocations live.
    #[serde(default)]
    pub store: Store,
    /// The endpoints the gateway answers itself.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Forward-auth for a front proxy (nginx auth_request, Traefik ForwardAuth).
    #[serde(default)]
    pub forward_auth: ForwardAuth,
    /// External identity providers whose access tokens are accepted too.
    #[serde(default)]
    pub issuers: Vec<Spanned<Issuer>>,
    /// Cookie mode for browsers.
    #[serde(default)]
    pub cookies: Cookies,
    /// The sign-in pages for people in browsers (needs cookie mode).
    #[serde(default)]
    pub sign_in: SignIn,
    /// The key that seals second-factor secrets.
    #[serde(default)]
    pub second_factor: SecondFactor,
    /// Passkeys (WebAuthn): the relying party the browser signs for.
    #[serde(default)]
    pub passkeys: Passkeys,
    /// The key that signs X-Auth-Assertion for upstreams with `assertion = true`.
    #[serde(default)]
    pub assertion: Option<Spanned<Assertion>>,
}

/// `[assertion]`: a dedicated asymmetric key, never used for access tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// Key id in the assertion header and the JWKS; distinct from every `[[keys]]` kid.
    pub kid: Spanned<String>,
    /// Asymmetric algorithm (EdDSA by default): upstreams verify with the public half.
    #[serde(default = "default_assertion_alg")]
    pub alg: Spanned<Alg>,
    /// PKCS#8 PEM private key.
    pub private_key: Spanned<String>,
    /// Lifetime of each assertion, at most 60 s.
    #[serde(default = "default_assertion_ttl")]
    pub ttl: Spanned<HumanDuration>,
}

fn default_assertion_alg() -> Spanned<Alg> {
    Spanned::new(0..0, Alg::EdDSA)
}
fn default_assertion_ttl() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(std::time::Duration::from_secs(60)))
}

/// `[listen]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// HTTPS listener address.
    #[serde(deserialize_with = "socket_addr")]
    pub addr: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert: Spanned<String>,
    /// PEM private key.
    pub tls_key: Spanned<String>,
    /// Optional plain-HTTP listener, for use behind a TLS-terminating load balancer.
    #[serde(default, deserialize_with = "optional_socket_addr")]
    pub plain_addr: Option<SocketAddr>,
    /// Time allowed for the TLS handshake and for a request's headers to arrive.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: HumanDuration,
    /// A keep-alive connection with no request in flight is closed after this long.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Largest request head accepted; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: Spanned<usize>,
    /// Most header fields a request may carry; more gets 431.
    #[serde(default = "default_max_header_fields")]
    pub max_header_fields: Spanned<usize>,
    /// Strict-Transport-Security value added to answers to HTTPS clients; none when absent.
    #[serde(default)]
    pub hsts: Option<Spanned<String>>,
    /// Connections served at once; more wait in the kernel backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: Spanned<usize>,
    /// Load balancers whose X-Forwarded-For / -Proto are believed (CIDR ranges).
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// On SIGTERM, how long in-flight requests may take to finish.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: HumanDuration,
}

fn default_shutdown_grace() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// A listening address: an IP and a port. A host name is refused with a message that says
/// so, since a socket binds to an address, not to a name that may resolve to several.
fn socket_addr<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid listening address {text:?} (expected an IP address and port such as \
             \"0.0.0.0:8443\", \"127.0.0.1:8443\" or \"[::1]:8443\"; a host name such as \
             localhost cannot be used)"
        ))
    })
}

fn optional_socket_addr<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(deserializer).map(Some)
}

fn default_header_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_max_header_bytes() -> Spanned<usize> {
    Spanned::new(0..0, 16 * 1024)
}
fn default_max_header_fields() -> Spanned<usize> {
    Spanned::new(0..0, 100)
}
fn default_max_connections() -> Spanned<usize> {
    Spanned::new(0..0, 10_000)
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Plain-HTTP admin address; keep it on loopback or a private network.
    #[serde(deserialize_with = "socket_addr")]
    pub addr: SocketAddr,
}

/// `[tokens]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// `iss` of issued tokens, required on verified ones.
    pub issuer: Spanned<String>,
    /// `aud` of issued tokens, required on verified ones.
    pub audience: Spanned<String>,
    /// Lifetime of access tokens.
    #[serde(default = "default_access_ttl")]
    pub access_ttl: HumanDuration,
    /// Lifetime of refresh tokens.
    #[serde(default = "default_refresh_ttl")]
    pub refresh_ttl: HumanDuration,
    /// Clock skew tolerated on exp and nbf.
    #[serde(default = "default_leeway")]
    pub leeway: HumanDuration,
    /// The kid of the key that signs new tokens.
    pub signing_kid: Spanned<String>,
    /// Redeeming a just-spent refresh token again within this returns the same new pair.
    #[serde(default = "default_reuse_grace")]
    pub refresh_reuse_grace: HumanDuration,
    /// Rotations one token family may make per `refresh_limit_window`; more get 429.
    #[serde(default = "default_refresh_limit")]
    pub refresh_limit: u32,
    /// The window `refresh_limit` counts in.
    #[serde(default = "default_refresh_limit_window")]
    pub refresh_limit_window: HumanDuration,
}

fn default_refresh_limit() -> u32 {
    10
}

fn default_refresh_limit_window() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}

fn default_reuse_grace() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

fn default_access_ttl() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(15 * 60))
}
fn default_refresh_ttl() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(14 * 86_400))
}
fn default_leeway() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// One `[[keys]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// Key id, matched against the token header's `kid`.
    pub kid: String,
    /// The one algorithm this key verifies and signs with.
    pub alg: Alg,
    /// PKCS#8 PEM private key (asymmetric algorithms).
    #[serde(default)]
    pub private_key: Option<Spanned<String>>,
    /// SPKI PEM public key (verify only).
    #[serde(default)]
    pub public_key: Option<Spanned<String>>,
    /// Environment variable holding an HMAC secret.
    #[serde(default)]
    pub secret_env: Option<Spanned<String>>,
    /// File holding an HMAC secret.
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    /// Retired key: still verifies, never signs.
    #[serde(default)]
    pub verify_only: bool,
}

/// `[identity]`: the headers the upstream receives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Header carrying `sub`.
    #[serde(default = "default_user_header")]
    pub user: Spanned<String>,
    /// Header carrying the roles, comma separated.
    #[serde(default = "default_roles_header")]
    pub roles: Spanned<String>,
    /// Claim name -> header name, for extra claims.
    #[serde(default)]
    pub claims: BTreeMap<String, Spanned<String>>,
    /// Client-sent headers with this prefix (any case, `_` or `.` for `-`) are removed.
    #[serde(default = "default_strip_prefix")]
    pub strip_prefix: Spanned<String>,
    /// Whether the Authorization header reaches the upstream.
    #[serde(default = "default_true")]
    pub forward_authorization: bool,
    /// Header carrying the signed identity assertion (upstreams with `assertion = true`).
    #[serde(default = "default_assertion_header")]
    pub assertion: Spanned<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            user: default_user_header(),
            roles: default_roles_header(),
            claims: BTreeMap::new(),
            strip_prefix: default_strip_prefix(),
            forward_authorization: true,
            assertion: default_assertion_header(),
        }
    }
}

fn default_user_header() -> Spanned<String> {
    Spanned::new(0..0, "X-Auth-User".to_string())
}
fn default_roles_header() -> Spanned<String> {
    Spanned::new(0..0, "X-Auth-Roles".to_string())
}
fn default_assertion_header() -> Spanned<String> {
    Spanned::new(0..0, "X-Auth-Assertion".to_string())
}
fn default_strip_prefix() -> Spanned<String> {
    Spanned::new(0..0, "X-Auth-".to_string())
}
fn default_true() -> bool {
    true
}

/// `[proxy]`: what every route gets unless it says otherwise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// How long an upstream may send no response body bytes before the response is cut.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Spanned<HumanDuration>,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            read_timeout: default_read_timeout(),
        }
    }
}

/// `[proxy] read_timeout` when gateway.toml sets none: nginx's `proxy_read_timeout`.
pub const DEFAULT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn default_read_timeout() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(DEFAULT_READ_TIMEOUT))
}

/// `[routes]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesRef {
    /// Path of routes.toml, relative to gateway.toml's directory.
    pub file: String,
}

/// routes.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Named upstreams.
    #[serde(default)]
    pub upstreams: BTreeMap<String, Upstream>,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// `[upstreams.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `http://host:port`, optionally with a base path.
    pub url: Spanned<String>,
    /// Time allowed to open a connection; past it, 504.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Time allowed for the response head; past it, 504.
    #[serde(default = "default_upstream_timeout")]
    pub timeout: HumanDuration,
    /// Add X-Auth-Assertion, a short-lived JWT signed by the `[assertion]` key.
    #[serde(default)]
    pub assertion: Option<Spanned<bool>>,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(2))
}
fn default_upstream_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path pattern: literal segments, `*` for one segment, trailing `**` for the rest.
    pub path: Spanned<String>,
    /// Only this Host (no port); any host when absent.
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    /// Only these methods; any when absent.
    #[serde(default)]
    pub methods: Option<Spanned<Vec<String>>>,
    /// Name of an upstream in this file.
    pub upstream: Spanned<String>,
    /// `none` or `required`.
    #[serde(default = "default_auth")]
    pub auth: Spanned<Auth>,
    /// At least one of these roles.
    #[serde(default)]
    pub roles_any: Option<Spanned<Vec<String>>>,
    /// Every one of these roles.
    #[serde(default)]
    pub roles_all: Option<Spanned<Vec<String>>>,
    /// None of these roles.
    #[serde(default)]
    pub roles_none: Option<Spanned<Vec<String>>>,
    /// At least one of these scopes (`scope` string or `scp` claim).
    #[serde(default)]
    pub scopes_any: Option<Spanned<Vec<String>>>,
    /// Every one of these scopes.
    #[serde(default)]
    pub scopes_all: Option<Spanned<Vec<String>>>,
    /// Claim path -> condition (a value, or `{ equals | contains | one_of = ... }`).
    #[serde(default)]
    pub claims: Option<Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>>,
    /// The token's `amr` must hold `mfa` (a second factor, or a passkey with verification).
    #[serde(default)]
    pub mfa: Option<Spanned<bool>>,
    /// The token's `amr` must hold one of these RFC 8176 method values.
    #[serde(default)]
    pub amr_any: Option<Spanned<Vec<String>>>,
    /// The token's `idp` must be one of these sign-in provider ids.
    #[serde(default)]
    pub idp_any: Option<Spanned<Vec<String>>>,
    /// The sign-in (`auth_time`) must be at most this old.
    #[serde(default)]
    pub max_auth_age: Option<Spanned<HumanDuration>>,
    /// Prefix removed from the path before forwarding.
    #[serde(default)]
    pub strip_prefix: Option<Spanned<String>>,
    /// Overrides `[proxy] read_timeout` of gateway.toml for this route.
    #[serde(default)]
    pub read_timeout: Option<Spanned<HumanDuration>>,
    /// Whether a browser navigation without a session is sent to the sign-in page
    /// (with `[sign_in]` enabled) instead of getting 401.
    #[serde(default = "default_true")]
    pub sign_in: bool,
}

fn default_auth() -> Spanned<Auth> {
    Spanned::new(0..0, Auth::Required)
}

/// Which user store checks passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UsersBackend {
    /// users.toml with argon2id hashes.
    #[default]
    File,
    /// POST the credentials to an existing backend.
    Http,
    /// One hash per user in the `[store]` Redis (needs `[store] backend = "redis"`).
    Redis,
}

/// `[users]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// `file`, `http` or `redis`.
    #[serde(default = "default_users_backend")]
    pub backend: Spanned<UsersBackend>,
    /// users.toml (file backend), relative to gateway.toml.
    #[serde(default = "default_users_file")]
    pub file: String,
    /// Credential-check URL (http backend).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Time allowed for the http backend to answer.
    #[serde(default = "default_users_timeout")]
    pub timeout: HumanDuration,
    /// Whether POST /auth/register exists.
    #[serde(default)]
    pub registration: bool,
    /// Roles given to self-registered users.
    #[serde(default)]
    pub default_roles: Vec<String>,
    /// Password hashes computed at once (default: half the CPUs, at least 1).
    #[serde(default)]
    pub hash_workers: Option<Spanned<usize>>,
    /// Logins allowed to wait for a hash worker; more get 503 at once.
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            backend: Spanned::new(0..0, UsersBackend::File),
            file: default_users_file(),
            url: None,
            timeout: default_users_timeout(),
            registration: false,
            default_roles: Vec::new(),
            hash_workers: None,
            hash_queue: default_hash_queue(),
        }
    }
}

fn default_users_backend() -> Spanned<UsersBackend> {
    Spanned::new(0..0, UsersBackend::File)
}
fn default_users_file() -> String {
    "users.toml".to_string()
}
fn default_users_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(2))
}
fn default_hash_queue() -> usize {
    64
}

/// `[login]`: failed attempts allowed per window before 429.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Failures per username.
    #[serde(default = "default_per_user")]
    pub max_failures_per_user: Spanned<u32>,
    /// Failures per client IP (IPv6: per /64).
    #[serde(default = "default_per_ip")]
    pub max_failures_per_ip: Spanned<u32>,
    /// The window the counts run over; also the longest Retry-After.
    #[serde(default = "default_login_window")]
    pub window: Spanned<HumanDuration>,
}

impl Default for Login {
    fn default() -> Self {
        Login {
            max_failures_per_user: default_per_user(),
            max_failures_per_ip: default_per_ip(),
            window: default_login_window(),
        }
    }
}

fn default_per_user() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}
fn default_per_ip() -> Spanned<u32> {
    Spanned::new(0..0, 20)
}
fn default_login_window() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(std::time::Duration::from_secs(15 * 60)))
}

/// Which revocation store is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// In this process only.
    #[default]
    Memory,
    /// Shared by every instance through Redis, mirrored locally.
    Redis,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `memory` or `redis`.
    #[serde(default = "default_store_backend")]
    pub backend: Spanned<StoreBackend>,
    /// redis://, rediss://, unix://, redis[s]+sentinel:// or redis[s]+cluster:// URL (may carry
    /// a password: prefer `redis_url_env`, or `password_file`/`password_env`).
    #[serde(default)]
    pub redis_url: Option<Spanned<String>>,
    /// Environment variable holding the Redis URL.
    #[serde(default)]
    pub redis_url_env: Option<Spanned<String>>,
    /// File holding the Redis password (replaces the URL's; trailing newline dropped).
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    /// Environment variable holding the Redis password (replaces the URL's).
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// Key prefix, so several gateways (or tests) can share one Redis.
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
    /// `deny` (503) or `allow` when the store cannot answer.
    #[serde(default)]
    pub on_error: OnError,
    /// How long the revocation mirror still decides alone after losing sync with Redis.
    #[serde(default = "default_max_mirror_staleness")]
    pub max_mirror_staleness: HumanDuration,
    /// How often the mirror pings its subscription: a connection gone silent (a network
    /// partition) is noticed within this and a second.
    #[serde(default = "default_ping_interval")]
    pub ping_interval: Spanned<HumanDuration>,
    /// Replicas that must hold a revocation (`WAIT`) before it is acknowledged; 0: none.
    #[serde(default)]
    pub min_replica_acks: u32,
    /// How long a revocation waits for those replicas before answering 503.
    #[serde(default = "default_replica_ack_timeout")]
    pub replica_ack_timeout: HumanDuration,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            backend: Spanned::new(0..0, StoreBackend::Memory),
            redis_url: None,
            redis_url_env: None,
            password_file: None,
            password_env: None,
            prefix: default_redis_prefix(),
            on_error: OnError::Deny,
            max_mirror_staleness: default_max_mirror_staleness(),
            ping_interval: default_ping_interval(),
            min_replica_acks: 0,
            replica_ack_timeout: default_replica_ack_timeout(),
        }
    }
}

fn default_store_backend() -> Spanned<StoreBackend> {
    Spanned::new(0..0, StoreBackend::Memory)
}

fn default_max_mirror_staleness() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

fn default_ping_interval() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(std::time::Duration::from_secs(5)))
}

fn default_replica_ack_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(500))
}

fn default_redis_prefix() -> String {
    "portcullis:".to_string()
}

/// `[endpoints]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Prefix of login, refresh, logout and register.
    #[serde(default = "default_prefix")]
    pub prefix: Spanned<String>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            prefix: default_prefix(),
        }
    }
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "/auth".to_string())
}

/// `[forward_auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuth {
    /// Whether the endpoint exists (off by default).
    #[serde(default)]
    pub enabled: bool,
    /// Its path; `{endpoints.prefix}/verify` when absent.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// Which proxy's headers are read; required when enabled.
    #[serde(default)]
    pub trust: Option<Spanned<ForwardTrust>>,
    /// Peers (CIDR) allowed to call it; any peer when empty.
    #[serde(default)]
    pub callers: Vec<Spanned<String>>,
}

/// One `[[issuers]]` entry: an external identity provider (OpenID Connect or plain JWKS).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// `iss` of its tokens, compared exactly.
    pub issuer: Spanned<String>,
    /// The audience its tokens' `aud` must contain.
    pub audience: Spanned<String>,
    /// The JWK Set URL (https, or http to a loopback address).
    #[serde(default)]
    pub jwks_url: Option<Spanned<String>>,
    /// The OpenID Connect discovery document URL, whose `jwks_uri` is used.
    #[serde(default)]
    pub discovery_url: Option<Spanned<String>>,
    /// Algorithms its tokens may use; asymmetric only.
    #[serde(default = "default_issuer_algorithms")]
    pub algorithms: Spanned<Vec<Alg>>,
    /// Dotted path of the roles claim, such as `realm_access.roles` or `groups`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: Spanned<String>,
    /// Shortest time between key refreshes; also the retry delay after a failed fetch.
    #[serde(default = "default_refresh_min")]
    pub refresh_min: HumanDuration,
    /// Longest time between key refreshes (and the interval without a Cache-Control max-age).
    #[serde(default = "default_refresh_max")]
    pub refresh_max: HumanDuration,
    /// At most one refetch for tokens with an unknown kid per this interval.
    #[serde(default = "default_unknown_kid_refetch")]
    pub unknown_kid_refetch: HumanDuration,
    /// Time allowed for one fetch of the keys.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: HumanDuration,
}

fn default_issuer_algorithms() -> Spanned<Vec<Alg>> {
    Spanned::new(0..0, vec![Alg::RS256])
}
fn default_roles_claim() -> Spanned<String> {
    Spanned::new(0..0, "roles".to_string())
}
fn default_refresh_min() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_refresh_max() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}
fn default_unknown_kid_refetch() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}
fn default_fetch_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

/// `[cookies]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cookies {
    /// Whether login and refresh also set cookies, and the access cookie is read.
    #[serde(default)]
    pub enabled: bool,
    /// SameSite of every cookie.
    #[serde(default)]
    pub same_site: SameSite,
    /// The header that repeats the CSRF cookie on unsafe methods.
    #[serde(default = "default_csrf_header")]
    pub csrf_header: Spanned<String>,
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies {
            enabled: false,
            same_site: SameSite::Strict,
            csrf_header: default_csrf_header(),
        }
    }
}

fn default_csrf_header() -> Spanned<String> {
    Spanned::new(0..0, "X-CSRF-Token".to_string())
}

/// `[second_factor]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    /// File holding the sealing key (base64 of 32 bytes).
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
    /// Environment variable holding the sealing key.
    #[serde(default)]
    pub key_env: Option<Spanned<String>>,
    /// File holding the key being rotated out: it still opens secrets and checks recovery
    /// codes, never seals.
    #[serde(default)]
    pub previous_key_file: Option<Spanned<String>>,
    /// Environment variable holding the key being rotated out.
    #[serde(default)]
    pub previous_key_env: Option<Spanned<String>>,
    /// The name authenticator apps show beside the user's.
    #[serde(default)]
    pub issuer: Option<Spanned<String>>,
}

/// `[passkeys]`: on when `rp_id` is set (needs the sign-in pages).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passkeys {
    /// The relying-party id: the gateway's host name as browsers see it (no scheme, no port).
    #[serde(default)]
    pub rp_id: Option<Spanned<String>>,
    /// The origins pages are served on (`https://host`, any port); default `https://{rp_id}`.
    #[serde(default)]
    pub origins: Vec<Spanned<String>>,
    /// The name authenticators show for the gateway (default: the sign-in title).
    #[serde(default)]
    pub rp_name: Option<Spanned<String>>,
}

/// `[sign_in]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Whether the sign-in pages exist and navigations are redirected to them.
    #[serde(default)]
    pub enabled: bool,
    /// Hosts besides the request's own that `rd` may send the browser to:
    /// exact names, or `*.example.com` for any name below it.
    #[serde(default)]
    pub allowed_redirect_hosts: Vec<Spanned<String>>,
    /// Shown on the pages.
    #[serde(default)]
    pub title: Option<Spanned<String>>,
    /// OpenID Connect providers people may sign in with, a button each.
    #[serde(default)]
    pub providers: Vec<Spanned<SignInProvider>>,
}

/// One `[[sign_in.providers]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInProvider {
    /// In URLs and the `idp` claim: lowercase letters, digits and `-`.
    pub id: Spanned<String>,
    /// The button's text (default "Sign in with {id}").
    #[serde(default)]
    pub title: Option<Spanned<String>>,
    /// The provider's issuer; discovery is read below it.
    pub issuer: Spanned<String>,
    /// The gateway's client id at the provider.
    pub client_id: Spanned<String>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<Spanned<String>>,
    /// File holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<Spanned<String>>,
    /// Private key PEM (PKCS#8, as `portcullis keygen` writes) for `private_key_jwt`.
    #[serde(default)]
    pub client_key_file: Option<Spanned<String>>,
    /// The client key's algorithm (asymmetric only).
    #[serde(default = "default_client_key_alg")]
    pub client_key_alg: Spanned<Alg>,
    /// The kid the provider knows the client key by; no kid in the assertion when absent.
    #[serde(default)]
    pub client_key_id: Option<Spanned<String>>,
    /// Requested scopes; must include "openid".
    #[serde(default = "default_provider_scopes")]
    pub scopes: Spanned<Vec<String>>,
    /// Dotted path of the roles claim in the ID token.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: Spanned<String>,
    /// Token endpoint authentication (default: the first discovery offers that the gateway
    /// supports).
    #[serde(default)]
    pub client_auth: Option<crate::issuers::provider::ClientAuth>,
    /// Email domains let in (the ID token's email, verified); empty lets everyone in.
    #[serde(default)]
    pub allowed_domains: Vec<Spanned<String>>,
    /// Where the provider sends the browser after its own sign-out: an absolute https URL,
    /// or a path on the host the sign-out came in on. Registered at the provider.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<Spanned<String>>,
    /// Algorithms its ID tokens may use (asymmetric only).
    #[serde(default = "default_issuer_algorithms")]
    pub algorithms: Spanned<Vec<Alg>>,
    /// Time allowed for one call to the provider (discovery, keys, token exchange).
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: HumanDuration,
}

fn default_client_key_alg() -> Spanned<Alg> {
    Spanned::new(0..0, Alg::RS256)
}

fn default_provider_scopes() -> Spanned<Vec<String>> {
    Spanned::new(
        0..0,
        ["openid", "profile", "email"].map(String::from).to_vec(),
    )
}
