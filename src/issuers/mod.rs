//! External issuers (`[[issuers]]`): access tokens of identity providers such as Keycloak,
//! verified with the provider's published keys, then revoked and authorized like the
//! gateway's own.
//!
//! A token is matched to its issuer by its (unverified) `iss` and verified only with that
//! issuer's keys; the gateway's own issuer keeps its own path unchanged. Keys come from the
//! provider's JWK Set, fetched off the request path (see [`fetch`]); `jku`, `x5u` and an
//! embedded `jwk` in a token header are never read.

pub mod fetch;
pub mod jwks;
pub mod provider;
pub mod report;
mod verify;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

pub use verify::verify_access;

use self::fetch::Live;
use self::jwks::AlgSet;

/// Where an issuer's keys are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// The JWK Set URL itself.
    Jwks(Uri),
    /// An OpenID Connect discovery document, whose `jwks_uri` is read.
    Discovery(Uri),
}

/// One compiled `[[issuers]]` entry and its live key state.
#[derive(Debug)]
pub struct Issuer {
    /// `iss` of its tokens, exactly.
    pub issuer: String,
    /// The audience its tokens' `aud` must contain.
    pub audience: String,
    /// Algorithms its tokens may use (asymmetric only).
    pub algorithms: AlgSet,
    /// The roles claim as path segments ("realm_access.roles" -> ["realm_access", "roles"]).
    pub roles_claim: Vec<String>,
    /// Where the keys are.
    pub source: JwksSource,
    /// Shortest time between scheduled refreshes (also the retry delay after a failure).
    pub refresh_min: Duration,
    /// Longest time between scheduled refreshes (used when no max-age is sent).
    pub refresh_max: Duration,
    /// At most one refetch for unknown kids per this interval.
    pub unknown_kid_refetch: Duration,
    /// Time allowed for one fetch (discovery and JWK Set together).
    pub fetch_timeout: Duration,
    /// Keys, limiter and counters.
    pub live: Live,
}

/// Every configured external issuer, in configuration order.
#[derive(Debug, Default)]
pub struct Issuers(pub Vec<Arc<Issuer>>);

impl Issuers {
    /// True when no external issuer is configured (the feature is off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The issuer whose `iss` this is.
    pub fn find(&self, iss: &str) -> Option<&Issuer> {
        self.0.iter().find(|i| i.issuer == iss).map(|i| &**i)
    }

    /// Starts from the keys and fetch counts of the issuers these replace (same issuer and
    /// key source), so a reload never leaves a provider's tokens without keys while it
    /// refetches, nor sets its counters back.
    pub fn adopt_keys(&self, previous: &Issuers) {
        for issuer in &self.0 {
            let old = previous
                .0
                .iter()
                .find(|o| o.issuer == issuer.issuer && o.source == issuer.source);
            if let Some(old) = old {
                issuer.live.keys.store(old.live.keys.load_full());
                // Counters go on from where they were: a reload is no counter reset.
                let (ok, failed) = (&old.live.fetches_ok, &old.live.fetches_failed);
                issuer.live.fetches_ok.fetch_add(ok.load(Relaxed), Relaxed);
                issuer
                    .live
                    .fetches_failed
                    .fetch_add(failed.load(Relaxed), Relaxed);
                if let Ok(mut status) = issuer.live.status.lock() {
                    *status = old.live.status();
                }
            }
        }
    }

    /// Fetches every issuer's keys once, concurrently (each bounded by its fetch_timeout).
    pub async fn fetch_all(&self, client: &fetch::Client) {
        let mut fetches = tokio::task::JoinSet::new();
        for issuer in &self.0 {
            let (issuer, client) = (issuer.clone(), client.clone());
            fetches.spawn(async move {
                let wait = fetch::refresh(&issuer, &client).await;
                fetch::spawn(&issuer, client, wait);
            });
        }
        while fetches.join_next().await.is_some() {}
    }

    /// Starts every issuer's fetcher with an immediate first fetch (after a reload).
    pub fn spawn_fetchers(&self, client: &fetch::Client) {
        for issuer in &self.0 {
            fetch::spawn(issuer, client.clone(), Duration::ZERO);
        }
    }
}
