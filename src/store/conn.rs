//! The connection every store holds: to the master of one server or of a Sentinel setup
//! (`master.rs`), or to a Redis Cluster (`cluster.rs`). Both run commands, scripts and
//! pipelines through `ConnectionLike`, so the stores do not tell them apart, except in their
//! key layout (hash tags, see [`Conn::is_cluster`]).

use std::time::Duration;

use redis::aio::{ConnectionLike, PubSub};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::cluster::ClusterConn;
use super::master::MasterConn;
use super::target::Target;
use super::StoreError;

/// A connection to wherever the store's Redis is; cloning it is cheap.
#[derive(Clone, Debug)]
pub enum Conn {
    /// One server, or the master Sentinel names.
    Master(MasterConn),
    /// A Redis Cluster.
    Cluster(ClusterConn),
}

impl Conn {
    /// Connects to `target` within `limit`; every later command is bounded by `response`
    /// (callers add their own deadline).
    pub async fn connect(
        target: &Target,
        response: Duration,
        limit: Duration,
    ) -> Result<Conn, StoreError> {
        match target {
            Target::Cluster(cluster) => ClusterConn::connect(cluster, response, limit)
                .await
                .map(Conn::Cluster),
            _ => MasterConn::connect(target, response, limit)
                .await
                .map(Conn::Master),
        }
    }

    /// A new pub/sub connection: to the current master, or to any node of the cluster.
    pub async fn pubsub(&self) -> RedisResult<PubSub> {
        match self {
            Conn::Master(master) => master.pubsub().await,
            Conn::Cluster(cluster) => cluster.pubsub().await,
        }
    }

    /// How many times the sentinels named a new master since start (0 otherwise).
    pub fn master_changes(&self) -> u64 {
        match self {
            Conn::Master(master) => master.master_changes(),
            Conn::Cluster(_) => 0,
        }
    }

    /// Changes whenever the master was looked up again (Sentinel); constant otherwise.
    pub fn master_generation(&self) -> u64 {
        match self {
            Conn::Master(master) => master.generation(),
            Conn::Cluster(_) => 0,
        }
    }

    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Every key matching `pattern` (`SCAN`, on every master of a cluster); a key may come
    /// twice. Each call waits at most `limit`.
    pub async fn scan(
        &self,
        pattern: &str,
        count: usize,
        limit: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let master = match self {
            Conn::Cluster(cluster) => return cluster.scan(pattern, count, limit).await,
            Conn::Master(master) => master,
        };
        let mut conn = master.clone();
        let (mut keys, mut cursor) = (Vec::new(), 0_u64);
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count);
            let (next, found): (u64, Vec<String>) =
                super::within(limit, scan.query_async(&mut conn)).await?;
            keys.extend(found);
            cursor = next;
            if cursor == 0 {
                return Ok(keys);
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Master(master) => master.req_packed_command(cmd),
            Conn::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Master(master) => master.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Master(master) => master.get_db(),
            Conn::Cluster(cluster) => cluster.get_db(),
        }
    }
}
