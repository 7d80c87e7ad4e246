//! The immutable runtime configuration every request borrows, swapped whole on reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::forward::headers::IdentityHeaders;
use crate::forward::proxies::{Cidr, ForwardTrust};
use crate::forward::upstream::Upstream;
use crate::policy::Policy;
use crate::route::Table;
use crate::token::keys::KeyRing;
use crate::token::verify::Expectations;

/// A compiled route: where it goes and what it demands.
#[derive(Debug)]
pub struct Route {
    /// The pattern as written, for logs.
    pub pattern: String,
    /// Where the route is defined, as "path/routes.toml:LINE:COL", for `explain`.
    pub origin: String,
    /// Where approved requests go.
    pub upstream: Arc<Upstream>,
    /// Who may pass.
    pub policy: Policy,
    /// Prefix removed before forwarding.
    pub strip_prefix: Option<String>,
    /// How long the upstream may send no response body bytes before the response is cut.
    pub read_timeout: std::time::Duration,
    /// Signs X-Auth-Assertion when the upstream asks for it.
    pub assertion: Option<crate::assertion::RouteAssertion>,
    /// Whether a browser navigation without a session goes to the sign-in page.
    pub sign_in: bool,
    /// Requests answered on this route, by status class; shared with the route it replaces
    /// on reload (see [`Snapshot::adopt_counters`]).
    pub stats: Arc<RouteStats>,
}

/// Per-route counters: plain atomics, so counting costs no lock.
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Responses by status class: 1xx .. 5xx.
    pub by_class: [std::sync::atomic::AtomicU64; 5],
}

impl RouteStats {
    /// Counts one response.
    pub fn record(&self, status: http::StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Token lifetimes for minting.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    /// Access token lifetime.
    pub access: Duration,
    /// Refresh token lifetime.
    pub refresh: Duration,
}

/// Everything the request path reads, built by `config::load` and never mutated.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled route table.
    pub routes: Table<Route>,
    /// Verification and signing keys.
    pub keys: KeyRing,
    /// Issuer, audience and leeway every token must satisfy.
    pub expect: Expectations,
    /// Lifetimes of minted tokens.
    pub lifetimes: TokenLifetimes,
    /// Identity header names.
    pub identity: IdentityHeaders,
    /// The TLS server configuration (certificate swap on reload).
    pub tls: Arc<rustls::ServerConfig>,
    /// Settings of the endpoints the gateway answers itself.
    pub auth: AuthSettings,
    /// The JWK Set served at /.well-known/jwks.json, serialized once.
    pub jwks: bytes::Bytes,
    /// Peers whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<crate::forward::proxies::Cidr>,
    /// Strict-Transport-Security for answers to HTTPS clients, when configured.
    pub hsts: Option<http::HeaderValue>,
    /// External identity providers whose access tokens are accepted (empty: off).
    pub issuers: crate::issuers::Issuers,
}

impl Snapshot {
    /// Continues the counters of `old`, the snapshot this one replaces, so that a reload
    /// (a users.toml change, SIGHUP) never sets /metrics back: a route whose series labels
    /// (pattern and origin) are unchanged shares its old counters, and an upstream of the
    /// same name starts from its old stall count. A route that moved in routes.toml is a
    /// new series and starts at zero.
    ///
    /// An upstream whose name and address are unchanged also keeps its connection pool (see
    /// `Upstream::with_pool_of`), and with it its stall count.
    pub fn adopt_counters(&mut self, old: &Snapshot) {
        let mut stats = std::collections::HashMap::new();
        let mut upstreams = std::collections::HashMap::new();
        for route in (0..old.routes.len()).filter_map(|i| old.routes.get(i)) {
            stats.insert(
                (route.pattern.as_str(), route.origin.as_str()),
                &route.stats,
            );
            upstreams.insert(route.upstream.name.clone(), Arc::clone(&route.upstream));
        }
        // One replacement per upstream, so that the routes sharing it still share one.
        let mut adopted: std::collections::HashMap<String, Arc<Upstream>> = Default::default();
        for route in self.routes.values_mut() {
            if let Some(old) = stats.get(&(route.pattern.as_str(), route.origin.as_str())) {
                route.stats = Arc::clone(old);
            }
            let name = route.upstream.name.clone();
            if let Some(replacement) = adopted.get(&name) {
                route.upstream = Arc::clone(replacement);
                continue;
            }
            // Routes share their upstream: each old count is carried over once.
            if let Some(old) = upstreams.remove(&name) {
                match route.upstream.with_pool_of(&old) {
                    Some(kept) => route.upstream = Arc::new(kept),
                    None => route.upstream.add_stalls(old.stalls()),
                }
            }
            adopted.insert(name, Arc::clone(&route.upstream));
        }
    }
}

/// Settings of /auth/*.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Path prefix of login, refresh, logout and register (no trailing '/').
    pub prefix: String,
    /// Whether POST {prefix}/register exists.
    pub registration: bool,
    /// Roles given to self-registered users.
    pub default_roles: Vec<String>,
    /// Milliseconds within which a just-spent refresh token returns the same successor pair.
    pub reuse_grace_ms: u64,
    /// Rotations allowed per token family and window.
    pub refresh_limit: crate::revoke::RefreshLimit,
    /// The forward-auth endpoint, when enabled.
    pub forward_auth: Option<ForwardAuth>,
    /// Cookie mode, when enabled.
    pub cookies: Option<crate::cookies::CookieSettings>,
    /// The sign-in pages, when enabled (always with cookie mode).
    pub sign_in: Option<SignInSettings>,
    /// Second factors, when a sealing key is configured.
    pub second_factor: Option<SecondFactorSettings>,
    /// Passkeys, when `[passkeys] rp_id` is set.
    pub passkeys: Option<PasskeySettings>,
}

/// The compiled `[passkeys]` section.
#[derive(Clone)]
pub struct PasskeySettings {
    /// Checks registrations and assertions for this relying party.
    pub webauthn: std::sync::Arc<webauthn_rs::Webauthn>,
    /// The relying-party id.
    pub rp_id: String,
}

impl std::fmt::Debug for PasskeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeySettings")
            .field("rp_id", &self.rp_id)
            .finish_non_exhaustive()
    }
}

/// The compiled `[second_factor]` section.
#[derive(Debug, Clone)]
pub struct SecondFactorSettings {
    /// Seals and opens TOTP secrets.
    pub key: std::sync::Arc<crate::users::sealed::SealKey>,
    /// The issuer name in `otpauth://` URIs.
    pub issuer: String,
}

/// The compiled `[sign_in]` section.
#[derive(Debug, Clone)]
pub struct SignInSettings {
    /// Shown on the pages.
    pub title: String,
    /// Hosts besides the request's own that a redirect may go to.
    pub allowed_hosts: Vec<HostRule>,
    /// The pages' Content-Security-Policy, up to the per-response style nonce.
    pub csp_prefix: String,
    /// OpenID Connect providers, a button each on the sign-in page.
    pub providers: Vec<std::sync::Arc<crate::issuers::provider::Provider>>,
}

/// One `allowed_redirect_hosts` entry, lowercase ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// This name only.
    Exact(String),
    /// Any name ending in this suffix (which starts with '.').
    Below(String),
}

impl SignInSettings {
    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Option<&crate::issuers::provider::Provider> {
        self.providers.iter().find(|p| p.id == id).map(|p| &**p)
    }
}

/// The sign-in providers' keys, to fetch like `[[issuers]]` keys (none without sign-in).
pub fn provider_keys(sign_in: Option<&SignInSettings>) -> crate::issuers::Issuers {
    let providers = sign_in.map(|s| s.providers.as_slice()).unwrap_or_default();
    crate::issuers::Issuers(providers.iter().map(|p| p.keys.clone()).collect())
}

impl HostRule {
    /// Whether a lowercase host name is allowed by this rule.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(name) => host == name,
            HostRule::Below(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// The compiled `[forward_auth]` section.
#[derive(Debug, Clone)]
pub struct ForwardAuth {
    /// The endpoint's path (normalized, no trailing '/').
    pub path: String,
    /// Whose headers carry the original request; the other kind is ignored.
    pub trust: ForwardTrust,
    /// Peers allowed to ask; any peer when empty.
    pub callers: Vec<Cidr>,
}

/// Listener settings, fixed for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSettings {
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Optional plain-HTTP address.
    pub plain_addr: Option<SocketAddr>,
    /// Admin address (/healthz, /readyz).
    pub admin_addr: Option<SocketAddr>,
    /// TLS handshake and request-head deadline.
    pub header_timeout: Duration,
    /// Close a connection after this long without a byte either way.
    pub idle_timeout: Duration,
    /// Largest accepted request head.
    pub max_header_bytes: usize,
    /// Most header fields a request may carry.
    pub max_header_fields: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight requests get to finish on SIGTERM.
    pub shutdown_grace: Duration,
    /// Certificate file, for reporting.
    pub tls_cert: PathBuf,
}

/// The current snapshot, shared by every connection.
pub type Shared = Arc<ArcSwap<Snapshot>>;

/// Wraps a first snapshot for sharing.
pub fn share(snapshot: Snapshot) -> Shared {
    Arc::new(ArcSwap::from_pointee(snapshot))
}
