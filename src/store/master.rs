//! A connection to the master, whichever server that is at the moment (one server or Sentinel).
//!
//! With one server it is a `ConnectionManager` (multiplexed, reconnecting). With Sentinel
//! it is the same over the master the sentinels last named, plus the way to find the next
//! one: a command that fails because the master went away (connection refused, reset, timed
//! out) or because the server is no longer the master (`READONLY`: a failover turned it into
//! a replica) asks the sentinels again. The sentinels' answer is checked (the named server
//! must say `ROLE` master) before any command goes to it, so nothing is ever written to a
//! replica. A command that certainly did not run (refused connection, `READONLY`) is sent
//! once more to the new master; any other failure is returned as is, as the write may have
//! run. One lookup at a time: callers that saw the same master fail wait for one answer.
//!
//! `READONLY` mostly arrives as a reply, not as an error: the connection hands a command's
//! server error back as `Value::ServerError` (a pipeline's or a script's too), and only the
//! caller's conversion turns it into `Err`. So replies are inspected here; missing that, a
//! connection that reconnected to the demoted master by itself (it does after a
//! switchover's `CLIENT KILL`) kept every write on the replica. A lookup runs in its own
//! task: a caller's deadline (500 ms for a revocation) is shorter than a lookup over TLS
//! can take on a loaded machine, and a lookup cancelled each time never ends.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::target::{SentinelTarget, Target};
use super::{within, StoreError};

/// Longest one sentinel lookup may take (the sentinels asked, the master's `ROLE` checked,
/// a connection to it made).
const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// A connection to the current master; cloning it is an `Arc` clone.
#[derive(Clone)]
pub struct MasterConn(Arc<Inner>);

struct Inner {
    current: ArcSwap<Current>,
    /// None for a single server.
    finder: Option<Finder>,
    config: ConnectionManagerConfig,
    /// How many times the sentinels named a different master.
    master_changes: AtomicU64,
}

/// The master in use: its client (for pub/sub) and its multiplexed connection.
struct Current {
    /// Bumped on every lookup, so concurrent failures cause one lookup.
    generation: u64,
    client: Client,
    manager: ConnectionManager,
}

/// How to ask the sentinels.
struct Finder {
    /// Serializes lookups; a tokio lock, as a lookup awaits.
    sentinel: tokio::sync::Mutex<Sentinel>,
    master: String,
    node: SentinelNodeConnectionInfo,
}

impl std::fmt::Debug for MasterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address only: the connection info also holds the password.
        let current = self.0.current.load();
        f.debug_struct("MasterConn")
            .field(
                "server",
                &current.client.get_connection_info().addr().to_string(),
            )
            .field("sentinel", &self.0.finder.is_some())
            .finish_non_exhaustive()
    }
}

impl MasterConn {
    /// Connects to `target` (for Sentinel: asks the sentinels for the master first) within
    /// `limit`; every later command is bounded by `response` (callers add their own deadline).
    pub async fn connect(
        target: &Target,
        response: Duration,
        limit: Duration,
    ) -> Result<MasterConn, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(response))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let opened = async {
            let (client, finder) = match target {
                Target::Single(info) => (Client::open((**info).clone())?, None),
                Target::Sentinel(s) => {
                    let finder = Finder::new(s)?;
                    (finder.master().await?, Some(finder))
                }
                Target::Cluster(_) => {
                    return Err(RedisError::from((
                        ErrorKind::Client,
                        "a cluster is reached through ClusterConn",
                    )))
                }
            };
            let manager =
                ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
            let current = Current {
                generation: 0,
                client,
                manager,
            };
            Ok::<_, RedisError>((current, finder))
        };
        let (current, finder) = within(limit, opened).await?;
        Ok(MasterConn(Arc::new(Inner {
            current: ArcSwap::from_pointee(current),
            finder,
            config,
            master_changes: AtomicU64::new(0),
        })))
    }

    /// A new pub/sub connection to the current master (found again first when it is gone).
    pub async fn pubsub(&self) -> RedisResult<PubSub> {
        let current = self.0.current.load_full();
        match current.client.get_async_pubsub().await {
            Err(err) if self.0.finder.is_some() => {
                tracing::debug!(error = %err, "redis master unreachable for pub/sub");
                self.rediscover_detached(current.generation).await?;
                self.0.current.load().client.get_async_pubsub().await
            }
            answered => answered,
        }
    }

    /// How many times the sentinels named a new master since start (0 with one server).
    pub fn master_changes(&self) -> u64 {
        self.0.master_changes.load(Ordering::Relaxed)
    }

    /// Bumped by every sentinel lookup; a pub/sub connection opened before a bump may be
    /// on a server demoted since.
    pub fn generation(&self) -> u64 {
        self.0.current.load().generation
    }

    /// Runs `op` on the current master; see the module docs for when it looks again.
    /// `readonly` tells whether a reply holds `READONLY` (the server is a replica).
    async fn send<T, Fut>(
        &self,
        op: impl Fn(ConnectionManager) -> Fut,
        readonly: impl Fn(&T) -> bool,
    ) -> RedisResult<T>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let current = self.0.current.load_full();
        let result = op(current.manager.clone()).await;
        let (moved, never_ran) = match &result {
            _ if self.0.finder.is_none() => return result,
            Ok(reply) if readonly(reply) => (true, true),
            Ok(_) => return result,
            Err(err) => (master_may_have_moved(err), never_ran(err)),
        };
        if !moved {
            return result;
        }
        self.rediscover_detached(current.generation).await?;
        if !never_ran {
            return result;
        }
        let manager = self.0.current.load().manager.clone();
        op(manager).await
    }

    /// [`MasterConn::rediscover`] in a task of its own, which finishes even when the
    /// caller gives up waiting (and the next caller then finds the new master in place);
    /// bounded by [`LOOKUP_LIMIT`], as it holds the lookup lock and a sentinel that accepts
    /// but never answers would otherwise hold it for good.
    async fn rediscover_detached(&self, generation: u64) -> RedisResult<()> {
        let conn = self.clone();
        let lookup = tokio::spawn(async move {
            tokio::time::timeout(LOOKUP_LIMIT, conn.rediscover(generation)).await
        });
        match lookup.await {
            Ok(Ok(looked)) => looked,
            Ok(Err(_)) => Err(RedisError::from((
                ErrorKind::Io,
                "the sentinels did not name a reachable master in time",
            ))),
            Err(_) => Err(RedisError::from((
                ErrorKind::Client,
                "the sentinel lookup task ended",
            ))),
        }
    }

    /// Asks the sentinels for the master unless another caller already did since
    /// `generation` was current.
    async fn rediscover(&self, generation: u64) -> RedisResult<()> {
        let Some(finder) = &self.0.finder else {
            return Ok(());
        };
        let _lookup = finder.sentinel.lock().await;
        let previous = self.0.current.load_full();
        if previous.generation != generation {
            return Ok(());
        }
        let client = finder.master_locked(_lookup).await?;
        let manager =
            ConnectionManager::new_with_config(client.clone(), self.0.config.clone()).await?;
        let (old, new) = (
            previous.client.get_connection_info().addr().to_string(),
            client.get_connection_info().addr().to_string(),
        );
        if old != new {
            self.0.master_changes.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(old, new, master = %finder.master, "redis master changed (sentinel)");
        }
        self.0.current.store(Arc::new(Current {
            generation: generation + 1,
            client,
            manager,
        }));
        Ok(())
    }
}

impl Finder {
    fn new(target: &SentinelTarget) -> RedisResult<Finder> {
        let sentinel = Sentinel::build(target.sentinels.clone())?;
        let mut node =
            SentinelNodeConnectionInfo::default().set_redis_connection_info(target.node.clone());
        if target.tls {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        Ok(Finder {
            sentinel: tokio::sync::Mutex::new(sentinel),
            master: target.master.clone(),
            node,
        })
    }

    /// The master the sentinels name, checked to be one.
    async fn master(&self) -> RedisResult<Client> {
        let guard = self.sentinel.lock().await;
        self.master_locked(guard).await
    }

    async fn master_locked(
        &self,
        mut sentinel: tokio::sync::MutexGuard<'_, Sentinel>,
    ) -> RedisResult<Client> {
        sentinel
            .async_master_for(&self.master, Some(&self.node))
            .await
    }
}

/// The connection or the server's role says this may no longer be the master.
fn master_may_have_moved(err: &RedisError) -> bool {
    never_ran(err) || err.is_io_error() || err.is_connection_dropped() || err.is_timeout()
}

/// A reply that is the server's `READONLY`: the command did not run (a replica).
fn is_readonly(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(err) if err.kind() == Some(redis::ServerErrorKind::ReadOnly))
}

/// The command was refused before it could run anywhere.
fn never_ran(err: &RedisError) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
    ) || err.is_connection_refusal()
}

impl ConnectionLike for MasterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.send(
                |mut manager| async move { manager.req_packed_command(cmd).await },
                is_readonly,
            )
            .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            // A replica answers a pipeline's reads and refuses its writes, so one READONLY
            // means none of its writes ran: the whole pipeline goes to the new master.
            self.send(
                |mut manager| async move {
                    manager.req_packed_commands(pipeline, offset, count).await
                },
                |replies: &Vec<Value>| replies.iter().any(is_readonly),
            )
            .await
        })
    }

    fn get_db(&self) -> i64 {
        self.0
            .current
            .load()
            .client
            .get_connection_info()
            .redis_settings()
            .db()
    }
}
