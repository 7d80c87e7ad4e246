//! Failed-login counters in Redis, shared by every gateway instance on the same store.
//!
//! # Keys (under the `[store]` prefix, "portcullis:" by default)
//!
//! | key                           | type    | content                                          |
//! |-------------------------------|---------|--------------------------------------------------|
//! | `{p}throttle:user:<name>`     | counter | failures of the (lowercased) username, TTL window |
//! | `{p}throttle:ip:<addr>`       | counter | failures of the address (IPv6: `<prefix>/64`)     |
//! | `{p}totp:spent:<name>`        | string  | latest TOTP step the user spent a code of, 90 s   |
//! | `{p}held:c:<id>`, `{p}held:ip:<addr>` | string, counter | passkey ceremonies in flight (`held.rs`) |
//!
//! A failure is one script per counter (`INCR`, and `PEXPIRE` when the counter was just
//! created), so a key's window starts at its first failure and later failures do not extend
//! it, as in the memory variant. A check is two concurrent round trips: each counter and its
//! `PTTL`, which becomes the `Retry-After`. Keys expire by themselves: nothing to purge.
//! Redis's clock is the only one involved, so instances with skewed clocks still agree on
//! every window. Every script and pipeline touches one key, so on a Redis Cluster the keys
//! need no hash tag and spread over the nodes.
//!
//! # Redis unreachable: fail open
//!
//! Every operation waits at most 200 ms. When Redis does not answer, `check` lets the login
//! go on to the password check and a failure goes uncounted, with a warning. Failing closed
//! would turn a Redis outage into a lockout of every user on every instance, which is worse
//! than the attack the throttle slows down; while open, each guess still costs a full argon2
//! hash on the bounded pool (and a 503 once its queue is full), so guessing stays slow.

use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;

mod held;

pub use held::Hold;

use super::{client_key, Limits};
use crate::store::StoreError;
use crate::store::{within, Conn, Target};

/// Longest any throttle operation waits for Redis before failing open.
const TIMEOUT: Duration = Duration::from_millis(200);
/// Longest `connect` waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Counts one failure; a new counter (or one that somehow lost its TTL) gets the window as
/// its TTL. KEYS[1] = the counter; ARGV[1] = window in milliseconds.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('INCR', KEYS[1]) == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
",
    )
});

/// Spends a TOTP step: stores it when it is later than the one stored. KEYS[1] = the
/// user's key; ARGV = step, TTL in seconds. 1 when spent now, 0 when that step or a later
/// one was spent before.
static SPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > last then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// Failed-login counters in Redis. Cloning the connection per command is an `Arc` clone.
pub struct RedisThrottle {
    conn: Conn,
    limits: Limits,
    prefix: String,
}

impl fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisThrottle")
            .field("limits", &self.limits)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisThrottle {
    /// Connects to `url` (its own multiplexed, reconnecting connection); keys live under
    /// `prefix`. `InvalidUrl` for a URL the client cannot use, `Unavailable` when Redis does
    /// not answer within a few seconds. Must run inside a tokio runtime.
    pub async fn connect(
        target: &Target,
        prefix: &str,
        limits: Limits,
    ) -> Result<RedisThrottle, StoreError> {
        let conn = Conn::connect(target, TIMEOUT, CONNECT_TIMEOUT).await?;
        Ok(RedisThrottle {
            conn,
            limits,
            prefix: prefix.to_owned(),
        })
    }

    /// Err(retry_after_secs) when the username or the address has reached its limit in the
    /// current window; Ok when under it, and when Redis does not answer (fail open).
    pub async fn check(&self, user: &str, ip: IpAddr) -> Result<(), u64> {
        let (user_key, ip_key) = (self.user_key(user), self.ip_key(ip));
        let answer = futures_util::future::try_join(self.counter(&user_key), self.counter(&ip_key));
        let Ok(((user_failures, user_ttl), (ip_failures, ip_ttl))) = answer.await else {
            tracing::warn!("login throttle unavailable (redis): letting the login through");
            return Ok(());
        };
        let user_wait = self.wait(user_failures, user_ttl, self.limits.per_user);
        let ip_wait = self.wait(ip_failures, ip_ttl, self.limits.per_ip);
        match user_wait.max(ip_wait) {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    /// A counter and its `PTTL`, in one round trip.
    async fn counter(&self, key: &str) -> Result<(Option<u32>, i64), StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        let mut conn = self.conn.clone();
        within(TIMEOUT, pipe.query_async(&mut conn)).await
    }

    /// Spends `user`'s code of TOTP step `step` on every instance at once: Ok(true) once,
    /// Ok(false) for that step or an earlier one afterwards. Unlike the counters this
    /// fails closed: a replay guard that let codes through while Redis is away is none.
    pub async fn spend_step(&self, user: &str, step: u64) -> Result<bool, StoreError> {
        let mut invocation = SPEND.key(format!("{}totp:spent:{user}", self.prefix));
        // Long enough to outlive every step a code of it could still match.
        invocation.arg(step).arg(3 * crate::users::totp::STEP_SECS);
        let mut conn = self.conn.clone();
        let spent: i64 = within(TIMEOUT, invocation.invoke_async(&mut conn)).await?;
        Ok(spent == 1)
    }

    /// Seconds until a counter at `failures` with `pttl` ms left may try again, or None when
    /// it is under `limit` (0: no limit) or gone.
    fn wait(&self, failures: Option<u32>, pttl: i64, limit: u32) -> Option<u64> {
        let failures = failures?;
        if limit == 0 || failures < limit {
            return None;
        }
        match pttl {
            // No TTL (cannot happen through RECORD): the next failure sets one; a whole window.
            -1 => Some(self.limits.window_secs.max(1)),
            ms if ms > 0 => Some(ms.unsigned_abs().div_ceil(1000).max(1)),
            _ => None,
        }
    }

    /// Counts one failed login against the username and the address (those with a limit).
    /// Not counted, with a warning, when Redis does not answer.
    pub async fn record_failure(&self, user: &str, ip: IpAddr) {
        let user_key = (self.limits.per_user > 0).then(|| self.user_key(user));
        let ip_key = (self.limits.per_ip > 0).then(|| self.ip_key(ip));
        let (user_counted, ip_counted) =
            futures_util::future::join(self.count(user_key), self.count(ip_key)).await;
        if user_counted.is_err() || ip_counted.is_err() {
            tracing::warn!("login throttle unavailable (redis): failed login not counted");
        }
    }

    /// Counts one failure on `key` (none when there is no key: that limit is off).
    async fn count(&self, key: Option<String>) -> Result<(), StoreError> {
        let Some(key) = key else {
            return Ok(());
        };
        let mut invocation = RECORD.key(key);
        invocation.arg(self.limits.window_secs.saturating_mul(1000));
        let mut conn = self.conn.clone();
        within(TIMEOUT, invocation.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// A successful login clears the username's counter (not the address's), for every
    /// instance. A warning when Redis does not answer: the counter then runs out by its TTL.
    pub async fn reset_user(&self, user: &str) {
        let mut conn = self.conn.clone();
        let deleted: Result<i64, _> = within(
            TIMEOUT,
            ::redis::cmd("DEL")
                .arg(self.user_key(user))
                .query_async(&mut conn),
        )
        .await;
        if deleted.is_err() {
            tracing::warn!("login throttle unavailable (redis): username counter not cleared");
        }
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}throttle:user:{user}", self.prefix)
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        match client_key(ip) {
            IpAddr::V4(v4) => format!("{}throttle:ip:{v4}", self.prefix),
            IpAddr::V6(v6) => format!("{}throttle:ip:{v6}/64", self.prefix),
        }
    }
}
