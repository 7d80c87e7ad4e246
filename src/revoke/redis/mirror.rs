//! The subscriber task: keeps the local mirror in step with Redis and says whether it is.
//!
//! One dedicated pub/sub connection (a subscribed connection can run nothing else) follows
//! `{p}events`; the shared `ConnectionManager` runs the reloads. The task owns `in_sync`:
//! true only between "subscribed, then reloaded" and the first sign the subscription is gone
//! (stream closed, or a ping unanswered for a second). The subscription is pinged every
//! `ping_interval` (5 s), and at once when a command on the shared connection failed: a
//! silent partition is then noticed at the first write or remote check it fails, not up to
//! six seconds later. Reconnecting backs off from 50 ms to 2 s, so a restarted
//! redis-server is followed within about two seconds.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::RedisResult;
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};

use super::{republish, Keys, Kind, Shared};
use crate::revoke::memory::MemoryStore;
use crate::store::Conn;

/// The periods of the mirror's safety nets under pub/sub, and its staleness bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Full reload period, a net under any missed event.
    pub resync_every: Duration,
    /// How often the subscription is pinged.
    pub ping_every: Duration,
    /// How long a ping's answer may take before the mirror counts as out of sync.
    pub ping_timeout: Duration,
    /// How long the mirror still decides alone once out of sync (`max_mirror_staleness`).
    pub max_staleness: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            resync_every: Duration::from_secs(30),
            ping_every: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(1),
            max_staleness: Duration::from_secs(10),
        }
    }
}
/// Longest one reconnect attempt (subscribe + reload) may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A live subscription to the events channel.
pub(super) type Subscription = (PubSubSink, PubSubStream);

/// Everything the task needs; `run` consumes it.
pub(super) struct Subscriber {
    pub(super) conn: Conn,
    pub(super) keys: Arc<Keys>,
    pub(super) shared: Arc<Shared>,
    pub(super) timers: Timers,
}

/// Opens a pub/sub connection subscribed to the events channel.
pub(super) async fn subscribe(conn: &Conn, keys: &Keys) -> RedisResult<Subscription> {
    let (mut sink, stream) = conn.pubsub().await?.split();
    sink.subscribe(&keys.channel).await?;
    Ok((sink, stream))
}

/// Members (or hash fields) with their times, as Redis returns them.
type Scored = Vec<(String, f64)>;

/// Checks the data-loss marker (`epoch.rs`), drops expired entries in Redis, then merges
/// every live one into the mirror and writes back those Redis lacks (`republish.rs`);
/// returns how many were loaded. Two round trips, three after a data loss.
pub(super) async fn resync(
    conn: &Conn,
    keys: &Keys,
    shared: &Shared,
    now: u64,
) -> RedisResult<usize> {
    shared.seen.check(conn, keys, now).await?;
    let mirror = &shared.mirror;
    let mut pipe = redis::pipe();
    for set in [&keys.jti, &keys.fam, &keys.spent] {
        // A score is the first second the entry no longer counts, so `now` itself goes.
        pipe.cmd("ZREMRANGEBYSCORE").arg(set).arg("-inf").arg(now);
        pipe.ignore();
    }
    let live = format!("({now}");
    for set in [&keys.jti, &keys.fam] {
        pipe.cmd("ZRANGEBYSCORE")
            .arg(set)
            .arg(&live)
            .arg("+inf")
            .arg("WITHSCORES");
    }
    pipe.cmd("HGETALL").arg(&keys.sub);
    let (jtis, fams, subs): (Scored, Scored, Scored) = pipe.query_async(&mut conn.clone()).await?;
    let loaded = jtis.len() + fams.len() + subs.len();
    let answered = [
        (Kind::Jti, &jtis[..]),
        (Kind::Fam, &fams[..]),
        (Kind::Sub, &subs[..]),
    ];
    let lacking = republish::missing(mirror, &answered, now);
    for (kind, entries) in answered {
        for (id, time) in entries {
            kind.apply(mirror, id, super::to_secs(*time));
        }
    }
    if !lacking.is_empty() {
        let put_back = republish::republish(conn, keys, &lacking).await?;
        tracing::warn!(
            put_back,
            "redis lacked revocations this instance holds (data lost by a restart without persistence, or a failover): written back"
        );
    }
    Ok(loaded)
}

/// Applies one event ("<kind> <id> <time>"; the id may hold spaces); false when malformed.
pub(super) fn apply_event(mirror: &MemoryStore, payload: &str) -> bool {
    let Some((kind, rest)) = payload.split_once(' ') else {
        return false;
    };
    let Some((id, time)) = rest.rsplit_once(' ') else {
        return false;
    };
    match (Kind::parse(kind), time.parse::<u64>()) {
        (Some(kind), Ok(time)) => {
            kind.apply(mirror, id, time);
            true
        }
        _ => false,
    }
}

impl Subscriber {
    /// Follows the subscription `connect` opened; on loss, marks the mirror out of sync and
    /// reconnects with backoff, forever (the store aborts the task when dropped).
    pub(super) async fn run(self, first: Subscription) {
        let mut current = Some(first);
        let mut backoff = MIN_BACKOFF;
        loop {
            let subscription = match current.take() {
                Some(subscription) => subscription,
                None => match timeout(RECONNECT_TIMEOUT, self.reconnect()).await {
                    Ok(Ok(subscription)) => {
                        tracing::info!(
                            prefix = %self.keys.prefix,
                            "revocation mirror resynced; back in sync"
                        );
                        backoff = MIN_BACKOFF;
                        subscription
                    }
                    failed => {
                        let error = match failed {
                            Ok(Err(err)) => err.to_string(),
                            _ => "timed out".to_owned(),
                        };
                        tracing::debug!(%error, retry_ms = backoff.as_millis(), "redis resubscribe failed");
                        sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            self.shared.mark_in_sync();
            let reason = self.follow(subscription).await;
            self.shared.mark_out_of_sync();
            tracing::warn!(
                prefix = %self.keys.prefix,
                reason,
                "revocation mirror out of sync: checking Redis per request until resynced"
            );
        }
    }

    /// Subscribe first, then reload: a change published in between is applied twice, which
    /// is harmless; none is missed. When the master was looked up again meanwhile (the
    /// reload's write met `READONLY`: a switchover demoted the server), the subscription
    /// may be on a replica, which would stop delivering once it leaves: start over.
    async fn reconnect(&self) -> RedisResult<Subscription> {
        let master = self.conn.master_generation();
        let subscription = subscribe(&self.conn, &self.keys).await?;
        resync(
            &self.conn,
            &self.keys,
            &self.shared,
            crate::runtime::unix_now(),
        )
        .await?;
        if self.conn.master_generation() != master {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "the master changed while resubscribing",
            )));
        }
        Ok(subscription)
    }

    /// Applies events until the subscription is lost; returns why.
    async fn follow(&self, (mut sink, mut stream): Subscription) -> &'static str {
        let Timers {
            resync_every,
            ping_every,
            ping_timeout,
            ..
        } = self.timers;
        let mut reload = interval_at(Instant::now() + resync_every, resync_every);
        let mut ping = interval_at(Instant::now() + ping_every, ping_every);
        reload.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return "subscription closed";
                    };
                    let applied = std::str::from_utf8(message.get_payload_bytes())
                        .is_ok_and(|payload| apply_event(&self.shared.mirror, payload));
                    if !applied {
                        tracing::warn!(channel = %self.keys.channel, "malformed revocation event ignored");
                    }
                }
                _ = reload.tick() => {
                    // Events still flow, so a failed reload leaves the mirror in sync.
                    let reloaded = resync(&self.conn, &self.keys, &self.shared, crate::runtime::unix_now());
                    if let Err(error) = reloaded.await {
                        tracing::warn!(%error, "periodic revocation resync failed");
                    }
                }
                _ = ping.tick() => {
                    if !answers(&mut sink, ping_timeout).await {
                        return "subscription ping unanswered";
                    }
                }
                _ = self.shared.suspected() => {
                    if !answers(&mut sink, ping_timeout).await {
                        return "subscription ping unanswered after a failed command";
                    }
                }
            }
        }
    }
}

/// True when the subscription answers a ping within `limit`.
async fn answers(sink: &mut PubSubSink, limit: Duration) -> bool {
    let answered = timeout(limit, sink.ping::<redis::Value>()).await;
    matches!(answered, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_with_spaces_in_the_id_and_malformed_ones_are_refused() {
        let mirror = MemoryStore::new();
        assert!(apply_event(&mirror, "jti j1 200"));
        assert!(apply_event(&mirror, "sub Ada Lovelace 150"));
        assert!(apply_event(&mirror, "fam f1 200"));
        assert!(mirror.is_revoked("j1", "x", 0, None, 100));
        assert!(mirror.is_revoked("j", "Ada Lovelace", 149, None, 100));
        assert!(mirror.is_revoked("j", "x", 0, Some("f1"), 100));
        for bad in [
            "",
            "jti",
            "jti j1",
            "jti j1 soon",
            "xyz j1 200",
            "jti j1 -5",
        ] {
            assert!(!apply_event(&mirror, bad), "{bad:?}");
        }
        assert_eq!(mirror.len(), 3);
    }
}
