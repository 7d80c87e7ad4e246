//! Putting back into Redis what it lost: revocations this instance's mirror holds and
//! Redis does not (a restart without persistence, or a failover that dropped the last
//! writes before they reached the replica).
//!
//! Every resync compares what Redis answered with the mirror; any revocation in force that
//! Redis lacks (or holds with an earlier time) is written back and announced, in batches,
//! with the same never-shorten rules as a revocation. So a mirror never forgets, and every
//! other instance (a new one too) learns it again from Redis. Nothing is ever removed here:
//! revocations are not lifted early, so a mirror can only be ahead of Redis, never wrong.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{RedisResult, Script};

use super::{Keys, Kind};
use crate::revoke::memory::MemoryStore;
use crate::store::Conn;

/// Revocations per script call: bounded, so one call never holds Redis for long.
const BATCH: usize = 256;

/// Writes entries back as `REVOKE` would, announcing each. KEYS = jti set, family set,
/// subject hash (one hash tag on a cluster); ARGV[1] = channel, then (kind, id, time) triples.
static REPUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local sets = {jti = KEYS[1], fam = KEYS[2]}
for i = 2, #ARGV, 3 do
  local kind, id, time = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'sub' then
    local old = redis.call('HGET', KEYS[3], id)
    if not old or tonumber(old) < tonumber(time) then
      redis.call('HSET', KEYS[3], id, time)
    end
  else
    redis.call('ZADD', sets[kind], 'GT', time, id)
  end
  redis.call('PUBLISH', ARGV[1], kind .. ' ' .. id .. ' ' .. time)
end
return 0
",
    )
});

/// One revocation to put back.
pub(super) type Entry = (Kind, String, u64);

/// The mirror's revocations in force at `now` that Redis answered without (or earlier);
/// `redis` holds Redis's answer per kind.
pub(super) fn missing(
    mirror: &MemoryStore,
    redis: &[(Kind, &[(String, f64)]); 3],
    now: u64,
) -> Vec<Entry> {
    let entries = mirror.entries(now);
    let mut out = Vec::new();
    for (kind, answered) in redis {
        let known: HashMap<&str, u64> = answered
            .iter()
            .map(|(id, time)| (id.as_str(), super::to_secs(*time)))
            .collect();
        let held = match kind {
            Kind::Jti => &entries.jtis,
            Kind::Fam => &entries.families,
            Kind::Sub => &entries.subjects,
        };
        let lacking = held
            .iter()
            .filter(|(id, time)| known.get(id.as_str()).is_none_or(|t| t < time));
        out.extend(lacking.map(|(id, time)| (*kind, id.clone(), *time)));
    }
    out
}

/// Writes `entries` back, in batches; how many were written.
pub(super) async fn republish(conn: &Conn, keys: &Keys, entries: &[Entry]) -> RedisResult<usize> {
    for batch in entries.chunks(BATCH) {
        let mut invocation = REPUBLISH.key(&keys.jti);
        invocation.key(&keys.fam).key(&keys.sub).arg(&keys.channel);
        for (kind, id, time) in batch {
            invocation.arg(kind.as_str()).arg(id).arg(*time);
        }
        let _: i64 = invocation.invoke_async(&mut conn.clone()).await?;
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_redis_lacks_or_holds_earlier_is_put_back() {
        let mirror = MemoryStore::new();
        mirror.revoke_jti("kept", 200);
        mirror.revoke_jti("lost", 200);
        mirror.revoke_jti("expired", 90);
        mirror.revoke_family("shorter", 300);
        mirror.revoke_subject("ada", 150);
        let jtis = [("kept".to_string(), 200.0)];
        let fams = [("shorter".to_string(), 250.0)];
        let subs = [("ada".to_string(), 150.0)];
        let redis = [
            (Kind::Jti, &jtis[..]),
            (Kind::Fam, &fams[..]),
            (Kind::Sub, &subs[..]),
        ];
        let mut lacking = missing(&mirror, &redis, 100);
        lacking.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            lacking,
            vec![
                (Kind::Jti, "lost".to_string(), 200),
                (Kind::Fam, "shorter".to_string(), 300)
            ]
        );
    }
}
