//! `portcullis explain`: one request walked through the request path offline, stage by stage.
//!
//! The stages and the functions are those of [`crate::request::pipeline`]: Host check,
//! [`path::normalize`] (400), [`endpoints::classify`], [`route::Table::find`] (404), then for a
//! route that needs a token [`verify::bearer`] and [`verify::verify`] (401) and
//! [`Policy::evaluate`](crate::policy::Policy::evaluate) (403). Refusals are [`Reject`]s, so
//! statuses and reasons come from `reject.rs` exactly as the gateway would answer. Nothing
//! touches the network: the revocation store lives in the running gateway and is not consulted.
//!
//! `portcullis explain` prints the [`Explanation`] on stdout and exits 0 when
//! [`Explanation::allowed`] (forwarded, or answered by a gateway endpoint), 2 on a deny, and
//! 1 when the configuration does not load (clap's own usage errors also exit 2, with no
//! `decision:` line).

use std::borrow::Cow;
use std::fmt;

use http::header::{HeaderValue, AUTHORIZATION};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};

use crate::config::snapshot::{Route, Snapshot};
use crate::policy::Auth;
use crate::policy::Policy;
use crate::reject::Reject;
use crate::request::endpoints::{self, Endpoint};
use crate::token::verify::{self, TokenError};
use crate::token::{Claims, TokenType};
use crate::{path, route};

/// What the gateway would do with one request, and why.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The method asked about.
    pub method: Method,
    /// The request target as given (path and optional query).
    pub target: String,
    /// The Host asked about; None matches only routes without a host.
    pub host: Option<String>,
    /// The normalized path, once normalization succeeded.
    pub normalized: Option<String>,
    /// The gateway endpoint the path names, if any.
    pub endpoint: Option<Endpoint>,
    /// The route that matches, if one does.
    pub route: Option<RouteView>,
    /// Subject and roles of a verified token.
    pub identity: Option<Identity>,
    /// A token was given for a route with auth = "none", so it was not looked at.
    pub token_ignored: bool,
    /// The decision.
    pub verdict: Verdict,
}

/// The decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded to the upstream.
    Allow,
    /// Answered by the gateway itself (login, refresh, ...); never forwarded.
    Gateway(Endpoint),
    /// Refused with the status and reason of this rejection.
    Deny(Reject),
}

/// The matching route as the operator wrote it, plus where the request would go.
#[derive(Debug, Clone)]
pub struct RouteView {
    /// Position in the route file, 0-based.
    pub index: usize,
    /// The path pattern as written.
    pub pattern: String,
    /// "routes.toml:LINE:COL".
    pub origin: String,
    /// The route's host, if it has one.
    pub host: Option<String>,
    /// The route's methods, if it limits them.
    pub methods: Option<Vec<Method>>,
    /// Upstream name.
    pub upstream: String,
    /// Who may pass.
    pub policy: Policy,
    /// Prefix removed before forwarding.
    pub strip_prefix: Option<String>,
    /// Path and query the upstream would see.
    pub forwarded: String,
    /// The absolute upstream URI, when the target can be forwarded.
    pub upstream_uri: Option<String>,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Subject.
    pub sub: String,
    /// Roles, in token order.
    pub roles: Vec<String>,
}

impl Explanation {
    /// True when the request would be forwarded or answered by a gateway endpoint.
    pub fn allowed(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::Gateway(_))
    }
}

/// Same check and message as the pipeline's Host validation.
const BAD_HOST: Reject = Reject::BadRequest("invalid Host (expected host[:port])");

/// Walks `method path` (with optional Host and bearer token) through the request path at `now`.
pub fn explain(
    snap: &Snapshot,
    method: &Method,
    path: &str,
    host: Option<&str>,
    token: Option<&str>,
    now: u64,
) -> Explanation {
    let mut out = Explanation {
        method: method.clone(),
        target: path.to_string(),
        host: host.map(str::to_owned),
        normalized: None,
        endpoint: None,
        route: None,
        identity: None,
        token_ignored: false,
        verdict: Verdict::Allow,
    };
    out.verdict = walk(&mut out, snap, token, now).unwrap_or_else(Verdict::Deny);
    out
}

/// The stages in pipeline order, recording what each found in `out`.
fn walk(
    out: &mut Explanation,
    snap: &Snapshot,
    token: Option<&str>,
    now: u64,
) -> Result<Verdict, Reject> {
    if out
        .host
        .as_deref()
        .is_some_and(|h| !route::is_valid_authority(h))
    {
        return Err(BAD_HOST);
    }
    let target = out.target.clone();
    let (raw_path, query) = split_target(&target)?;
    let normalized = path::normalize(raw_path).map_err(Reject::BadPath)?;
    out.normalized = Some(normalized.to_string());
    if let Some(endpoint) = endpoints::classify(snap, &out.method, &normalized) {
        out.endpoint = Some(endpoint);
        if !endpoints::method_allowed(snap, endpoint, &out.method) {
            return Err(Reject::MethodNotAllowed);
        }
        return Ok(Verdict::Gateway(endpoint));
    }
    let (index, found) = snap
        .routes
        .find(out.host.as_deref(), &out.method, &normalized)
        .ok_or(Reject::NoRoute)?;
    let forwarded: Cow<'_, str> = match &found.strip_prefix {
        Some(prefix) => route::strip_prefix(&normalized, prefix),
        None => Cow::Borrowed(&normalized),
    };
    let uri = found.upstream.uri_for(&forwarded, query);
    let view = RouteView::new(snap, index, found, &forwarded, query, uri.as_ref().ok());
    out.route = Some(view);
    if found.policy.requires_token() {
        let claims = authenticate(snap, token, now)?;
        out.identity = Some(Identity {
            sub: claims.sub.clone(),
            roles: claims.roles.clone(),
        });
        crate::request::authorize::check_policy(&found.policy, &claims, now)?;
    } else {
        out.token_ignored = token.is_some();
    }
    uri.map(|_| Verdict::Allow)
}

/// Path and query of a request target; a target hyper would refuse is a 400, as it is there.
fn split_target(target: &str) -> Result<(&str, Option<&str>), Reject> {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    // "*" or "x" are left to path::normalize, which says why they are refused.
    if path.starts_with('/') && target.parse::<PathAndQuery>().is_err() {
        return Err(Reject::BadRequest("invalid request target"));
    }
    Ok((path, query))
}

impl RouteView {
    fn new(
        snap: &Snapshot,
        index: usize,
        found: &Route,
        forwarded: &str,
        query: Option<&str>,
        uri: Option<&Uri>,
    ) -> RouteView {
        let matcher = snap.routes.matcher(index);
        RouteView {
            index,
            pattern: found.pattern.clone(),
            origin: found.origin.clone(),
            host: matcher.and_then(|m| m.host.clone()),
            methods: matcher.and_then(|m| m.methods.clone()),
            upstream: found.upstream.name.clone(),
            policy: found.policy.clone(),
            strip_prefix: found.strip_prefix.clone(),
            forwarded: match query {
                Some(query) => format!("{forwarded}?{query}"),
                None => forwarded.to_string(),
            },
            upstream_uri: uri.map(ToString::to_string),
        }
    }
}

/// The token as the pipeline reads it: from `Authorization: Bearer`, verified as an access token.
fn authenticate(snap: &Snapshot, token: Option<&str>, now: u64) -> Result<Claims, Reject> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Reject::Token(TokenError::Malformed))?;
        headers.insert(AUTHORIZATION, value);
    }
    verify::bearer(&headers)
        .and_then(|t| verify::verify(&snap.keys, &snap.expect, t, TokenType::Access, now))
        .map_err(Reject::Token)
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Login => "login",
        Endpoint::Refresh => "refresh",
        Endpoint::Logout => "logout",
        Endpoint::Register => "register",
        Endpoint::Password => "password change",
        Endpoint::Jwks => "JWKS",
        Endpoint::Verify => "forward-auth",
        Endpoint::SignIn => "sign-in page",
        Endpoint::SignOut => "sign-out page",
        Endpoint::Sessions => "sessions page",
        Endpoint::PasswordPage => "password page",
        Endpoint::SecondFactorPage => "second-factor page",
        Endpoint::ProviderSignIn => "sign-in through a provider",
        Endpoint::ProviderCallback => "provider callback",
        Endpoint::ProviderLogout => "provider back-channel logout",
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(",")
    }
}

impl fmt::Display for RouteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "route: {} (rule #{} at {})",
            self.pattern,
            self.index + 1,
            self.origin
        )?;
        let methods = self.methods.as_ref().map_or("any".to_string(), |m| {
            m.iter().map(Method::as_str).collect::<Vec<_>>().join(",")
        });
        writeln!(f, "  methods: {methods}")?;
        writeln!(f, "  host: {}", self.host.as_deref().unwrap_or("any"))?;
        writeln!(f, "  upstream: {}", self.upstream)?;
        let policy = &self.policy;
        let auth = match policy.auth {
            Auth::None => "none",
            Auth::Required => "required",
        };
        writeln!(f, "  auth: {auth}")?;
        if !policy.roles_any.is_empty() {
            writeln!(f, "  roles_any: {}", list(&policy.roles_any))?;
        }
        if !policy.roles_all.is_empty() {
            writeln!(f, "  roles_all: {}", list(&policy.roles_all))?;
        }
        if !policy.roles_none.is_empty() {
            writeln!(f, "  roles_none: {}", list(&policy.roles_none))?;
        }
        if !policy.scopes_any.is_empty() {
            writeln!(f, "  scopes_any: {}", list(&policy.scopes_any))?;
        }
        if !policy.scopes_all.is_empty() {
            writeln!(f, "  scopes_all: {}", list(&policy.scopes_all))?;
        }
        if !policy.claims.is_empty() {
            let claims: Vec<String> = policy.claims.iter().map(ToString::to_string).collect();
            writeln!(f, "  claims: {}", claims.join(", "))?;
        }
        let authn = &policy.authn;
        if authn.mfa {
            writeln!(f, "  mfa: required (the token's amr must hold \"mfa\")")?;
        }
        if !authn.amr_any.is_empty() {
            let methods: Vec<&str> = authn.amr_any.names().collect();
            writeln!(f, "  amr_any: {}", methods.join(", "))?;
        }
        if !authn.idp_any.is_empty() {
            writeln!(f, "  idp_any: {}", list(&authn.idp_any))?;
        }
        if let Some(max) = authn.max_auth_age {
            writeln!(f, "  max_auth_age: {max}s (since the token's auth_time)")?;
        }
        if let Some(prefix) = &self.strip_prefix {
            writeln!(f, "  strip_prefix: {prefix}")?;
        }
        match &self.upstream_uri {
            Some(uri) => writeln!(f, "  forwarded as: {} ({uri})", self.forwarded),
            None => writeln!(
                f,
                "  forwarded as: {} (cannot be forwarded)",
                self.forwarded
            ),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "request: {} {}", self.method, self.target)?;
        match &self.host {
            Some(host) => writeln!(f, "host: {host}")?,
            None => writeln!(f, "host: none given (routes with a host are skipped)")?,
        }
        if let Some(normalized) = &self.normalized {
            writeln!(f, "normalized path: {normalized}")?;
        }
        if let Some(endpoint) = self.endpoint {
            let name = endpoint_name(endpoint);
            writeln!(
                f,
                "endpoint: {name} (answered by the gateway, never forwarded)"
            )?;
        }
        if let Some(route) = &self.route {
            write!(f, "{route}")?;
        } else if self.verdict == Verdict::Deny(Reject::NoRoute) {
            writeln!(
                f,
                "route: none; no route matches; the upstream never sees it"
            )?;
        }
        self.write_token(f)?;
        self.write_decision(f)
    }
}

impl Explanation {
    /// What the token check found, when a token was looked at or missing.
    fn write_token(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requires_token = self
            .route
            .as_ref()
            .is_some_and(|r| r.policy.requires_token());
        if self.token_ignored {
            writeln!(f, "token: not checked (auth = none)")?;
        }
        if let Some(id) = &self.identity {
            writeln!(
                f,
                "token: valid for {} (roles: {})",
                id.sub,
                list(&id.roles)
            )?;
            writeln!(f, "revocation: not checked (explain runs offline)")?;
        } else if let (true, Verdict::Deny(Reject::Token(err))) = (requires_token, self.verdict) {
            writeln!(f, "token: {}", err.reason())?;
        }
        Ok(())
    }

    fn write_decision(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.verdict, &self.identity) {
            (Verdict::Allow, Some(id)) => {
                writeln!(
                    f,
                    "decision: allow as {} (roles: {})",
                    id.sub,
                    list(&id.roles)
                )
            }
            (Verdict::Allow, None) => writeln!(f, "decision: allow (auth = none)"),
            (Verdict::Gateway(endpoint), _) => writeln!(
                f,
                "decision: answered by the gateway: {} endpoint",
                endpoint_name(endpoint)
            ),
            (Verdict::Deny(rejected), _) => writeln!(
                f,
                "decision: deny {}: {}",
                rejected.status().as_u16(),
                rejected.reason()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
