//! A connection to a Redis Cluster.
//!
//! The crate's cluster client keeps the slot map and one multiplexed connection per node,
//! sends each command, script and pipeline to the master of its first key's slot, and
//! follows the cluster's redirections: `MOVED` (the slot now lives elsewhere: the slot map is
//! refreshed and the command sent there) and `ASK` (the slot is being migrated and this key
//! already moved: the one command goes to the importing node after `ASKING`). A pipeline or
//! script whose keys span slots is refused by the server (`CROSSSLOT`), so every multi-key
//! script and pipeline of the stores touches keys of one hash tag (see each store's key table).
//!
//! Pub/sub: a classic `PUBLISH` (scripts included) is forwarded over the cluster bus to every
//! node, so the revocation mirror subscribes on any one node, whichever slots it holds. The
//! seed nodes are tried in turn, starting after the one that last failed, so a dead node is
//! replaced by the next one on the list.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, PubSub};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, Cmd, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

use super::target::ClusterTarget;
use super::{within, StoreError};

/// Routes commands over the cluster; cloning it is cheap (a handle on the client's task).
#[derive(Clone)]
pub struct ClusterConn {
    conn: ClusterConnection,
    /// Seed nodes, for the pub/sub connection.
    nodes: Arc<[ConnectionInfo]>,
    /// The seed node the next pub/sub connection tries first.
    next: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses only: the connection infos also hold the password.
        let addrs: Vec<String> = self.nodes.iter().map(|i| i.addr().to_string()).collect();
        f.debug_struct("ClusterConn")
            .field("seeds", &addrs)
            .finish_non_exhaustive()
    }
}

impl ClusterConn {
    /// Learns the cluster from its seed nodes within `limit`; every later command is bounded
    /// by `response` (callers add their own deadline).
    pub async fn connect(
        target: &ClusterTarget,
        response: Duration,
        limit: Duration,
    ) -> Result<ClusterConn, StoreError> {
        let client = ClusterClient::builder(target.nodes.clone())
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(response)
            // MOVED/ASK and a node being replaced are retried within the caller's deadline.
            .retries(3)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build();
        let client = client.map_err(|err| {
            tracing::warn!(error = %err, "redis cluster client refused its configuration");
            StoreError::InvalidUrl("the cluster nodes do not share one login and TLS mode")
        })?;
        let conn = within(limit, client.get_async_connection()).await?;
        Ok(ClusterConn {
            conn,
            nodes: target.nodes.clone().into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A pub/sub connection to one of the seed nodes (any node sees every `PUBLISH`).
    pub async fn pubsub(&self) -> RedisResult<PubSub> {
        let first = self.next.load(Ordering::Relaxed);
        let mut last = None;
        for offset in 0..self.nodes.len() {
            let index = (first + offset) % self.nodes.len();
            let opened = async {
                Client::open(self.nodes[index].clone())?
                    .get_async_pubsub()
                    .await
            };
            match opened.await {
                Ok(pubsub) => {
                    self.next.store(index, Ordering::Relaxed);
                    return Ok(pubsub);
                }
                Err(err) => {
                    tracing::debug!(error = %err, node = %self.nodes[index].addr(), "redis cluster node unreachable for pub/sub");
                    // Next time, start after the node that failed.
                    self.next.store(index + 1, Ordering::Relaxed);
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no seed node"))
        }))
    }
}

impl ClusterConn {
    /// Every key matching `pattern` on every master: `SCAN` walks one node's keyspace, so
    /// each master found in `CLUSTER NODES` is walked in turn, each call within `limit`.
    pub async fn scan(
        &self,
        pattern: &str,
        count: usize,
        limit: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut nodes = redis::cmd("CLUSTER");
        nodes.arg("NODES");
        let nodes: String = within(limit, nodes.query_async(&mut conn)).await?;
        let mut keys = Vec::new();
        for (host, port) in masters(&nodes) {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count);
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                };
                let sent = conn.route_command(scan, RoutingInfo::SingleNode(route));
                let value = within(limit, sent).await?;
                let (next, found): (u64, Vec<String>) =
                    redis::from_redis_value(value).map_err(|err| {
                        tracing::debug!(error = %err, "unexpected SCAN reply");
                        StoreError::Unavailable
                    })?;
                keys.extend(found);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys)
    }
}

/// The masters' addresses in a `CLUSTER NODES` reply: lines of
/// `<id> <ip:port@bus[,hostname]> <flags> ...`, flags holding `master` (and not `fail`).
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (addr, flags) = (fields.next()?, fields.next()?);
            let serving = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            let (host, port) = addr.split('@').next()?.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?)).filter(|_| serving)
        })
        .collect()
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::masters;

    #[test]
    fn masters_are_read_from_cluster_nodes_and_failed_ones_left_out() {
        let nodes = "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
                     a2 127.0.0.1:7002@17002,host2 master - 0 0 2 connected 5461-10922\n\
                     a3 ::1:7003@17003 master,fail - 0 0 3 connected 10923-16383\n\
                     a4 127.0.0.1:7004@17004 slave a1 0 0 1 connected\n";
        assert_eq!(
            masters(nodes),
            [
                ("127.0.0.1".to_string(), 7001),
                ("127.0.0.1".to_string(), 7002)
            ]
        );
    }
}
