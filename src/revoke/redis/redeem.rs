//! Refresh rotation across instances, atomic in Redis: one `CLAIM` script per redemption.
//!
//! The family's record is the hash `{p}family:<fam>` (see `rotation.rs` for the rules),
//! expiring with the family's last possible token. `CLAIM` reads it and, for the current
//! token, records the successor this instance proposes; for the previous token within grace
//! it returns the recorded successor. Either way the caller then signs that pair: no token
//! is stored in Redis, and there is no second step that a stall could leave half done.
//!
//! Why not "claim, then store the pair": a caller gives up on Redis after `WRITE_TIMEOUT`
//! (503, retry), but the script it sent still runs when Redis wakes. A claim then left
//! unfilled turned the client's retry into reuse and revoked its session. Here the late
//! claim only records a successor, which the retry, presenting the same token, gets back.
//! The grace interval counts from when the script ran (the later of the caller's clock and
//! Redis's), so a stall cannot eat it, and in milliseconds: in whole seconds a 1 s grace
//! was anywhere from 0 to 1 s, and two instances racing across a second boundary turned a
//! second tab's refresh into reuse. `grace_until` holds fractional seconds, which an
//! older instance's script compares correctly too.

use std::sync::LazyLock;

use redis::Script;

use super::{within, Kind, RedisStore, WRITE_TIMEOUT};
use crate::revoke::{Redemption, Rotation, Successor};
use crate::store::StoreError;

/// KEYS: revoked families, the family's record, the data-loss marker. ARGV: jti, fam,
/// until, now, grace (ms), proposed access jti, proposed refresh jti, channel, max
/// rotations, window, the token's iat, now (ms).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local jti, fam, until_, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local revoked = redis.call('ZSCORE', KEYS[1], fam)
if revoked and tonumber(revoked) > now then
  return {'reuse', revoked}
end
local time = redis.call('TIME')
local clock = math.max(now, tonumber(time[1]))
local precise = math.max(tonumber(ARGV[12]), time[1] * 1000 + math.floor(time[2] / 1000)) / 1000
local r = redis.call('HMGET', KEYS[2], 'current', 'previous', 'access', 'refresh', 'iat',
  'grace_until', 'window_start', 'rotations')
if not r[1] and tonumber(ARGV[11]) <= tonumber(redis.call('HGET', KEYS[3], 'lost_at') or '0') then
  return {'lost'}
end
if not r[1] or r[1] == jti then
  local window = tonumber(ARGV[10])
  local start, count = tonumber(r[7]) or clock, tonumber(r[8]) or 0
  if clock >= start + window then
    start, count = clock, 0
  end
  if count >= tonumber(ARGV[9]) then
    return {'throttled', tostring(start + window - clock)}
  end
  redis.call('HSET', KEYS[2], 'current', ARGV[7], 'previous', jti, 'access', ARGV[6],
    'refresh', ARGV[7], 'iat', ARGV[4],
    'grace_until', string.format('%.3f', precise + tonumber(ARGV[5]) / 1000),
    'window_start', start, 'rotations', count + 1)
  redis.call('EXPIREAT', KEYS[2], until_)
  return {'mint', ARGV[6], ARGV[7], ARGV[4]}
end
if r[2] == jti and precise < tonumber(r[6]) then
  return {'mint', r[3], r[4], r[5]}
end
redis.call('ZADD', KEYS[1], 'GT', until_, fam)
local kept = redis.call('ZSCORE', KEYS[1], fam)
redis.call('PUBLISH', ARGV[8], 'fam ' .. fam .. ' ' .. kept)
return {'reuse', kept}
",
    )
});

impl RedisStore {
    /// See `RevocationStore::redeem`; atomic across every instance sharing the Redis.
    pub async fn redeem(&self, r: &Redemption<'_>) -> Result<Rotation, StoreError> {
        // A family the mirror knows as revoked is revoked in Redis too (or was, before a
        // data loss): no round trip needed to refuse it.
        if self.shared.mirror.family_revoked(r.fam, r.now) {
            return Ok(Rotation::Reuse);
        }
        let proposed = Successor::new(r.now);
        let mut invocation = CLAIM.key(&self.keys.fam);
        invocation
            .key(self.keys.family_record(r.fam))
            .key(&self.keys.epoch)
            .arg(r.jti)
            .arg(r.fam)
            .arg(r.until)
            .arg(r.now)
            .arg(r.grace_ms)
            .arg(&proposed.access_jti)
            .arg(&proposed.refresh_jti)
            .arg(&self.keys.channel)
            .arg(r.limit.max)
            .arg(r.limit.window)
            .arg(r.issued)
            .arg(r.now_ms);
        let mut conn = self.conn.clone();
        let reply = within(WRITE_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        let reply: Vec<String> = self.noticed(reply)?;
        let rotation = parse(&reply, r.until)?;
        if let Rotation::Reuse = rotation {
            let until = reply.get(1).and_then(|u| u.parse::<f64>().ok());
            let until = until.map_or(r.until, super::to_secs);
            Kind::Fam.apply(&self.shared.mirror, r.fam, until);
        }
        Ok(rotation)
    }
}

/// The claim script's answer.
fn parse(reply: &[String], until: u64) -> Result<Rotation, StoreError> {
    match reply {
        [word, access, refresh, iat] if word == "mint" => Ok(Rotation::Mint(Successor {
            access_jti: access.clone(),
            refresh_jti: refresh.clone(),
            iat: iat.parse().map_err(|_| malformed(reply))?,
        })),
        [word, _] if word == "reuse" => Ok(Rotation::Reuse),
        [word] if word == "lost" => Ok(Rotation::Lost),
        [word, secs] if word == "throttled" => {
            let secs = secs.parse::<f64>().map_or(until, super::to_secs);
            Ok(Rotation::Throttled(secs.max(1)))
        }
        _ => Err(malformed(reply)),
    }
}

fn malformed(reply: &[String]) -> StoreError {
    tracing::error!(
        parts = reply.len(),
        "unexpected reply from the refresh claim script"
    );
    StoreError::Unavailable
}
