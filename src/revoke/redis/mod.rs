//! The Redis revocation store: one revocation set shared by every gateway instance, with a
//! local mirror per instance so the per-request check never leaves the process.
//!
//! # Keys (under a prefix, "portcullis:" by default; `{portcullis:}` on a Redis Cluster)
//!
//! | key                   | type       | content                                               |
//! |-----------------------|------------|-------------------------------------------------------|
//! | `{p}revoked:jti`      | sorted set | member jti, score = when the revocation ends (exp)    |
//! | `{p}revoked:fam`      | sorted set | member family id, score = until                       |
//! | `{p}revoked:sub`      | hash       | subject -> revoked-before time                        |
//! | `{p}family:<fam>`     | hash       | rotation record (see `redeem.rs`), expires with the family |
//! | `{p}epoch`            | hash       | `id`, `lost_at`: the data-loss marker (see `epoch.rs`) |
//! | `{p}events` (channel) | pub/sub    | "jti <id> <exp>", "fam <id> <until>", "sub <id> <before>" |
//!
//! Sorted sets scored by expiry rather than one key per entry with a TTL: the whole mirror
//! loads with one `ZRANGEBYSCORE key (now +inf WITHSCORES` per set, and expired entries go
//! with one `ZREMRANGEBYSCORE key -inf now`. TTL keys would expire by themselves, but loading
//! them means a `SCAN` over the keyspace plus a read per key, on every start and resync. The
//! price is that Redis drops nothing by itself: each instance purges on its periodic resync
//! (with its own clock; entries carry the verification leeway, so a few seconds of skew cost
//! nothing). Subject cut-offs carry no expiry, as in the memory store: they are one small
//! hash field per subject and are kept. A family's rotation record is never mirrored (only
//! refresh reads it, in a script), so it is one key with a TTL: one per family, whatever the
//! number of rotations, gone when the family's last token expires.
//!
//! On a Redis Cluster the prefix is wrapped in braces, a hash tag, so every key above is in
//! one slot: the claim script reads the revoked families together with a family's record,
//! and the resync reads every set in one pipeline. The revocation store therefore lives on
//! one master (its load is the write rate: revocations and refreshes; reads are local); the
//! other stores' keys carry no tag and spread over the cluster. The events channel is a
//! classic pub/sub channel, which the cluster bus delivers on every node (see
//! `store::cluster`).
//!
//! # The mirror and staying in sync
//!
//! The mirror is a [`MemoryStore`]: `is_revoked` is the same local, sharded read as with the
//! memory store, behind one atomic load of `in_sync`. A subscriber task (see `mirror.rs`)
//! follows `{p}events`, reloads everything every 30 s, and pings its connection every
//! `ping_interval` (5 s) and whenever a command to Redis failed.
//! When that connection drops, `in_sync` turns false at once and the task reconnects with
//! backoff, resubscribes, reloads, and only then sets `in_sync` again (subscribing before
//! loading, so no change falls between the two). While out of sync `is_revoked` answers
//! `Err(Unavailable)`, and [`RedisStore::is_revoked_checked`] asks Redis instead (one
//! pipelined round trip, 200 ms at most). Revocations are never lifted before their expiry,
//! so the mirror is only ever merged into (a later time wins), never replaced.
//!
//! # Durability
//!
//! Every write goes to Redis (a script that writes and publishes atomically) before the mirror
//! and before the caller gets `Ok`: a revocation acknowledged to a client is in Redis. Whether
//! it survives a redis-server crash is Redis's configuration: `appendonly yes` with
//! `appendfsync always` (or `everysec`, at most a second lost). After a restart the
//! connections come back by themselves and the reload re-merges the set. With replicas
//! (Sentinel), `min_replica_acks` makes a revocation `WAIT` for that many before `Ok`.
//! When Redis comes back without some revocations (no persistence, or writes lost in a
//! failover), each instance's reload writes back those its mirror holds (`republish.rs`):
//! a mirror never forgets, and new instances learn them again from Redis.
//!
//! `rediss://` verifies the server with the system trust store (`SSL_CERT_FILE` for a
//! private CA).

mod epoch;
mod keys;
mod mirror;
mod redeem;
mod republish;
mod state;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use self::keys::Keys;
use self::state::Shared;
use super::memory::MemoryStore;
use crate::store::{within, Conn, StoreError, Target};

pub use self::mirror::Timers;

/// The key prefix when the configuration names none.
pub const DEFAULT_PREFIX: &str = "portcullis:";

/// Longest a write (revoke, redeem step) waits for Redis before answering `Unavailable`.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest the per-request fallback waits for Redis.
const CHECK_TIMEOUT: Duration = Duration::from_millis(200);
/// Longest `connect` waits for the first connection, subscription and load.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Writes one revocation (never shortening an existing one) and announces it, atomically.
/// KEYS[1] = the set; ARGV = kind, id, time, channel.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local kind, id, time = ARGV[1], ARGV[2], ARGV[3]
if kind == 'sub' then
  local old = redis.call('HGET', KEYS[1], id)
  if not old or tonumber(old) < tonumber(time) then
    redis.call('HSET', KEYS[1], id, time)
  end
else
  redis.call('ZADD', KEYS[1], 'GT', time, id)
end
redis.call('PUBLISH', ARGV[4], kind .. ' ' .. id .. ' ' .. time)
return 1
",
    )
});

/// What a revocation names; also the first word of its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jti,
    Fam,
    Sub,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Fam => "fam",
            Kind::Sub => "sub",
        }
    }

    fn parse(word: &str) -> Option<Kind> {
        match word {
            "jti" => Some(Kind::Jti),
            "fam" => Some(Kind::Fam),
            "sub" => Some(Kind::Sub),
            _ => None,
        }
    }

    /// Records one revocation in the mirror.
    fn apply(self, mirror: &MemoryStore, id: &str, time: u64) {
        match self {
            Kind::Jti => mirror.revoke_jti(id, time),
            Kind::Fam => mirror.revoke_family(id, time),
            Kind::Sub => mirror.revoke_subject(id, time),
        }
    }
}

/// Revocations in Redis, read from a local mirror. Dropping it stops its subscriber task.
pub struct RedisStore {
    /// Multiplexed, reconnecting, following the master; cloned per command (an `Arc` clone).
    conn: Conn,
    keys: Arc<Keys>,
    shared: Arc<Shared>,
    subscriber: tokio::task::AbortHandle,
    /// How long the mirror still decides alone after losing sync.
    max_staleness: Duration,
    /// Replicas each revocation must reach (`WAIT`), and for how long; None: no wait.
    replica_acks: Option<(u32, Duration)>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix)
            .field("in_sync", &self.in_sync())
            .field("mirror", &self.shared.mirror)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

impl RedisStore {
    /// Connects to `url` (redis:// or unix socket), subscribes, loads the mirror and starts
    /// the subscriber task; keys live under `prefix` ([`DEFAULT_PREFIX`] unless configured).
    /// Fails with `InvalidUrl` for a URL the client cannot use, `Unavailable` when Redis does
    /// not answer within a few seconds. Must run inside a tokio runtime.
    pub async fn connect(target: &Target, prefix: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(target, prefix, Timers::default()).await
    }

    /// As [`RedisStore::connect`], with the mirror's reload and ping periods given (tests
    /// shorten them to see the safety nets work).
    pub async fn connect_with(
        target: &Target,
        prefix: &str,
        timers: Timers,
    ) -> Result<RedisStore, StoreError> {
        let conn = Conn::connect(target, Duration::from_secs(2), CONNECT_TIMEOUT).await?;
        let keys = Arc::new(Keys::new(prefix, conn.is_cluster()));
        let shared = Arc::new(Shared::new());
        let started = async {
            let subscription = mirror::subscribe(&conn, &keys).await?;
            mirror::resync(&conn, &keys, &shared, crate::runtime::unix_now()).await?;
            Ok::<_, redis::RedisError>(subscription)
        };
        let subscription = within(CONNECT_TIMEOUT, started).await?;
        shared.mark_in_sync();
        let task = mirror::Subscriber {
            conn: conn.clone(),
            keys: keys.clone(),
            shared: shared.clone(),
            timers,
        };
        let subscriber = tokio::spawn(task.run(subscription)).abort_handle();
        Ok(RedisStore {
            conn,
            keys,
            shared,
            subscriber,
            max_staleness: timers.max_staleness,
            replica_acks: None,
        })
    }

    /// Makes every revocation wait until `replicas` replicas hold it (`WAIT`, up to
    /// `timeout`) before it is acknowledged; `Unavailable` when fewer answer in time.
    pub fn with_replica_acks(mut self, acks: Option<(u32, Duration)>) -> RedisStore {
        self.replica_acks = acks;
        self
    }

    /// True while the subscription is up and the mirror reloaded since.
    pub fn in_sync(&self) -> bool {
        self.shared.in_sync()
    }

    /// True while the mirror may decide alone: in sync, or out of sync for less than the
    /// configured `max_staleness`.
    pub fn fresh(&self) -> bool {
        self.shared.usable(self.max_staleness)
    }

    /// How long the mirror has been out of sync (zero while in sync).
    pub fn stale_for(&self) -> Duration {
        self.shared.stale_for()
    }

    /// How many times the sentinels named a new master (0 with one server).
    pub fn master_changes(&self) -> u64 {
        self.conn.master_changes()
    }

    /// Local read, as the memory store's; `Err(Unavailable)` once the mirror has been out of
    /// sync for `max_staleness`.
    pub fn is_revoked(
        &self,
        jti: &str,
        sub: &str,
        iat: u64,
        fam: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        if !self.fresh() {
            return Err(StoreError::Unavailable);
        }
        Ok(self.shared.mirror.is_revoked(jti, sub, iat, fam, now))
    }

    /// The mirror's answer while fresh; otherwise the mirror's "revoked" (revocations are
    /// never lifted early, so it cannot be stale) or else Redis's answer.
    pub async fn is_revoked_checked(
        &self,
        jti: &str,
        sub: &str,
        iat: u64,
        fam: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        if let Ok(answer) = self.is_revoked(jti, sub, iat, fam, now) {
            return Ok(answer);
        }
        if self.shared.mirror.is_revoked(jti, sub, iat, fam, now) {
            return Ok(true);
        }
        self.is_revoked_remote(jti, sub, iat, fam, now).await
    }

    /// Asks Redis directly: one pipelined round trip (ZSCORE, HGET, ZSCORE), 200 ms at most.
    pub async fn is_revoked_remote(
        &self,
        jti: &str,
        sub: &str,
        iat: u64,
        fam: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZSCORE").arg(&self.keys.jti).arg(jti);
        pipe.cmd("HGET").arg(&self.keys.sub).arg(sub);
        if let Some(fam) = fam {
            pipe.cmd("ZSCORE").arg(&self.keys.fam).arg(fam);
        }
        let mut conn = self.conn.clone();
        let times = within(CHECK_TIMEOUT, pipe.query_async(&mut conn)).await;
        let times: Vec<Option<f64>> = self.noticed(times)?;
        let after_now = |time: &Option<f64>| time.is_some_and(|t| to_secs(t) > now);
        let subject_cut = times.get(1).copied().flatten();
        Ok(times.first().is_some_and(after_now)
            || subject_cut.is_some_and(|before| iat < to_secs(before))
            || times.get(2).is_some_and(after_now))
    }

    /// Revokes one token until `exp`.
    pub async fn revoke_jti(&self, jti: &str, exp: u64) -> Result<(), StoreError> {
        self.revoke(Kind::Jti, jti, exp).await
    }

    /// Revokes every token of `sub` issued before `before`.
    pub async fn revoke_subject(&self, sub: &str, before: u64) -> Result<(), StoreError> {
        self.revoke(Kind::Sub, sub, before).await
    }

    /// Revokes every token carrying `fam` until `until`.
    pub async fn revoke_family(&self, fam: &str, until: u64) -> Result<(), StoreError> {
        self.revoke(Kind::Fam, fam, until).await
    }

    /// Redis first (written and published in one script), then the mirror, then `Ok`.
    async fn revoke(&self, kind: Kind, id: &str, time: u64) -> Result<(), StoreError> {
        let mut invocation = REVOKE.key(self.keys.set(kind));
        invocation
            .arg(kind.as_str())
            .arg(id)
            .arg(time)
            .arg(&self.keys.channel);
        let mut conn = self.conn.clone();
        let written = within(WRITE_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        let _: i64 = self.noticed(written)?;
        kind.apply(&self.shared.mirror, id, time);
        self.replicated().await
    }

    /// `WAIT`s for the configured replicas; on one multiplexed connection it covers every
    /// write this instance sent before it, the revocation included.
    async fn replicated(&self) -> Result<(), StoreError> {
        let Some((replicas, timeout)) = self.replica_acks else {
            return Ok(());
        };
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(millis);
        let mut conn = self.conn.clone();
        let acked: u32 = within(timeout + WRITE_TIMEOUT, wait.query_async(&mut conn)).await?;
        if acked < replicas {
            tracing::warn!(
                acked,
                replicas,
                "revocation not acknowledged by enough replicas in time"
            );
            return Err(StoreError::Unavailable);
        }
        Ok(())
    }

    /// Passes `result` on; a failure (Redis did not answer in time, or the connection is
    /// lost) also has the subscriber check its subscription at once.
    fn noticed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.shared.suspect();
        }
        result
    }

    /// Drops the mirror's expired entries (Redis's are dropped by the periodic resync).
    pub fn purge(&self, now: u64) -> usize {
        self.shared.mirror.purge(now)
    }

    /// Entries in the mirror: revoked jtis, subjects and families. Spent refresh records
    /// live in Redis only.
    pub fn len(&self) -> usize {
        self.shared.mirror.len()
    }

    /// True when the mirror holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A score (unix seconds, stored as a double) back to seconds; out-of-range values saturate.
fn to_secs(score: f64) -> u64 {
    // `as` saturates (and maps NaN to 0), which is what a malformed score deserves.
    score as u64
}
