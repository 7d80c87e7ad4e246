//! Fetching an issuer's keys, off the request path: once at start, then by a background
//! task on a schedule (Cache-Control max-age within [refresh_min, refresh_max]) and when a
//! token names an unknown kid (at most once per `unknown_kid_refetch`).
//!
//! The request path only loads the current key set from an `ArcSwap` and, on an unknown kid,
//! may wake the task; it never waits for a fetch.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use super::jwks::{self, KeySet};
use super::{Issuer, JwksSource};
use crate::outbound::error_chain;

/// Largest discovery document or JWK Set read.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The one pooled HTTPS (and loopback HTTP) client every issuer fetches with.
pub type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Builds the fetch client: rustls with the system trust store (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` are honoured, for a private CA). Reads certificate files: call it once,
/// at start.
pub fn client() -> Client {
    client_with_body()
}

/// The same client for any request body type (sign-in providers POST forms with it).
pub fn client_with_body<B>() -> hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(err) => {
            // No trust store: https fetches then fail with an "unknown issuer" reason.
            tracing::error!(error = %err, "no system trust store found; https JWKS fetches will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("aws-lc-rs supports the default TLS versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    // The scheme rule (https, or http to loopback only) was checked when the URL was loaded.
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

/// What the fetcher reports, for /readyz and /metrics.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// When the keys in use were fetched.
    pub fetched: Option<Instant>,
    /// The last failure, when the latest attempt failed.
    pub failure: Option<(Instant, String)>,
}

/// One issuer's live state: its keys, the refetch limiter, the fetch counters.
#[derive(Debug)]
pub struct Live {
    /// The keys the request path verifies with.
    pub keys: ArcSwap<KeySet>,
    /// Last fetch outcome.
    pub status: Mutex<Status>,
    /// Successful fetches.
    pub fetches_ok: AtomicU64,
    /// Failed fetches.
    pub fetches_failed: AtomicU64,
    /// Milliseconds since `born` of the last unknown-kid refetch; u64::MAX for never.
    last_kick: AtomicU64,
    born: Instant,
    /// Wakes the fetcher for an unknown kid.
    kick: Arc<Notify>,
    /// Ends the fetcher when this state is dropped (after a reload replaced it).
    stop: Arc<Notify>,
    /// The jwks_uri found through discovery, kept so a refresh is one request.
    jwks_uri: Mutex<Option<Uri>>,
}

impl Live {
    /// Fresh state, starting from `keys` (those of the issuer this one replaces, or none).
    pub fn new(keys: Arc<KeySet>) -> Live {
        Live {
            keys: ArcSwap::new(keys),
            status: Mutex::default(),
            fetches_ok: AtomicU64::new(0),
            fetches_failed: AtomicU64::new(0),
            last_kick: AtomicU64::new(u64::MAX),
            born: Instant::now(),
            kick: Arc::new(Notify::new()),
            stop: Arc::new(Notify::new()),
            jwks_uri: Mutex::new(None),
        }
    }

    /// A token named a kid we lack: wake the fetcher, at most once per `interval`.
    ///
    /// Lock-free and non-blocking: a flood of random kids costs one compare-and-swap each.
    pub fn kid_missed(&self, interval: Duration) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_kick.load(Relaxed);
        let interval = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        if last != u64::MAX && now.saturating_sub(last) < interval {
            return;
        }
        if self
            .last_kick
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
        {
            self.kick.notify_one();
        }
    }

    /// A copy of the status, for reports.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn record(&self, outcome: Result<(), String>) {
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match outcome {
            Ok(()) => {
                self.fetches_ok.fetch_add(1, Relaxed);
                status.fetched = Some(Instant::now());
                status.failure = None;
            }
            Err(reason) => {
                self.fetches_failed.fetch_add(1, Relaxed);
                status.failure = Some((Instant::now(), reason));
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // A stored permit: the fetcher sees it even if it is not waiting right now.
        self.stop.notify_one();
    }
}

/// Fetches `issuer`'s keys once and installs them; returns how long until the next refresh.
pub async fn refresh(issuer: &Issuer, client: &Client) -> Duration {
    let live = &issuer.live;
    let fetched = tokio::time::timeout(issuer.fetch_timeout, fetch(issuer, client)).await;
    match fetched.unwrap_or_else(|_| Err("timed out".to_string())) {
        Ok((keys, max_age)) => {
            tracing::info!(issuer = %issuer.issuer, keys = keys.keys.len(), skipped = keys.skipped, "issuer keys fetched");
            live.keys.store(Arc::new(keys));
            live.record(Ok(()));
            let age = max_age.map_or(issuer.refresh_max, Duration::from_secs);
            age.clamp(issuer.refresh_min, issuer.refresh_max)
        }
        Err(reason) => {
            let cached = live.keys.load().keys.len();
            tracing::warn!(issuer = %issuer.issuer, reason = %reason, cached, "issuer keys fetch failed; cached keys stay in use");
            live.record(Err(reason));
            issuer.refresh_min
        }
    }
}

/// The key set and its max-age, or why not (a short reason for logs and /readyz).
async fn fetch(issuer: &Issuer, client: &Client) -> Result<(KeySet, Option<u64>), String> {
    let jwks_uri = match &issuer.source {
        JwksSource::Jwks(uri) => uri.clone(),
        JwksSource::Discovery(discovery) => {
            let cached = issuer.live.jwks_uri.lock().ok().and_then(|u| u.clone());
            match cached {
                Some(uri) => uri,
                None => {
                    let uri = discover(issuer, client, discovery).await?;
                    if let Ok(mut slot) = issuer.live.jwks_uri.lock() {
                        *slot = Some(uri.clone());
                    }
                    uri
                }
            }
        }
    };
    let result = get(client, &jwks_uri).await.and_then(|(body, max_age)| {
        jwks::parse(&body, issuer.algorithms).map(|keys| (keys, max_age))
    });
    if result.is_err() {
        // The provider may have moved its keys: ask discovery again next time.
        if let Ok(mut slot) = issuer.live.jwks_uri.lock() {
            *slot = None;
        }
    }
    result
}

/// Reads `jwks_uri` from the discovery document, which must name this issuer.
async fn discover(issuer: &Issuer, client: &Client, url: &Uri) -> Result<Uri, String> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let (body, _) = get(client, url).await?;
    let doc: Discovery =
        serde_json::from_slice(&body).map_err(|e| format!("discovery document malformed: {e}"))?;
    // OpenID Connect Discovery 1.0, 4.3: the issuer must be exactly the one asked for.
    if doc.issuer != issuer.issuer {
        return Err(format!(
            "discovery document names issuer {:?}, expected {:?}",
            doc.issuer, issuer.issuer
        ));
    }
    fetch_uri(&doc.jwks_uri).map_err(|e| format!("discovery jwks_uri: {e}"))
}

/// GET `uri`: the body (at most MAX_BODY_BYTES) and the response's max-age.
async fn get(client: &Client, uri: &Uri) -> Result<(Bytes, Option<u64>), String> {
    let request = Request::get(uri.clone())
        .header(ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{uri}: {}", error_chain(&e)))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{uri}: answered {}", response.status()));
    }
    let max_age = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(jwks::max_age);
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| format!("{uri}: body unreadable or over {MAX_BODY_BYTES} bytes: {e}"))?
        .to_bytes();
    Ok((body, max_age))
}

/// Runs `issuer`'s fetcher until its state is dropped; the first refresh comes after `first`.
pub fn spawn(issuer: &Arc<Issuer>, client: Client, first: Duration) {
    let weak: Weak<Issuer> = Arc::downgrade(issuer);
    let kick = issuer.live.kick.clone();
    let stop = issuer.live.stop.clone();
    tokio::spawn(async move {
        let mut wait = first;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = kick.notified() => {}
                () = stop.notified() => return,
            }
            let Some(issuer) = weak.upgrade() else { return };
            wait = refresh(&issuer, &client).await;
        }
    });
}

/// A URL keys may be fetched from: https, or http to a loopback address (a local test
/// provider); never with credentials in it.
pub fn fetch_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{url:?} must not contain credentials"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(authority.host()) => Ok(uri),
        _ => Err(format!(
            "{url:?} must be https:// (http:// only to a loopback address)"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
