//! deploy/k8s on Redis: the gateway ConfigMap's `[store]` names the sentinels of
//! sentinel.yaml and the master they monitor, its password is the mounted Secret key, the
//! quorum, the PDBs and the HPA fit the pod counts, the NetworkPolicies admit the pods that
//! must talk. Then redis-start.sh itself is run (with the ConfigMap's redis.conf and ACL
//! rules) and two gateways on the ConfigMap's `[store]` work through it as the restricted
//! ACL user, which cannot do what the gateway never needs. No cluster is involved: the
//! pod names do not resolve here, so the script takes its first-start branch.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use serde_norway::Value;

use crate::common::*;
use crate::deploy::{at, container, k8s, k8s_gateway, k8s_objects, mounted_file, seq_at, str_at};

type Objects = BTreeMap<(String, String), Value>;

/// The text of `key` in ConfigMap `name`.
fn configmap_file(objects: &Objects, name: &str, key: &str) -> String {
    str_at(k8s(objects, "ConfigMap", name), &["data", key]).to_string()
}

fn replicas(workload: &Value) -> u64 {
    at(workload, &["spec", "replicas"])
        .as_u64()
        .expect("replicas is a number")
}

/// `sentinel monitor <name> <host> <port> <quorum>` in sentinel-start.sh.
fn monitor_line(objects: &Objects) -> (String, u16, u64) {
    let script = configmap_file(objects, "portcullis-sentinel", "sentinel-start.sh");
    let line = script
        .lines()
        .find(|l| l.trim_start().starts_with("sentinel monitor "))
        .expect("sentinel-start.sh monitors a master");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{line}");
    (
        words[2].to_string(),
        words[4].parse().expect("a port"),
        words[5].parse().expect("a quorum"),
    )
}

fn gateway_store(objects: &Objects) -> toml::Table {
    let (gateway, _) = k8s_gateway(objects);
    gateway
        .store
        .expect("the ConfigMap's gateway.toml has [store]")
}

#[test]
fn k8s_gateway_store_is_the_sentinel_statefulset_with_a_mounted_password() {
    let objects = k8s_objects();
    let store = gateway_store(&objects);
    assert_eq!(store["backend"].as_str(), Some("redis"));
    let url = store["redis_url"].as_str().expect("redis_url");
    let rest = url
        .strip_prefix("redis+sentinel://portcullis@")
        .expect("a sentinel URL with the ACL user, no password in it");
    let (hosts, master) = rest.split_once('/').expect("/master_name");
    let sentinels = k8s(&objects, "StatefulSet", "portcullis-sentinel");
    let service = str_at(sentinels, &["spec", "serviceName"]);
    let port = u64::from(monitor_port(&objects));
    let expected: Vec<String> = (0..replicas(sentinels))
        .map(|n| format!("portcullis-sentinel-{n}.{service}:{port}"))
        .collect();
    assert_eq!(hosts.split(',').collect::<Vec<_>>(), expected);
    let (monitored, data_port, _) = monitor_line(&objects);
    assert_eq!(master, monitored, "the master name the sentinels monitor");
    let headless = k8s(&objects, "Service", service);
    assert_eq!(str_at(headless, &["spec", "clusterIP"]), "None");
    assert_eq!(
        at(headless, &["spec", "selector"]),
        at(sentinels, &["spec", "template", "metadata", "labels"])
    );
    let redis = k8s(&objects, "StatefulSet", "portcullis-redis");
    let redis_conf = configmap_file(&objects, "portcullis-redis", "redis.conf");
    assert!(redis_conf.contains(&format!("port {data_port}\n")));
    assert_eq!(
        at(&seq_at(container(redis), &["ports"])[0], &["containerPort"]).as_u64(),
        Some(u64::from(data_port))
    );

    // The password file is the gateway's key of the Redis Secret, and only that one.
    let (_, config_dir) = k8s_gateway(&objects);
    let file = store["password_file"].as_str().expect("password_file");
    let path = crate::deploy::resolve(&config_dir, file);
    let deployment = k8s(&objects, "Deployment", "portcullis");
    let (secret, key) = mounted_file(&objects, deployment, &path);
    assert_eq!(
        str_at(secret, &["metadata", "name"]),
        "portcullis-redis-auth"
    );
    assert_eq!(key, "portcullis-password");
    let volume = seq_at(deployment, &["spec", "template", "spec", "volumes"])
        .iter()
        .find(|v| {
            v.get("secret")
                .is_some_and(|s| s["secretName"] == "portcullis-redis-auth")
        })
        .expect("the Redis Secret is a volume");
    assert_eq!(seq_at(volume, &["secret", "items"]).len(), 1);
    for (secret, key) in [
        ("portcullis-redis-auth", "portcullis-password"),
        ("portcullis-redis-auth", "sentinel-password"),
    ] {
        let value = str_at(k8s(&objects, "Secret", secret), &["stringData", key]);
        assert!(value.starts_with("REPLACE-ME"), "{key} is a placeholder");
    }
}

fn monitor_port(objects: &Objects) -> u16 {
    let sentinels = k8s(objects, "StatefulSet", "portcullis-sentinel");
    let port = at(
        &seq_at(container(sentinels), &["ports"])[0],
        &["containerPort"],
    );
    u16::try_from(port.as_u64().expect("a port")).expect("a port")
}

/// Pods left when a PDB allows its most: `maxUnavailable` or `minAvailable` against count.
fn pods_left(pdb: &Value, count: u64) -> u64 {
    match (
        pdb["spec"].get("maxUnavailable"),
        pdb["spec"].get("minAvailable"),
    ) {
        (Some(max), None) => count - max.as_u64().expect("a number"),
        (None, Some(min)) => min.as_u64().expect("a number"),
        _ => panic!("a PDB with exactly one of maxUnavailable, minAvailable"),
    }
}

#[test]
fn k8s_quorum_pdbs_and_hpa_fit_the_pod_counts() {
    let objects = k8s_objects();
    let sentinels = k8s(&objects, "StatefulSet", "portcullis-sentinel");
    let count = replicas(sentinels);
    let (_, _, quorum) = monitor_line(&objects);
    assert!(
        count >= 3 && count % 2 == 1,
        "an odd number of sentinels, 3 or more"
    );
    assert!(quorum >= 2 && quorum <= count, "quorum {quorum} of {count}");
    // Through a drain the sentinels left must still reach the quorum and elect a leader
    // (a majority of all of them).
    let left = pods_left(
        k8s(&objects, "PodDisruptionBudget", "portcullis-sentinel"),
        count,
    );
    assert!(
        left >= quorum && left > count / 2,
        "{left} sentinels left of {count}"
    );

    // A drained data pod leaves a master and as many replicas as WAIT asks for.
    let store = gateway_store(&objects);
    let acks = store
        .get("min_replica_acks")
        .and_then(toml::Value::as_integer)
        .expect("min_replica_acks");
    let acks = u64::try_from(acks).expect("non-negative");
    assert!(acks >= 1, "a revocation waits for a replica");
    let redis = k8s(&objects, "StatefulSet", "portcullis-redis");
    let left = pods_left(
        k8s(&objects, "PodDisruptionBudget", "portcullis-redis"),
        replicas(redis),
    );
    assert!(left > acks, "{left} data pods left, WAIT needs 1 + {acks}");

    // Every PDB selects the pods of exactly one workload, with their labels.
    for ((kind, name), pdb) in &objects {
        if kind != "PodDisruptionBudget" {
            continue;
        }
        let selector = at(pdb, &["spec", "selector", "matchLabels"]);
        let matching: Vec<&String> = objects
            .iter()
            .filter(|((k, _), _)| k == "Deployment" || k == "StatefulSet")
            .filter(|(_, w)| at(w, &["spec", "template", "metadata", "labels"]) == selector)
            .map(|((_, n), _)| n)
            .collect();
        assert_eq!(matching.len(), 1, "PDB {name} selects {matching:?}");
    }
    let hpa = k8s(&objects, "HorizontalPodAutoscaler", "portcullis");
    let min = at(hpa, &["spec", "minReplicas"])
        .as_u64()
        .expect("minReplicas");
    assert!(min >= 2, "two gateways or more");
    let gateways = pods_left(k8s(&objects, "PodDisruptionBudget", "portcullis"), min);
    assert!(
        gateways < min,
        "the gateway PDB must let a drain evict one of {min}"
    );
}

#[test]
fn k8s_network_policies_admit_the_gateways_sentinels_and_data_pods() {
    let objects = k8s_objects();
    let pods = |kind: &str, name: &str| -> Value {
        at(
            k8s(&objects, kind, name),
            &["spec", "template", "metadata", "labels"],
        )
        .clone()
    };
    let gateway = pods("Deployment", "portcullis");
    let redis = pods("StatefulSet", "portcullis-redis");
    let sentinel = pods("StatefulSet", "portcullis-sentinel");
    for (policy, guarded, port) in [
        ("portcullis-redis", &redis, 6379),
        (
            "portcullis-sentinel",
            &sentinel,
            u64::from(monitor_port(&objects)),
        ),
    ] {
        let policy = k8s(&objects, "NetworkPolicy", policy);
        assert_eq!(at(policy, &["spec", "podSelector", "matchLabels"]), guarded);
        let rules = seq_at(policy, &["spec", "ingress"]);
        assert_eq!(rules.len(), 1);
        let from: Vec<&Value> = seq_at(&rules[0], &["from"])
            .iter()
            .map(|f| at(f, &["podSelector", "matchLabels"]))
            .collect();
        for needed in [&gateway, &redis, &sentinel] {
            assert!(from.contains(&needed), "{needed:?} is admitted");
        }
        let ports = seq_at(&rules[0], &["ports"]);
        assert_eq!(ports.len(), 1);
        assert_eq!(at(&ports[0], &["port"]).as_u64(), Some(port));
    }
}

// ---- redis-start.sh and the ACL user, for real --------------------------------------------

const PASSWORD: &str = "k8s-test-gateway-pass";

/// redis-server as redis-start.sh starts it; killed on Drop.
struct ScriptedRedis {
    child: Child,
    port: u16,
    _dir: TestDir,
}

impl Drop for ScriptedRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ScriptedRedis {
    /// Lays out /config, /auth and /conf under a temp dir, runs redis-start.sh (paths
    /// rewritten there, `hostname` saying portcullis-redis-0) and waits for the server.
    async fn start(objects: &Objects) -> ScriptedRedis {
        let dir = TestDir::new();
        let port = free_port();
        let root = dir.path().display().to_string();
        let conf = configmap_file(objects, "portcullis-redis", "redis.conf")
            .replace("port 6379\n", &format!("port {port}\nbind 127.0.0.1\n"))
            .replace("dir /data\n", &format!("dir {root}/data\n"));
        dir.write("config/redis.conf", &conf);
        let acl = configmap_file(objects, "portcullis-redis", "portcullis.acl");
        dir.write("config/portcullis.acl", &acl);
        dir.write("auth/portcullis-password", PASSWORD);
        dir.write("auth/replication-password", "k8s-test-replication");
        dir.write("auth/sentinel-password", "k8s-test-sentinel");
        std::fs::create_dir_all(dir.join("conf")).expect("conf dir");
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        let script = configmap_file(objects, "portcullis-redis", "redis-start.sh")
            .replace("/config/", &format!("{root}/config/"))
            .replace("/auth/", &format!("{root}/auth/"))
            .replace("/conf/", &format!("{root}/conf/"));
        let script = dir.write("redis-start.sh", &script);
        let bin = dir.write("bin/hostname", "#!/bin/sh\necho portcullis-redis-0\n");
        make_executable(&bin);
        let path = format!("{root}/bin:{}", std::env::var("PATH").unwrap_or_default());
        let child = Command::new("sh")
            .arg(&script)
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let redis = ScriptedRedis {
            child,
            port,
            _dir: dir,
        };
        let up = eventually(Duration::from_secs(30), || async {
            let out = redis.cli(&["PING"]).await;
            out.contains("PONG").then_some(()).ok_or(out)
        });
        up.await.expect("redis-start.sh started redis-server");
        redis
    }

    /// `redis-cli` as the gateway's ACL user.
    async fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut all = vec!["-p", &port, "--user", "portcullis", "--pass", PASSWORD];
        all.push("--no-auth-warning");
        all.extend_from_slice(args);
        redis_cli(&all).await
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `redis-cli -h 127.0.0.1 ARGS`, its output; bounded, as an allowed SUBSCRIBE never ends.
async fn redis_cli(args: &[&str]) -> String {
    let run = tokio::process::Command::new("redis-cli")
        .arg("-h")
        .arg("127.0.0.1")
        .args(args)
        .kill_on_drop(true)
        .output();
    let Ok(out) = tokio::time::timeout(Duration::from_secs(5), run).await else {
        return format!("redis-cli {args:?} did not return");
    };
    let out = out.expect("redis-cli runs (apt-get install redis-tools)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The ConfigMap's `[store]` pointed at `redis` (one server here, so no WAIT for a replica).
fn store_section(objects: &Objects, redis: &ScriptedRedis, password: &Path) -> String {
    let mut store = gateway_store(objects);
    store.insert(
        "redis_url".into(),
        format!("redis://portcullis@127.0.0.1:{}/", redis.port).into(),
    );
    store.insert(
        "password_file".into(),
        password.display().to_string().into(),
    );
    store.remove("min_replica_acks");
    store.remove("replica_ack_timeout");
    let mut doc = toml::Table::new();
    doc.insert("store".into(), toml::Value::Table(store));
    toml::to_string(&doc).expect("TOML")
}

const ALICE_PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn k8s_redis_start_script_and_acl_user_carry_two_gateways() {
    let objects = k8s_objects();
    let redis = ScriptedRedis::start(&objects).await;
    let secrets = TestDir::new();
    let password = secrets.write("password", &format!("{PASSWORD}\n"));
    let up = Upstream::echo().await;
    let setup = || {
        AuthSetup::new(&up.url())
            .user("alice", ALICE_PW, &["user"])
            .extra(&store_section(&objects, &redis, &password))
    };
    let a = setup().start().await;
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    let users = std::fs::read_to_string(a.dir.join("users.toml")).expect("A's users.toml");
    dir.write("users.toml", &users);
    let b = Gateway::start_in(dir, setup().config()).await;

    // A failed login is counted in Redis (the throttle), a login and a refresh on the
    // other gateway rotate one family, a logout revokes it everywhere.
    assert_eq!(
        a.login("alice", "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let counted = redis
        .cli(&["EXISTS", "portcullis:throttle:user:alice"])
        .await;
    assert_eq!(counted.trim(), "1", "throttle counter in Redis");
    let first = a.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&b.refresh(&first.refresh).await);
    assert_eq!(b.get_api(&next.access).await.status, StatusCode::OK);
    assert_eq!(
        a.logout(&next.access, Some(&next.refresh)).await.status,
        StatusCode::NO_CONTENT
    );
    let refused = eventually(Duration::from_secs(5), || async {
        let status = b.get_api(&next.access).await.status;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(())
            .ok_or(format!("B answered {status}"))
    });
    refused.await.expect("B's mirror took the revocation");
    assert_eq!(
        b.refresh(&next.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Whoever steals the gateway's password gets no more than the gateway needs.
    for attack in [
        vec!["FLUSHALL"],
        vec!["CONFIG", "SET", "dir", "/tmp"],
        vec!["KEYS", "*"],
        vec!["GET", "other-app:secret"],
        vec!["SUBSCRIBE", "__keyspace@0__:*"],
        vec!["REPLICAOF", "127.0.0.1", "1"],
        vec!["ACL", "LIST"],
    ] {
        let out = redis.cli(&attack).await;
        assert!(out.contains("NOPERM"), "{attack:?} answered {out}");
    }
    let anonymous = redis_cli(&["-p", &redis.port.to_string(), "GET", "portcullis:epoch"]).await;
    assert!(
        anonymous.contains("NOAUTH"),
        "the default user is off: {anonymous}"
    );
}
