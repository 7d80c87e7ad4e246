//! A real Sentinel deployment on loopback: one master, one replica and three
//! `redis-sentinel` processes, with an ACL user (the default user is off) whose password the
//! gateway reads from a file. Every process is killed on Drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port, TestDir};

/// The ACL user every data node knows; the sentinels and the replica log in with it.
pub const SENTINEL_USER: &str = "portcullis";
pub(super) const PASSWORD: &str = "s3ntinel-pass";
/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";

/// One redis-server or redis-sentinel process.
pub(super) struct Node {
    child: Option<Child>,
    pub(super) port: u16,
}

impl Node {
    fn spawn(program: &str, config: &std::path::Path, port: u16) -> Node {
        let child = Command::new(program)
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} must be installed (apt-get install redis-server redis-sentinel): {e}")
            });
        Node {
            child: Some(child),
            port,
        }
    }

    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Master, replica and three sentinels.
pub struct SentinelSet {
    dir: TestDir,
    /// With TLS: the certificate every node presents (the CA a client must trust).
    tls: Option<std::path::PathBuf>,
    /// [master, replica] as started; after a failover the replica is the master.
    data: Vec<Node>,
    sentinels: Vec<Node>,
}

impl SentinelSet {
    /// Starts the master and its replica, waits until the replica is in sync, then starts
    /// three sentinels (quorum 2, a master is down after 1 s) and waits until each knows the
    /// replica and the two other sentinels.
    pub async fn start() -> SentinelSet {
        SentinelSet::start_with(false).await
    }

    /// As [`SentinelSet::start`], every node (sentinels included) speaking TLS only, with a
    /// certificate for 127.0.0.1 made here; replication and the sentinels' links use TLS.
    pub async fn start_tls() -> SentinelSet {
        SentinelSet::start_with(true).await
    }

    async fn start_with(tls: bool) -> SentinelSet {
        let dir = TestDir::new();
        let tls = tls.then(|| {
            let (cert, key, _) = super::tls_cert();
            dir.write("redis-key.pem", &key);
            dir.write("redis-cert.pem", &cert)
        });
        let tls_ref = tls.as_deref();
        let master = launch_with("redis-server", tls_ref, |port| {
            data_conf(&dir, "master", port, None, tls_ref)
        })
        .await;
        let master_port = master.port;
        let replica = launch_with("redis-server", tls_ref, |port| {
            data_conf(&dir, "replica", port, Some(master_port), tls_ref)
        })
        .await;
        let replica_port = replica.port;
        let mut set = SentinelSet {
            data: vec![master, replica],
            sentinels: Vec::new(),
            dir,
            tls: tls.clone(),
        };
        set.wait_for(
            "the replica to sync",
            master_port,
            &["INFO", "replication"],
            |info| info.contains("connected_slaves:1") && info.contains("state=online"),
        )
        .await;
        for n in 0..3 {
            let sentinel = launch_with("redis-sentinel", tls_ref, |port| {
                let conf = format!(
                    "{listen}bind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel auth-user {MASTER_NAME} {SENTINEL_USER}\n\
                     sentinel auth-pass {MASTER_NAME} {PASSWORD}\n",
                    listen = listen(port, &set.dir, tls_ref),
                    dir = set.dir.path().display()
                );
                set.dir.write(&format!("sentinel-{n}.conf"), &conf)
            })
            .await;
            set.sentinels.push(sentinel);
        }
        for n in 0..3 {
            let port = set.sentinels[n].port;
            set.wait_for(
                "a sentinel to see the others",
                port,
                &["SENTINEL", "sentinels", MASTER_NAME],
                |out| out.matches("runid").count() >= 2,
            )
            .await;
            set.wait_for(
                "a sentinel to see the replica",
                port,
                &["SENTINEL", "replicas", MASTER_NAME],
                |out| out.contains(&replica_port.to_string()),
            )
            .await;
        }
        set
    }

    /// `redis+sentinel://portcullis@s1,s2,s3/mymaster`: the password goes apart.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let scheme = match self.tls {
            Some(_) => "rediss+sentinel",
            None => "redis+sentinel",
        };
        format!(
            "{scheme}://{SENTINEL_USER}@{}/{MASTER_NAME}",
            hosts.join(",")
        )
    }

    /// The certificate the nodes present, for `SSL_CERT_FILE` (TLS sets only).
    pub fn tls_cert_file(&self) -> Option<&std::path::Path> {
        self.tls.as_deref()
    }

    /// `redis-cli` on `port`, over TLS when the set speaks it.
    async fn cli(&self, port: u16, args: &[&str]) -> String {
        cli_with(port, self.tls.as_deref(), args).await
    }

    /// A file holding the ACL user's password, for `password_file`.
    pub fn password_file(&self) -> std::path::PathBuf {
        self.dir.write("redis-password", &format!("{PASSWORD}\n"))
    }

    /// The first master's port.
    pub fn master_port(&self) -> u16 {
        self.data[0].port
    }

    /// The replica's port (the master after a failover).
    pub fn replica_port(&self) -> u16 {
        self.data[1].port
    }

    /// Kills the first master at once (SIGKILL).
    pub fn kill_master(&mut self) {
        self.data[0].kill();
    }

    /// Kills the replica at once (SIGKILL).
    pub fn kill_replica(&mut self) {
        self.data[1].kill();
    }

    /// The port the sentinels name as the master (asked of the first sentinel).
    pub async fn master_named(&self) -> Option<u16> {
        let out = self
            .cli(
                self.sentinels[0].port,
                &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
            )
            .await;
        out.lines().nth(1).and_then(|port| port.trim().parse().ok())
    }

    /// Waits until every sentinel names `port` as the master.
    pub async fn wait_for_master(&self, port: u16, within: Duration) {
        let named = eventually(within, || async {
            for sentinel in &self.sentinels {
                let out = self
                    .cli(
                        sentinel.port,
                        &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
                    )
                    .await;
                if out.lines().nth(1).map(str::trim) != Some(&port.to_string()) {
                    return Err(format!("sentinel {} names {out:?}", sentinel.port));
                }
            }
            Ok(())
        })
        .await;
        named.expect("the sentinels agree on the new master");
    }

    /// Runs one command on the first sentinel.
    pub async fn sentinel_command(&self, args: &[&str]) -> String {
        self.cli(self.sentinels[0].port, args).await
    }

    /// Runs one command on a data node as the ACL user; the reply as redis-cli prints it.
    pub async fn command(&self, port: u16, args: &[&str]) -> String {
        let mut all = vec![
            "--user",
            SENTINEL_USER,
            "--pass",
            PASSWORD,
            "--no-auth-warning",
        ];
        all.extend_from_slice(args);
        self.cli(port, &all).await
    }

    async fn wait_for(&self, what: &str, port: u16, args: &[&str], ok: impl Fn(&str) -> bool) {
        let done = eventually(Duration::from_secs(30), || async {
            let out = match port == self.data[0].port || port == self.data[1].port {
                true => self.command(port, args).await,
                false => self.cli(port, args).await,
            };
            ok(&out).then_some(()).ok_or(out)
        })
        .await;
        if let Err(last) = done {
            panic!("waiting for {what}: {last}");
        }
    }
}

/// A data node's config: the ACL user, no persistence, optionally replicating `master`.
fn data_conf(
    dir: &TestDir,
    name: &str,
    port: u16,
    master: Option<u16>,
    tls: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let mut conf = format!(
        "{listen}bind 127.0.0.1\nsave \"\"\nappendonly no\ndir {dir}\n\
         dbfilename {name}.rdb\n\
         user default off\nuser {SENTINEL_USER} on >{PASSWORD} ~* &* +@all\n\
         masteruser {SENTINEL_USER}\nmasterauth {PASSWORD}\n",
        listen = listen(port, dir, tls),
        dir = dir.path().display()
    );
    if let Some(master) = master {
        conf.push_str(&format!("replicaof 127.0.0.1 {master}\n"));
    }
    dir.write(&format!("{name}.conf"), &conf)
}

/// Starts `program` on a free port with the config `conf` writes for it and waits until it
/// answers; when another test took the port meanwhile (our process exits), tries another.
pub(super) async fn launch(program: &str, conf: impl Fn(u16) -> std::path::PathBuf) -> Node {
    launch_with(program, None, conf).await
}

/// As [`launch`], pinging over TLS trusting `tls` when given.
pub(super) async fn launch_with(
    program: &str,
    tls: Option<&std::path::Path>,
    conf: impl Fn(u16) -> std::path::PathBuf,
) -> Node {
    for _ in 0..5 {
        let port = free_port();
        let mut node = Node::spawn(program, &conf(port), port);
        let answered = eventually(Duration::from_secs(10), || async move {
            let answer = cli_with(port, tls, &["PING"]).await;
            // A sentinel answers PONG; a data node with the default user off, NOAUTH.
            (answer.contains("PONG") || answer.contains("NOAUTH"))
                .then_some(())
                .ok_or(answer)
        })
        .await;
        let ours = node
            .child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        match (answered, ours) {
            (Ok(()), true) => return node,
            (Err(last), true) => panic!("{program} on port {port} never answered: {last}"),
            (_, false) => continue,
        }
    }
    panic!("{program}: no free port after 5 tries");
}

/// `redis-cli -p PORT ARGS...`, stdout (errors included) as text.
pub(super) async fn cli(port: u16, args: &[&str]) -> String {
    cli_with(port, None, args).await
}

/// `redis-cli`, over TLS trusting `tls` when given.
pub(super) async fn cli_with(port: u16, tls: Option<&std::path::Path>, args: &[&str]) -> String {
    let mut command = tokio::process::Command::new("redis-cli");
    if let Some(ca) = tls {
        command.arg("--tls").arg("--cacert").arg(ca);
    }
    let out = command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .expect("redis-cli runs (apt-get install redis-tools)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The listening lines of a node's config: a plain port, or TLS only (`port 0`) with the
/// set's certificate, and TLS for replication and the sentinels' links too.
pub(super) fn listen(port: u16, dir: &TestDir, tls: Option<&std::path::Path>) -> String {
    match tls {
        None => format!("port {port}\n"),
        Some(cert) => format!(
            "port 0\ntls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n\
             tls-ca-cert-file {cert}\ntls-auth-clients no\ntls-replication yes\n",
            cert = cert.display(),
            key = dir.join("redis-key.pem").display(),
        ),
    }
}
