//! One-use values shared by every instance: a passkey ceremony's state, held under a random
//! id until the answer takes it (`GETDEL`: exactly one taker on any instance) or it
//! expires. Holds are counted per client address so that one client cannot fill Redis.
//!
//! | key                       | type    | content                                        |
//! |---------------------------|---------|------------------------------------------------|
//! | `{p}held:c:<id>`          | string  | the value, TTL = its lifetime                  |
//! | `{p}held:ip:<addr>`       | counter | holds by the address (IPv6: its /64), TTL = the lifetime of its first |
//!
//! Unlike the failure counters these fail closed: a ceremony that cannot be stored or
//! taken is refused (503), never let through unchecked.

use std::net::IpAddr;
use std::sync::LazyLock;

use ::redis::Script;

use super::{client_key, RedisThrottle, TIMEOUT};
use crate::store::{within, StoreError};

/// Counts one hold; the first sets the window. KEYS[1] = counter; ARGV[1] = window in s.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
",
    )
});

/// A value to hold: what, under which id, for how long, and for whom.
pub struct Hold<'a> {
    /// The random id the client will present.
    pub id: &'a str,
    /// The value.
    pub value: &'a str,
    /// Seconds it lives.
    pub ttl_secs: u64,
    /// The client asking.
    pub client: IpAddr,
    /// Most holds one address may have made within `ttl_secs`.
    pub per_client: u32,
}

impl RedisThrottle {
    /// Stores `hold.value` under `hold.id`: Ok(false) when the client made too many holds
    /// (or the id is taken, which a random id never is).
    pub async fn hold(&self, hold: &Hold<'_>) -> Result<bool, StoreError> {
        let counter = match client_key(hold.client) {
            IpAddr::V4(v4) => format!("{}held:ip:{v4}", self.prefix),
            IpAddr::V6(v6) => format!("{}held:ip:{v6}/64", self.prefix),
        };
        let mut count = COUNT.key(counter);
        count.arg(hold.ttl_secs);
        let mut conn = self.conn.clone();
        let holds: i64 = within(TIMEOUT, count.invoke_async(&mut conn)).await?;
        if holds > i64::from(hold.per_client) {
            return Ok(false);
        }
        let mut set = ::redis::cmd("SET");
        set.arg(self.held_key(hold.id))
            .arg(hold.value)
            .arg("EX")
            .arg(hold.ttl_secs)
            .arg("NX");
        let stored: Option<String> = within(TIMEOUT, set.query_async(&mut conn)).await?;
        Ok(stored.is_some())
    }

    /// The value held under `id`, removed, so that only one caller anywhere gets it.
    pub async fn take(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut getdel = ::redis::cmd("GETDEL");
        getdel.arg(self.held_key(id));
        let mut conn = self.conn.clone();
        within(TIMEOUT, getdel.query_async(&mut conn)).await
    }

    fn held_key(&self, id: &str) -> String {
        // Apart from the counters' `held:ip:` names, whatever id a caller passes.
        format!("{}held:c:{id}", self.prefix)
    }
}
