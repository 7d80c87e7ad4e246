//! Shared Redis plumbing of the stores (revocation, users, throttle, sessions): the error
//! they all answer with, where Redis is (`target`: one server, Sentinel or a Cluster), the
//! connection (`conn`: following the master in `master`, or routing over the cluster in
//! `cluster`), and the deadline every operation runs under.

mod cluster;
mod conn;
mod master;
mod target;

pub use self::cluster::ClusterConn;
pub use self::conn::Conn;
pub use self::master::MasterConn;
pub use self::target::{ClusterTarget, SentinelTarget, Target};

use std::future::Future;
use std::time::Duration;

/// Why a store could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backing store cannot be reached or kept in sync.
    #[error("revocation store unavailable")]
    Unavailable,
    /// The store's URL cannot be used (no URL in the message: it may hold a password).
    #[error("invalid redis URL: {0}")]
    InvalidUrl(&'static str),
}

/// Runs one Redis operation under a deadline; every failure is `Unavailable` (the cause is
/// logged by whoever handles it, here at debug level to keep a Redis outage from flooding).
pub async fn within<T>(
    limit: Duration,
    operation: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "redis operation failed");
            Err(StoreError::Unavailable)
        }
        Err(_) => {
            tracing::debug!(timeout_ms = limit.as_millis(), "redis operation timed out");
            Err(StoreError::Unavailable)
        }
    }
}
