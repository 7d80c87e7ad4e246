//! The open-file limit against `max_connections`. Each client connection may hold an upstream
//! socket as well (a proxied request, a WebSocket tunnel), so N connections need about 2N
//! descriptors. At start the soft limit is raised toward that, as far as the hard limit
//! allows (HAProxy and Go's runtime do the same); a limit still short is a warning, since past
//! it accepts back off and upstream connects fail with 502.

/// Descriptors kept for everything else: listeners, the admin port, Redis, the log, files.
const RESERVE: u64 = 256;

/// Descriptors `max_connections` client connections can use, each with an upstream socket.
pub fn needed(max_connections: usize) -> u64 {
    u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(RESERVE)
}

/// The soft limit to ask for: `needed`, capped at `hard`; None when `soft` is no lower.
pub fn target(soft: u64, hard: u64, needed: u64) -> Option<u64> {
    let wanted = needed.min(hard);
    (wanted > soft).then_some(wanted)
}

/// Raises the soft open-file limit for `max_connections` and warns if it stays short.
pub fn raise(max_connections: usize) {
    let needed = needed(max_connections);
    let Some((mut soft, hard)) = current() else {
        tracing::warn!("cannot read the open-file limit (RLIMIT_NOFILE)");
        return;
    };
    if let Some(wanted) = target(soft, hard, needed) {
        let limit = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: hard,
        };
        // SAFETY: setrlimit only reads the struct, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
            tracing::info!(
                from = soft,
                to = wanted,
                max_connections,
                "raised the open-file limit"
            );
            soft = wanted;
        }
    }
    if soft < needed {
        tracing::warn!(
            limit = soft,
            hard_limit = hard,
            max_connections,
            needed,
            "the open-file limit is below what max_connections needs with an upstream socket \
             each: past it, accepts back off and upstream connects fail (502); raise the hard \
             limit (systemd LimitNOFILE=, ulimit -Hn) or lower max_connections"
        );
    }
}

/// The soft and hard RLIMIT_NOFILE, or None if they cannot be read.
fn current() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct, which lives for the call.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::{needed, target};

    #[test]
    fn each_connection_counts_twice_plus_a_reserve() {
        assert_eq!(needed(1), 258);
        assert_eq!(needed(10_000), 20_256);
        assert_eq!(needed(usize::MAX), u64::MAX);
    }

    #[test]
    fn the_soft_limit_rises_to_what_is_needed_and_never_past_the_hard_limit() {
        assert_eq!(target(1024, 524_288, 20_256), Some(20_256));
        assert_eq!(target(1024, 4096, 20_256), Some(4096));
        // RLIM_INFINITY as the hard limit.
        assert_eq!(target(1024, u64::MAX, 20_256), Some(20_256));
    }

    #[test]
    fn a_limit_already_high_enough_or_at_the_hard_limit_is_left_alone() {
        assert_eq!(target(1_048_576, 1_048_576, 20_256), None);
        assert_eq!(target(20_256, 524_288, 20_256), None);
        assert_eq!(target(4096, 4096, 20_256), None);
        // Never lowered.
        assert_eq!(target(65_536, 65_536, 258), None);
    }
}
