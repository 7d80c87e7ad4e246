//! Long-lived runtime state: the current snapshot plus the stores that outlive reloads.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Loaded;
use crate::revoke::RevocationStore;
use crate::snapshot::{self, ListenSettings, Shared};
use crate::throttle::Throttle;
use crate::users::hash::Hasher;
use crate::users::UserStore;

/// Everything a request may touch besides the snapshot.
#[derive(Debug)]
pub struct App {
    /// The current configuration snapshot.
    pub shared: Shared,
    /// Revoked tokens, subjects and families; spent refresh tokens.
    pub revocations: RevocationStore,
    /// Who may log in.
    pub users: UserStore,
    /// The bounded argon2 pool.
    pub hasher: Hasher,
    /// Failed-login counters.
    pub throttle: Throttle,
}

impl App {
    /// Builds the runtime from a loaded configuration; returns it with the listener settings.
    pub fn new(loaded: Loaded) -> (Arc<App>, ListenSettings) {
        let (workers, queue) = loaded.hashing;
        let app = App {
            shared: snapshot::share(loaded.snapshot),
            revocations: RevocationStore::memory(),
            users: loaded.users,
            hasher: Hasher::new(workers, queue),
            throttle: Throttle::new(loaded.throttle),
        };
        (Arc::new(app), loaded.listen)
    }

    /// Drops expired revocations and throttle windows every 30 s, for bounded memory.
    pub fn spawn_purger(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                let now = crate::pipeline::unix_now();
                let dropped = app.revocations.purge(now) + app.throttle.purge(now);
                tracing::debug!(dropped, "purged expired revocations and throttle windows");
            }
        });
    }
}
