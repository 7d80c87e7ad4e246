//! Shared Redis plumbing of the stores (revocation, users, throttle): the error they all
//! answer with, opening a client from a URL, and the deadline every operation runs under.

use std::future::Future;
use std::time::Duration;

use redis::{Client, IntoConnectionInfo};

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

/// A client for `url` (redis:// or unix socket; nothing is connected yet), or `InvalidUrl`.
pub fn open_client(url: &str) -> Result<Client, StoreError> {
    // rediss:// verifies the server against the system trust store (SSL_CERT_FILE and
    // SSL_CERT_DIR are honoured, for a private CA).
    let info = url
        .into_connection_info()
        .map_err(|_| StoreError::InvalidUrl("not a redis://, rediss:// or unix socket URL"))?;
    if !info.addr().is_supported() {
        return Err(StoreError::InvalidUrl(
            "this URL scheme is not supported by this build",
        ));
    }
    Client::open(info).map_err(|_| StoreError::InvalidUrl("unusable URL"))
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

/// A multiplexed, reconnecting connection to `url`, connected within `connect` and with
/// every command bounded by `response`.
pub async fn connect_manager(
    url: &str,
    connect: Duration,
    response: Duration,
) -> Result<redis::aio::ConnectionManager, StoreError> {
    let client = open_client(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(response))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(500));
    within(
        connect,
        redis::aio::ConnectionManager::new_with_config(client, config),
    )
    .await
}
