//! Refresh rotation across instances, atomic in Redis.
//!
//! The memory store mints under its lock; across processes there is no lock to mint under,
//! and the pair must exist before it can be remembered. So redemption is two scripts around
//! the mint:
//!
//! 1. `CLAIM`, atomically: family revoked -> reuse; jti already spent -> within grace, the
//!    remembered pair (or "pending" while its minter has not stored it yet), after grace,
//!    revoke the family and reuse; otherwise mark it spent and claim it with a random id
//!    -> fresh. Exactly one caller gets "fresh", so at most one pair is minted per token.
//! 2. The fresh caller mints, then `STORE` puts the pair under its claim (or, when the mint
//!    failed, `RELEASE` undoes the claim so a retry can redeem).
//!
//! A racing caller that finds the claim pending re-runs `CLAIM` every 25 ms for up to 500 ms:
//! it gets the pair once stored, or becomes the minter if the claim was released. Still
//! pending after that (the minter is stuck or died between the steps), it answers
//! `Unavailable`: a 503 the client retries, not a reuse that would log the user out. If the
//! minter stored nothing at all, the token counts as spent: a redemption after grace is
//! reuse, as it must be, since the pair may have reached the client.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use tokio::time::{sleep, Instant};

use super::{within, Kind, RedisStore, WRITE_TIMEOUT};
use crate::revoke::{Pair, Redeem};
use crate::store::StoreError;

/// How long the remembered pair outlives the grace interval in Redis (real seconds).
const RECORD_MARGIN_SECS: u64 = 60;
/// Polling for a pair another instance is minting.
const PENDING_WAIT: Duration = Duration::from_millis(500);
const PENDING_STEP: Duration = Duration::from_millis(25);

/// KEYS: families, spent set, spent record. ARGV: jti, fam, family_until, now, grace,
/// claim id, channel, record ttl, spent_until.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local jti, fam, until_, now, grace = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local revoked = redis.call('ZSCORE', KEYS[1], fam)
if revoked and tonumber(revoked) > now then
  return {'reuse', revoked}
end
if redis.call('ZSCORE', KEYS[2], jti) then
  local record = redis.call('HMGET', KEYS[3], 'first_at', 'access', 'refresh')
  if record[1] and now < tonumber(record[1]) + grace then
    if record[2] and record[3] then
      return {'grace', record[2], record[3]}
    end
    return {'pending'}
  end
  redis.call('ZADD', KEYS[1], 'GT', until_, fam)
  local kept = redis.call('ZSCORE', KEYS[1], fam)
  redis.call('PUBLISH', ARGV[7], 'fam ' .. fam .. ' ' .. kept)
  return {'reuse', kept}
end
redis.call('ZADD', KEYS[2], ARGV[9], jti)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'first_at', ARGV[4], 'claim', ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return {'fresh'}
",
    )
});

/// KEYS: spent record. ARGV: claim id, access, refresh. 1 when stored under our claim.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'access', ARGV[2], 'refresh', ARGV[3])
return 1
",
    )
});

/// KEYS: spent set, spent record. ARGV: jti, claim id. Undoes our claim if still ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
",
    )
});

/// What `CLAIM` found.
enum Claim {
    /// Ours to mint.
    Fresh,
    /// Redeemed within grace: the pair already issued.
    Grace(Pair),
    /// Redeemed within grace, pair not stored yet.
    Pending,
    /// Reuse; the family is revoked until this time.
    Reuse(u64),
}

impl RedisStore {
    /// See `RevocationStore::redeem`; atomic across every instance sharing the Redis.
    pub async fn redeem<E>(
        &self,
        jti: &str,
        fam: &str,
        exp: u64,
        now: u64,
        grace: u64,
        mint: impl FnOnce() -> Result<Pair, E>,
    ) -> Result<Result<Redeem, E>, StoreError> {
        // A family the mirror knows as revoked is revoked in Redis too (or was, before a
        // data loss): no round trip needed to refuse it.
        if self.shared.mirror.family_revoked(fam, now) {
            return Ok(Ok(Redeem::Reuse));
        }
        let claim_id = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + PENDING_WAIT;
        loop {
            match self.claim(jti, fam, exp, now, grace, &claim_id).await? {
                Claim::Fresh => return self.mint_and_store(jti, &claim_id, mint).await,
                Claim::Grace(pair) => return Ok(Ok(Redeem::Issued(pair))),
                Claim::Reuse(until) => {
                    Kind::Fam.apply(&self.shared.mirror, fam, until);
                    return Ok(Ok(Redeem::Reuse));
                }
                Claim::Pending if Instant::now() >= deadline => {
                    tracing::warn!(family = %fam, "refresh pair still being minted elsewhere; answering unavailable");
                    return Err(StoreError::Unavailable);
                }
                Claim::Pending => sleep(PENDING_STEP).await,
            }
        }
    }

    async fn claim(
        &self,
        jti: &str,
        fam: &str,
        exp: u64,
        now: u64,
        grace: u64,
        claim_id: &str,
    ) -> Result<Claim, StoreError> {
        let mut invocation = CLAIM.key(&self.keys.fam);
        invocation
            .key(&self.keys.spent)
            .key(self.keys.spent_record(jti))
            .arg(jti)
            .arg(fam)
            .arg(exp)
            .arg(now)
            .arg(grace)
            .arg(claim_id)
            .arg(&self.keys.channel)
            .arg(grace.saturating_add(RECORD_MARGIN_SECS))
            .arg(exp.max(now.saturating_add(grace)));
        let mut conn = self.conn.clone();
        let reply: Vec<String> = within(WRITE_TIMEOUT, invocation.invoke_async(&mut conn)).await?;
        match reply.as_slice() {
            [word] if word == "fresh" => Ok(Claim::Fresh),
            [word] if word == "pending" => Ok(Claim::Pending),
            [word, until] if word == "reuse" => Ok(Claim::Reuse(
                until.parse::<f64>().map_or(exp, super::to_secs),
            )),
            [word, access, refresh] if word == "grace" => Ok(Claim::Grace(Pair {
                access_token: access.clone(),
                refresh_token: refresh.clone(),
            })),
            _ => {
                tracing::error!(
                    parts = reply.len(),
                    "unexpected reply from the refresh claim script"
                );
                Err(StoreError::Unavailable)
            }
        }
    }

    /// Mints under our claim. A failed mint releases the claim; a failed store still hands
    /// the pair out (the token is marked spent, only the grace replay is lost).
    async fn mint_and_store<E>(
        &self,
        jti: &str,
        claim_id: &str,
        mint: impl FnOnce() -> Result<Pair, E>,
    ) -> Result<Result<Redeem, E>, StoreError> {
        let record = self.keys.spent_record(jti);
        let mut conn = self.conn.clone();
        let pair = match mint() {
            Ok(pair) => pair,
            Err(err) => {
                let mut release = RELEASE.key(&self.keys.spent);
                release.key(&record).arg(jti).arg(claim_id);
                let released: Result<i64, _> =
                    within(WRITE_TIMEOUT, release.invoke_async(&mut conn)).await;
                if released.is_err() {
                    tracing::warn!("could not release a refresh claim after a failed mint; a retry within grace will wait");
                }
                return Ok(Err(err));
            }
        };
        let mut store = STORE.key(&record);
        store
            .arg(claim_id)
            .arg(&pair.access_token)
            .arg(&pair.refresh_token);
        let stored: Result<i64, _> = within(WRITE_TIMEOUT, store.invoke_async(&mut conn)).await;
        if !matches!(stored, Ok(1)) {
            tracing::warn!(
                "refresh pair not remembered in Redis; a repeat within grace will not get it back"
            );
        }
        Ok(Ok(Redeem::Issued(pair)))
    }
}
