//! Noticing that Redis lost its data, for the families' rotation records.
//!
//! Revocations lost by Redis come back from the mirrors (`republish.rs`), but rotation
//! records are not mirrored: once a family's record is gone, a spent refresh token of it
//! would look like one never redeemed, and be accepted once. So the store keeps a marker,
//! the hash `{p}epoch` (`id`: random, `lost_at`: unix seconds, 0 while no loss is known).
//! Each instance remembers the id it saw; at every resync, a marker missing or with another
//! id means the data was lost since, and the instance raises `lost_at` to now. The claim
//! script then refuses (`Rotation::Lost`) a token issued before `lost_at` (or in that second) whose family has no
//! record: it cannot be told from a replay; its user signs in again. A new deployment (or
//! one upgraded from a version without the marker) creates it with `lost_at` 0: no loss it
//! could know of. If every instance restarts together with an empty Redis, none remembers an
//! id, and the loss goes unnoticed (see the README: run Redis with persistence).

use std::sync::{LazyLock, Mutex, PoisonError};

use redis::{RedisResult, Script};

use super::Keys;
use crate::store::Conn;

/// KEYS[1] = the marker; ARGV = a fresh id, the id this instance saw before ('' for none),
/// now. Creates the marker when missing; raises `lost_at` to now when the marker is new to
/// an instance that saw another. Returns the marker's id.
static EPOCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local seen, now = ARGV[2], tonumber(ARGV[3])
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  id = ARGV[1]
  redis.call('HSET', KEYS[1], 'id', id, 'lost_at', 0)
end
if seen ~= '' and seen ~= id then
  local lost = tonumber(redis.call('HGET', KEYS[1], 'lost_at') or '0')
  if lost < now then
    redis.call('HSET', KEYS[1], 'lost_at', now)
  end
end
return id
",
    )
});

/// The marker's id as this instance last saw it.
#[derive(Debug, Default)]
pub(super) struct Seen(Mutex<Option<String>>);

impl Seen {
    /// Checks the marker (see the module docs); true when a loss was noticed now.
    pub(super) async fn check(&self, conn: &Conn, keys: &Keys, now: u64) -> RedisResult<bool> {
        let seen = self.get().unwrap_or_default();
        let mut invocation = EPOCH.key(&keys.epoch);
        invocation
            .arg(crate::token::mint::new_id())
            .arg(&seen)
            .arg(now);
        let id: String = invocation.invoke_async(&mut conn.clone()).await?;
        let lost = !seen.is_empty() && seen != id;
        if lost {
            tracing::warn!(
                "redis lost its data since the last resync: refresh tokens issued before now whose rotation record is gone are refused"
            );
        }
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
        Ok(lost)
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
