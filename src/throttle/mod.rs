//! Failed-login limits per username and per client address, in memory or shared through Redis.
//!
//! Each key (a username, a client address) gets a fixed window starting at its first failure;
//! once it has its limit of failures in the window, logins for it are refused until the window
//! ends. Only `/auth/login` touches this. With the Redis store every instance counts in the
//! same Redis keys, so the limit holds for the gateway as a whole, not per instance.

pub mod memory;
pub mod redis;

use std::net::{IpAddr, Ipv6Addr};

use crate::store::StoreError;

/// How many failures each key may have per window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures allowed per username per window; 0 turns the username limit off.
    pub per_user: u32,
    /// Failures allowed per client address (IPv6: per /64) per window; 0 turns it off.
    pub per_ip: u32,
    /// Window length in seconds, from a key's first failure.
    pub window_secs: u64,
}

/// One enum over the counter stores.
#[derive(Debug)]
pub enum Throttle {
    /// This process only.
    Memory(memory::MemoryThrottle),
    /// Shared by every instance through Redis; fails open when Redis does not answer.
    Redis(redis::RedisThrottle),
}

impl Throttle {
    /// Empty in-memory counters enforcing `limits`.
    pub fn memory(limits: Limits) -> Throttle {
        Throttle::Memory(memory::MemoryThrottle::new(limits))
    }

    /// Counters in Redis at `url` under `prefix` (see [`redis::RedisThrottle::connect`]).
    pub async fn redis(
        target: &crate::store::Target,
        prefix: &str,
        limits: Limits,
    ) -> Result<Throttle, StoreError> {
        Ok(Throttle::Redis(
            redis::RedisThrottle::connect(target, prefix, limits).await?,
        ))
    }

    /// Before checking a password: Err(retry_after_secs) when the username or the IP already
    /// has >= its limit of failures in the current window. `now` is unix seconds (the Redis
    /// variant goes by the keys' TTLs instead).
    pub async fn check(&self, user: &str, ip: IpAddr, now: u64) -> Result<(), u64> {
        match self {
            Throttle::Memory(throttle) => throttle.check(user, ip, now),
            Throttle::Redis(throttle) => throttle.check(user, ip).await,
        }
    }

    /// Counts one failed login against the username and the IP.
    pub async fn record_failure(&self, user: &str, ip: IpAddr, now: u64) {
        match self {
            Throttle::Memory(throttle) => throttle.record_failure(user, ip, now),
            Throttle::Redis(throttle) => throttle.record_failure(user, ip).await,
        }
    }

    /// A successful login clears the username's counter (not the IP's).
    pub async fn reset_user(&self, user: &str) {
        match self {
            Throttle::Memory(throttle) => throttle.reset_user(user),
            Throttle::Redis(throttle) => throttle.reset_user(user).await,
        }
    }

    /// Spends `user`'s code of TOTP step `step`: Ok(true) the first time, Ok(false) for a
    /// code of that step or an earlier one afterwards (on every instance with Redis).
    pub async fn spend_step(&self, user: &str, step: u64) -> Result<bool, StoreError> {
        match self {
            Throttle::Memory(throttle) => Ok(throttle.spend_step(user, step)),
            Throttle::Redis(throttle) => throttle.spend_step(user, step).await,
        }
    }

    /// The Redis variant, when instances share state (for values held across them).
    pub fn shared(&self) -> Option<&redis::RedisThrottle> {
        match self {
            Throttle::Memory(_) => None,
            Throttle::Redis(throttle) => Some(throttle),
        }
    }

    /// Drops windows that ended; returns how many. Redis expires its keys by itself.
    pub fn purge(&self, now: u64) -> usize {
        match self {
            Throttle::Memory(throttle) => throttle.purge(now),
            Throttle::Redis(_) => 0,
        }
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64, which one host usually
/// owns whole (so rotating the low bits buys nothing). IPv4-mapped IPv6 counts as the IPv4.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}
