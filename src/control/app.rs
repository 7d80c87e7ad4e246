//! Long-lived runtime state: the current snapshot plus the stores that outlive reloads.

use std::sync::Arc;
use std::time::Duration;

use crate::config::compile_auth::{StoreChoice, UsersChoice};
use crate::config::snapshot::{self, ListenSettings, Shared};
use crate::config::{self, Loaded, Source};
use crate::control::metrics::Metrics;
use crate::revoke::OnError;
use crate::revoke::RevocationStore;
use crate::store::StoreError;
use crate::throttle::Throttle;
use crate::users::hash::Hasher;
use crate::users::redis::RedisUsers;
use crate::users::UserStore;

/// Everything a request may touch besides the snapshot.
#[derive(Debug)]
pub struct App {
    /// The current configuration snapshot.
    pub shared: Shared,
    /// Revoked tokens, subjects and families; spent refresh tokens.
    pub revocations: RevocationStore,
    /// Each user's sign-ins, for the sessions page.
    pub sessions: crate::revoke::sessions::SessionBook,
    /// Who may log in.
    pub users: UserStore,
    /// The bounded argon2 pool.
    pub hasher: Hasher,
    /// Failed-login counters.
    pub throttle: Throttle,
    /// Where the configuration is read from, for reloads.
    pub source: Source,
    /// Listener settings in force; a reload cannot change them.
    pub listen: ListenSettings,
    /// Counters for /metrics.
    pub metrics: Metrics,
    /// What an unanswerable revocation check means for a proxied request.
    pub on_error: OnError,
    /// The client external issuers' keys are fetched with (built once: it reads the trust
    /// store).
    pub jwks_client: crate::issuers::fetch::Client,
    /// The client sign-in providers are called with (discovery, code exchange).
    pub provider_client: crate::issuers::provider::Client,
}

impl App {
    /// Builds the runtime from a configuration loaded from `source`, opening its
    /// revocation store, login throttle and user store (with the Redis store all three are
    /// connected, and the revocations mirrored, before this returns; the throttle counts,
    /// and a Redis user store keeps its users, in the same Redis).
    pub async fn start(loaded: Loaded, source: Source) -> Result<Arc<App>, StoreError> {
        use crate::revoke::sessions::SessionBook;
        let (revocations, throttle, sessions) = match &loaded.store.choice {
            StoreChoice::Memory => (
                RevocationStore::memory(),
                Throttle::memory(loaded.throttle),
                SessionBook::memory(),
            ),
            StoreChoice::Redis { target, prefix } => (
                RevocationStore::redis(
                    target,
                    prefix,
                    crate::revoke::redis::Timers {
                        max_staleness: loaded.store.max_staleness,
                        ping_every: loaded.store.ping_interval,
                        ..Default::default()
                    },
                    loaded.store.replica_acks,
                )
                .await?,
                Throttle::redis(target, prefix, loaded.throttle).await?,
                SessionBook::redis(target, prefix).await?,
            ),
        };
        let Loaded {
            snapshot,
            listen,
            users,
            store,
            hashing: (workers, queue),
            ..
        } = loaded;
        let users = match users {
            UsersChoice::Ready(users) => users,
            UsersChoice::Redis { target, prefix } => {
                UserStore::Redis(RedisUsers::connect(&target, &prefix).await?)
            }
        };
        let jwks_client = crate::issuers::fetch::client();
        // External issuers' keys before the first request, each fetch bounded by its
        // fetch_timeout; a provider that is down leaves its tokens refused until it is back.
        snapshot.issuers.fetch_all(&jwks_client).await;
        let provider_keys = snapshot::provider_keys(snapshot.auth.sign_in.as_ref());
        provider_keys.fetch_all(&jwks_client).await;
        Ok(Arc::new(App {
            shared: snapshot::share(snapshot),
            revocations,
            sessions,
            users,
            hasher: Hasher::new(workers, queue),
            throttle,
            source,
            listen,
            metrics: Metrics::default(),
            on_error: store.on_error,
            jwks_client,
            provider_client: crate::issuers::provider::client(),
        }))
    }

    /// Validates the configuration anew and swaps it in whole; a bad one changes nothing.
    ///
    /// Requests in flight finish on the snapshot they loaded; connections stay open.
    pub async fn reload(&self, reason: &str) {
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&source)).await;
        let mut loaded = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(errors)) => {
                self.metrics
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    reason,
                    "reload rejected, the previous configuration keeps serving:\n{errors}"
                );
                return;
            }
            Err(err) => {
                self.metrics
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(reason, error = %err, "reload failed, the previous configuration keeps serving");
                return;
            }
        };
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        if loaded.listen != self.listen {
            tracing::warn!("[listen] and [admin] changes take effect only after a restart");
        }
        // The new issuers start from the keys in use and refetch at once, off the request path.
        loaded
            .snapshot
            .issuers
            .adopt_keys(&self.shared.load().issuers);
        loaded.snapshot.issuers.spawn_fetchers(&self.jwks_client);
        let provider_keys = snapshot::provider_keys(loaded.snapshot.auth.sign_in.as_ref());
        let old_keys = snapshot::provider_keys(self.shared.load().auth.sign_in.as_ref());
        provider_keys.adopt_keys(&old_keys);
        provider_keys.spawn_fetchers(&self.jwks_client);
        loaded.snapshot.adopt_counters(&self.shared.load());
        self.shared.store(Arc::new(loaded.snapshot));
        if let UserStore::File(users) = &self.users {
            if let Err(err) = users.reload().await {
                tracing::error!("users reload rejected, the previous users stay:\n{err}");
            }
        }
        self.metrics
            .reloads_ok
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(reason, "configuration reloaded");
    }

    /// Drops expired revocations and throttle windows every 30 s, for bounded memory.
    pub fn spawn_purger(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                let now = crate::runtime::unix_now();
                let dropped = app.revocations.purge(now) + app.throttle.purge(now);
                app.sessions.purge(now);
                tracing::debug!(dropped, "purged expired revocations and throttle windows");
            }
        });
    }
}
