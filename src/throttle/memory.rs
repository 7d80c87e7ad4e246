//! Failed-login counters in this process: the memory variant of [`super::Throttle`].
//!
//! Each key gets a fixed window starting at its first failure; once the key has its limit of
//! failures in the window, logins for it are refused until the window ends. Only the login
//! path touches this, so one std `Mutex` (never held across an await) is enough.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{client_key, Limits};

/// Keys kept before the oldest windows are evicted, so a flood of distinct usernames cannot
/// grow the map without bound (about 100 bytes each).
const MAX_KEYS: usize = 100_000;

/// What a counter is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(Box<str>),
    Ip(IpAddr),
}

/// One key's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    failures: u32,
}

/// Failed-login counters for usernames and client addresses.
#[derive(Debug)]
pub struct MemoryThrottle {
    limits: Limits,
    max_keys: usize,
    windows: Mutex<HashMap<Key, Window>>,
    /// The latest TOTP step each user has spent a code of.
    spent_steps: Mutex<HashMap<String, u64>>,
}

impl MemoryThrottle {
    /// An empty throttle enforcing `limits`.
    pub fn new(limits: Limits) -> MemoryThrottle {
        MemoryThrottle::with_capacity(limits, MAX_KEYS)
    }

    fn with_capacity(limits: Limits, max_keys: usize) -> MemoryThrottle {
        MemoryThrottle {
            limits,
            max_keys,
            windows: Mutex::new(HashMap::new()),
            spent_steps: Mutex::new(HashMap::new()),
        }
    }

    /// Spends `user`'s code of TOTP step `step`: true once, false for that step or any
    /// earlier one afterwards (RFC 6238 5.2: a code is accepted once).
    pub fn spend_step(&self, user: &str, step: u64) -> bool {
        let mut spent = self
            .spent_steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match spent.get(user) {
            Some(&last) if last >= step => false,
            _ => {
                spent.insert(user.to_owned(), step);
                true
            }
        }
    }

    /// Before checking a password: Err(retry_after_secs) when the username or the IP already
    /// has >= its limit of failures in the current window.
    pub fn check(&self, user: &str, ip: IpAddr, now: u64) -> Result<(), u64> {
        let windows = self.lock();
        let user_wait = self.wait(&windows, &user_key(user), self.limits.per_user, now);
        let ip_wait = self.wait(&windows, &ip_key(ip), self.limits.per_ip, now);
        match user_wait.max(ip_wait) {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    /// Seconds until `key` may try again, or None when it is under its limit.
    fn wait(&self, windows: &HashMap<Key, Window>, key: &Key, limit: u32, now: u64) -> Option<u64> {
        let window = windows.get(key)?;
        let end = self.end(window);
        (limit > 0 && window.failures >= limit && now < end).then(|| (end - now).max(1))
    }

    fn end(&self, window: &Window) -> u64 {
        window.start.saturating_add(self.limits.window_secs)
    }

    /// Counts one failed login against the username and the IP.
    pub fn record_failure(&self, user: &str, ip: IpAddr, now: u64) {
        let mut windows = self.lock();
        if self.limits.per_user > 0 {
            self.bump(&mut windows, user_key(user), now);
        }
        if self.limits.per_ip > 0 {
            self.bump(&mut windows, ip_key(ip), now);
        }
    }

    fn bump(&self, windows: &mut HashMap<Key, Window>, key: Key, now: u64) {
        if !windows.contains_key(&key) && windows.len() >= self.max_keys {
            self.make_room(windows, now);
        }
        let fresh = Window {
            start: now,
            failures: 0,
        };
        let window = windows.entry(key).or_insert(fresh);
        if now >= self.end(window) {
            *window = fresh;
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Frees space for a new key: drops ended windows, then, if that freed too little, the
    /// oldest tenth. Evicting a batch keeps the O(n) scan rare under a flood; the price is that
    /// a flood can clear old counters early, so the per-IP limit is what stops a flooder.
    fn make_room(&self, windows: &mut HashMap<Key, Window>, now: u64) {
        self.drop_ended(windows, now);
        if windows.len() < self.max_keys {
            return;
        }
        let mut starts: Vec<u64> = windows.values().map(|w| w.start).collect();
        let nth = starts.len() / 10;
        let (_, cutoff, _) = starts.select_nth_unstable(nth);
        let cutoff = *cutoff;
        windows.retain(|_, w| w.start > cutoff);
    }

    fn drop_ended(&self, windows: &mut HashMap<Key, Window>, now: u64) -> usize {
        let before = windows.len();
        windows.retain(|_, w| now < self.end(w));
        before - windows.len()
    }

    /// A successful login clears the username's counter (not the IP's).
    pub fn reset_user(&self, user: &str) {
        self.lock().remove(&user_key(user));
    }

    /// Drops windows that ended, and spent steps no code could still match; returns how
    /// many windows.
    pub fn purge(&self, now: u64) -> usize {
        let live_from = (now / crate::users::totp::STEP_SECS).saturating_sub(2);
        self.spent_steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, step| *step >= live_from);
        let mut windows = self.lock();
        self.drop_ended(&mut windows, now)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Window>> {
        // Every critical section leaves the map consistent, so poisoning carries no meaning.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn user_key(user: &str) -> Key {
    Key::User(user.into())
}

/// The counter key for a client: see [`client_key`].
fn ip_key(ip: IpAddr) -> Key {
    Key::Ip(client_key(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn a_totp_step_is_spent_once_and_earlier_steps_never_again() {
        let throttle = MemoryThrottle::new(Limits {
            per_user: 5,
            per_ip: 5,
            window_secs: 60,
        });
        let step = NOW / 30;
        assert!(throttle.spend_step("alice", step));
        assert!(!throttle.spend_step("alice", step), "the same code again");
        assert!(
            !throttle.spend_step("alice", step - 1),
            "an earlier code after a later one"
        );
        assert!(throttle.spend_step("bob", step), "per user");
        assert!(throttle.spend_step("alice", step + 1));
        throttle.purge(NOW + 3600);
        assert!(
            throttle.spend_step("alice", step + 1),
            "forgotten once no code can match"
        );
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn throttle(per_user: u32, per_ip: u32) -> MemoryThrottle {
        MemoryThrottle::new(Limits {
            per_user,
            per_ip,
            window_secs: 60,
        })
    }

    fn fail(t: &MemoryThrottle, user: &str, addr: &str, times: u32, now: u64) {
        for _ in 0..times {
            t.record_failure(user, ip(addr), now);
        }
    }

    #[test]
    fn user_is_refused_at_the_limit_with_time_left_in_the_window() {
        let t = throttle(3, 100);
        fail(&t, "alice", "10.0.0.1", 2, NOW);
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW), Ok(()));
        fail(&t, "alice", "10.0.0.2", 1, NOW + 15);
        assert_eq!(t.check("alice", ip("10.0.0.3"), NOW + 20), Err(40));
        assert_eq!(t.check("bob", ip("10.0.0.1"), NOW + 20), Ok(()));
    }

    #[test]
    fn retry_after_is_at_least_one_second_and_the_window_end_frees_the_key() {
        let t = throttle(1, 100);
        fail(&t, "alice", "10.0.0.1", 1, NOW);
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW), Err(60));
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW + 59), Err(1));
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW + 60), Ok(()));
    }

    #[test]
    fn a_failure_after_the_window_ended_starts_a_new_window() {
        let t = throttle(2, 100);
        fail(&t, "alice", "10.0.0.1", 1, NOW);
        fail(&t, "alice", "10.0.0.1", 1, NOW + 60);
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW + 61), Ok(()));
        fail(&t, "alice", "10.0.0.1", 1, NOW + 70);
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW + 70), Err(50));
    }

    #[test]
    fn ip_is_refused_at_its_limit_whatever_the_username() {
        let t = throttle(100, 3);
        for name in ["a", "b", "c"] {
            fail(&t, name, "192.0.2.7", 1, NOW);
        }
        assert_eq!(t.check("d", ip("192.0.2.7"), NOW + 1), Err(59));
        assert_eq!(t.check("d", ip("192.0.2.8"), NOW + 1), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_prefix() {
        let t = throttle(100, 2);
        fail(&t, "a", "2001:db8:1:2::1", 1, NOW);
        fail(&t, "b", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1, NOW);
        assert_eq!(t.check("c", ip("2001:db8:1:2::99"), NOW), Err(60));
        assert_eq!(t.check("c", ip("2001:db8:1:3::1"), NOW), Ok(()));
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_the_ipv4_address() {
        let t = throttle(100, 1);
        fail(&t, "a", "::ffff:192.0.2.1", 1, NOW);
        assert_eq!(t.check("b", ip("192.0.2.1"), NOW), Err(60));
        assert_eq!(t.check("b", ip("192.0.2.2"), NOW), Ok(()));
    }

    #[test]
    fn when_both_limits_are_hit_the_longer_wait_is_reported() {
        let t = throttle(1, 1);
        fail(&t, "alice", "10.0.0.1", 1, NOW);
        fail(&t, "bob", "10.0.0.2", 1, NOW + 30);
        assert_eq!(t.check("alice", ip("10.0.0.2"), NOW + 30), Err(60));
    }

    #[test]
    fn success_resets_the_username_but_not_the_ip() {
        let t = throttle(2, 2);
        fail(&t, "alice", "10.0.0.1", 2, NOW);
        t.reset_user("alice");
        assert_eq!(t.check("alice", ip("10.0.0.9"), NOW), Ok(()));
        assert_eq!(t.check("alice", ip("10.0.0.1"), NOW), Err(60));
    }

    #[test]
    fn zero_limit_turns_that_check_off() {
        let t = throttle(0, 1);
        fail(&t, "alice", "10.0.0.1", 5, NOW);
        assert_eq!(t.check("alice", ip("10.0.0.2"), NOW), Ok(()));
        assert_eq!(t.lock().len(), 1, "no counter kept for a disabled limit");
    }

    #[test]
    fn purge_drops_ended_windows_only() {
        let t = throttle(5, 5);
        fail(&t, "alice", "10.0.0.1", 1, NOW);
        fail(&t, "bob", "10.0.0.2", 1, NOW + 30);
        assert_eq!(t.purge(NOW + 59), 0);
        assert_eq!(t.purge(NOW + 60), 2);
        assert_eq!(t.purge(NOW + 90), 2);
        assert_eq!(t.purge(NOW + 90), 0);
    }

    #[test]
    fn a_flood_of_usernames_stays_within_the_cap_by_evicting_the_oldest() {
        let limits = Limits {
            per_user: 5,
            per_ip: 0,
            window_secs: 60,
        };
        let t = MemoryThrottle::with_capacity(limits, 100);
        for i in 0..1000 {
            t.record_failure(&format!("user{i}"), ip("10.0.0.1"), NOW + i / 10);
        }
        let windows = t.lock();
        assert!(windows.len() <= 100, "{}", windows.len());
        assert!(windows.contains_key(&user_key("user999")));
        assert!(!windows.contains_key(&user_key("user0")));
    }
}
