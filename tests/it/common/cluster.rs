//! A real three-master Redis Cluster on loopback (`redis-cli --cluster create`, no replicas,
//! no persistence), and the slot migration a reshard performs, one step at a time so a test
//! can run load between the steps. Every process is killed on Drop. `start_tls` makes one
//! speaking TLS only (clients and the cluster bus) whose default user is off.

use std::time::Duration;

use super::sentinel::{cli_with, launch_with, listen, Node, PASSWORD, SENTINEL_USER};
use super::{eventually, free_port, TestDir};

/// Three masters sharing the 16384 slots.
pub struct Cluster {
    _dir: TestDir,
    nodes: Vec<Node>,
    /// With TLS: the certificate every node presents; the nodes then also want the ACL user.
    tls: Option<std::path::PathBuf>,
    /// Ports of the nodes killed so far.
    killed: Vec<u16>,
}

impl Cluster {
    /// Starts three cluster-enabled redis-servers, joins them with `redis-cli --cluster
    /// create` and waits until every node reports `cluster_state:ok`.
    pub async fn start() -> Cluster {
        Cluster::start_with(false, 0).await
    }

    /// As [`Cluster::start`] with a replica for each master (six nodes), for failovers.
    pub async fn start_with_replicas() -> Cluster {
        Cluster::start_with(false, 1).await
    }

    /// As [`Cluster::start`], every node speaking TLS only (`tls-cluster yes`: the bus too)
    /// with a certificate for 127.0.0.1 made here, the default user off and the ACL user
    /// of [`SENTINEL_USER`] (its password in [`Cluster::password_file`]).
    pub async fn start_tls() -> Cluster {
        Cluster::start_with(true, 0).await
    }

    async fn start_with(tls: bool, replicas: usize) -> Cluster {
        let dir = TestDir::new();
        let tls = tls.then(|| {
            let (cert, key, _) = super::tls_cert();
            dir.write("redis-key.pem", &key);
            dir.write("redis-cert.pem", &cert)
        });
        let mut nodes = Vec::new();
        for n in 0..3 * (1 + replicas) {
            let node = launch_with("redis-server", tls.as_deref(), |port| {
                dir.write(
                    &format!("node-{n}.conf"),
                    &node_conf(&dir, n, port, tls.as_deref()),
                )
            })
            .await;
            nodes.push(node);
        }
        let cluster = Cluster {
            _dir: dir,
            nodes,
            tls,
            killed: Vec::new(),
        };
        let addrs: Vec<String> = cluster.addrs();
        let mut create = tokio::process::Command::new("redis-cli");
        if let Some(ca) = &cluster.tls {
            create.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = create
            .args(cluster.auth_args())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .await
            .expect("redis-cli runs (apt-get install redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "cluster create: {text}");
        for node in &cluster.nodes {
            cluster
                .wait_for(node.port, &["CLUSTER", "INFO"], |info| {
                    info.contains("cluster_state:ok")
                })
                .await;
        }
        cluster
    }

    fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`; with TLS
    /// `rediss+cluster://portcullis@...` (the password goes apart).
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis+cluster://{}", self.addrs().join(",")),
            Some(_) => format!(
                "rediss+cluster://{SENTINEL_USER}@{}",
                self.addrs().join(",")
            ),
        }
    }

    /// The certificate the nodes present, for `SSL_CERT_FILE` (TLS clusters only).
    pub fn tls_cert_file(&self) -> Option<&std::path::Path> {
        self.tls.as_deref()
    }

    /// A file holding the ACL user's password, for `password_file`.
    pub fn password_file(&self) -> std::path::PathBuf {
        self._dir.write("redis-password", &format!("{PASSWORD}\n"))
    }

    /// The ACL user's login for `redis-cli` (TLS clusters only; the default user is off).
    fn auth_args(&self) -> Vec<&'static str> {
        match self.tls {
            None => Vec::new(),
            Some(_) => vec![
                "--user",
                SENTINEL_USER,
                "--pass",
                PASSWORD,
                "--no-auth-warning",
            ],
        }
    }

    /// `redis-cli` on `port`, over TLS and as the ACL user when the cluster wants them.
    async fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut all = self.auth_args();
        all.extend_from_slice(args);
        cli_with(port, self.tls.as_deref(), &all).await
    }

    /// The first node still running: the one commands are sent to.
    fn first_alive(&self) -> u16 {
        self.nodes
            .iter()
            .map(|n| n.port)
            .find(|p| !self.killed.contains(p))
            .expect("a node still running")
    }

    /// Kills the node at `port` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.kill();
            self.killed.push(port);
        }
    }

    /// The nodes' ports, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis-cli -c` (follows redirections) on the first node; the reply as printed.
    pub async fn command(&self, args: &[&str]) -> String {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        self.cli(self.first_alive(), &all).await
    }

    /// One command on the first node without logging in (over TLS when the cluster speaks it).
    pub async fn anonymous(&self, args: &[&str]) -> String {
        cli_with(self.first_alive(), self.tls.as_deref(), args).await
    }

    /// Runs one command on the node at `port`, without following redirections.
    pub async fn on(&self, port: u16, args: &[&str]) -> String {
        self.cli(port, args).await
    }

    /// The slot of `key`.
    pub async fn slot_of(&self, key: &str) -> u16 {
        let out = self
            .on(self.first_alive(), &["CLUSTER", "KEYSLOT", key])
            .await;
        out.trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The port of the node serving `slot`, as the first node sees it.
    pub async fn owner(&self, slot: u16) -> u16 {
        let out = self.on(self.first_alive(), &["CLUSTER", "NODES"]).await;
        // "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots>..."
        for line in out.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                match (start.parse::<u16>(), end.parse::<u16>()) {
                    (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                    _ => false, // "[slot->-id]": a migration in progress
                }
            });
            let port = fields.get(1).and_then(|a| a.split(['@', ':']).nth(1));
            if let (true, Some(port)) = (serves, port) {
                return port.parse().expect("a node's port");
            }
        }
        panic!("no owner for slot {slot} in {out}")
    }

    /// A node other than the one at `port`.
    pub fn other_than(&self, port: u16) -> u16 {
        self.ports()
            .into_iter()
            .find(|p| *p != port)
            .expect("three nodes")
    }

    /// First step of moving `slot` from `from` to `to`: `to` imports, `from` migrates. From
    /// now on a key of the slot not found on `from` is answered `ASK` (go to `to`).
    pub async fn begin_migration(&self, slot: u16, from: u16, to: u16) {
        let (from_id, to_id, slot) = (
            self.id_of(from).await,
            self.id_of(to).await,
            slot.to_string(),
        );
        let imported = self
            .on(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id])
            .await;
        assert!(imported.contains("OK"), "importing: {imported}");
        let migrating = self
            .on(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id])
            .await;
        assert!(migrating.contains("OK"), "migrating: {migrating}");
    }

    /// Moves every key of `slot` from `from` to `to` (`MIGRATE`, as a reshard does).
    pub async fn move_keys(&self, slot: u16, from: u16, to: u16) -> usize {
        let slot = slot.to_string();
        let out = self
            .on(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1000"])
            .await;
        let keys: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if keys.is_empty() {
            return 0;
        }
        let to_port = to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        let moved = self.on(from, &args).await;
        assert!(
            moved.contains("OK") || moved.contains("NOKEY"),
            "migrate: {moved}"
        );
        keys.len()
    }

    /// Last step: every node learns that `to` serves `slot` (`MOVED` from then on).
    pub async fn end_migration(&self, slot: u16, from: u16, to: u16) {
        let (to_id, slot) = (self.id_of(to).await, slot.to_string());
        let others: Vec<u16> = self
            .ports()
            .into_iter()
            .filter(|p| *p != from && *p != to)
            .collect();
        for port in [to, from].into_iter().chain(others) {
            let out = self
                .on(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])
                .await;
            assert!(out.contains("OK"), "setslot node on {port}: {out}");
        }
    }

    /// The node id of the node at `port`.
    pub async fn id_of(&self, port: u16) -> String {
        self.on(port, &["CLUSTER", "MYID"]).await.trim().to_string()
    }

    async fn wait_for(&self, port: u16, args: &[&str], ok: impl Fn(&str) -> bool) {
        let done = eventually(Duration::from_secs(30), || async {
            let out = self.cli(port, args).await;
            ok(&out).then_some(()).ok_or(out)
        })
        .await;
        if let Err(last) = done {
            panic!("waiting on {port} for {args:?}: {last}");
        }
    }
}

/// A node's config: cluster mode, no persistence, the bus on a port of its own (port + 10000
/// may be taken or past 65535); with TLS, TLS only (bus included) and the ACL user.
fn node_conf(dir: &TestDir, n: usize, port: u16, tls: Option<&std::path::Path>) -> String {
    let mut conf = format!(
        "{listen}bind 127.0.0.1\nsave \"\"\nappendonly no\ndir {path}\n\
         dbfilename node-{n}.rdb\ncluster-enabled yes\n\
         cluster-config-file nodes-{n}-{port}.conf\ncluster-node-timeout 2000\n\
         cluster-port {bus}\n",
        listen = listen(port, dir, tls),
        path = dir.path().display(),
        bus = free_port(),
    );
    if tls.is_some() {
        conf.push_str(&format!(
            "tls-cluster yes\nuser default off\nuser {SENTINEL_USER} on >{PASSWORD} ~* &* +@all\n"
        ));
    }
    conf
}
