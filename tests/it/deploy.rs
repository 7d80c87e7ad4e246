//! The deployment files under deploy/ agree with each other and with the gateway.
//!
//! Nothing here builds an image, boots systemd or talks to a cluster. What is checked:
//! every YAML file parses; the ports compose and Kubernetes publish or probe are the ones
//! their gateway.toml listens on; the compose gateway.toml and the ConfigMap's
//! gateway.toml pass the real `portcullis check` once their referenced files exist (dev
//! material generated with `portcullis dev-certs` / `portcullis keygen`, placed exactly
//! where the mounts put the real files); the Deployment mounts every file the ConfigMap's
//! gateway.toml names; the systemd unit and the Dockerfile keep their hardening; and no
//! file under deploy/ carries a PEM private key.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde::Deserialize;
use serde_norway::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---- YAML --------------------------------------------------------------------------------

/// Every document of a YAML file (empty documents skipped).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        if !value.is_null() {
            docs.push(value);
        }
    }
    docs
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in walk(dir) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `value[a][b]...` or a panic naming the missing key.
pub(crate) fn at<'a>(value: &'a Value, keys: &[&str]) -> &'a Value {
    let mut current = value;
    for (i, key) in keys.iter().enumerate() {
        current = current
            .get(*key)
            .unwrap_or_else(|| panic!("missing key {}", keys[..=i].join(".")));
    }
    current
}

pub(crate) fn str_at<'a>(value: &'a Value, keys: &[&str]) -> &'a str {
    at(value, keys)
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a string", keys.join(".")))
}

pub(crate) fn seq_at<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    at(value, keys)
        .as_sequence()
        .unwrap_or_else(|| panic!("{} is not a list", keys.join(".")))
}

/// The Kubernetes manifests, keyed by (kind, name).
pub(crate) fn k8s_objects() -> BTreeMap<(String, String), Value> {
    let mut objects = BTreeMap::new();
    for path in yaml_files(&deploy_dir().join("k8s")) {
        for doc in yaml_docs(&path) {
            let kind = str_at(&doc, &["kind"]).to_string();
            let name = str_at(&doc, &["metadata", "name"]).to_string();
            let previous = objects.insert((kind.clone(), name.clone()), doc);
            assert!(previous.is_none(), "{kind}/{name} is defined twice");
        }
    }
    objects
}

pub(crate) fn k8s<'a>(
    objects: &'a BTreeMap<(String, String), Value>,
    kind: &str,
    name: &str,
) -> &'a Value {
    objects
        .get(&(kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind}/{name} in deploy/k8s"))
}

pub(crate) fn only<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str) -> &'a Value {
    let mut found = objects.iter().filter(|((k, _), _)| k == kind);
    let (_, value) = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in deploy/k8s"));
    assert!(found.next().is_none(), "more than one {kind} in deploy/k8s");
    value
}

/// The single container of the Deployment's pod template.
pub(crate) fn container(deployment: &Value) -> &Value {
    let containers = seq_at(deployment, &["spec", "template", "spec", "containers"]);
    assert_eq!(containers.len(), 1, "one container expected");
    &containers[0]
}

/// A port given by number or by the container's port name.
fn resolve_port(container: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).unwrap();
    }
    let name = port.as_str().expect("port is a number or a name");
    for p in seq_at(container, &["ports"]) {
        if p.get("name").and_then(Value::as_str) == Some(name) {
            return u16::try_from(at(p, &["containerPort"]).as_u64().unwrap()).unwrap();
        }
    }
    panic!("the container has no port named {name:?}")
}

/// The files of a ConfigMap or Secret: file name -> contents (Secret `data` is base64).
pub(crate) fn volume_files(object: &Value) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for section in ["data", "stringData"] {
        let Some(map) = object.get(section).and_then(Value::as_mapping) else {
            continue;
        };
        for (key, value) in map {
            let key = key.as_str().unwrap().to_string();
            let text = value.as_str().unwrap();
            let text = if section == "data" && str_at(object, &["kind"]) == "Secret" {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .unwrap_or_else(|e| panic!("Secret data {key} is not base64: {e}"));
                String::from_utf8(bytes).unwrap()
            } else {
                text.to_string()
            };
            files.insert(key, text);
        }
    }
    files
}

// ---- gateway.toml ------------------------------------------------------------------------

pub(crate) struct GatewayToml {
    listen_port: u16,
    admin_port: u16,
    /// Every file the configuration names, as written (relative to gateway.toml or absolute).
    tls_cert: String,
    tls_key: String,
    /// (alg, kid, private_key) of each [[keys]] entry with a private key.
    private_keys: Vec<(String, String, String)>,
    other_files: Vec<String>,
    store_backend: String,
    /// `[store]` as written, when there is one.
    pub(crate) store: Option<toml::Table>,
}

impl GatewayToml {
    fn parse(text: &str) -> GatewayToml {
        let doc: toml::Table = toml::from_str(text).expect("gateway.toml is valid TOML");
        let port = |section: &str| -> u16 {
            let addr = doc[section]["addr"].as_str().unwrap();
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            addr.port()
        };
        let s = |v: &toml::Value| v.as_str().unwrap().to_string();
        let mut private_keys = Vec::new();
        let mut other_files = vec![s(&doc["routes"]["file"])];
        if let Some(keys) = doc.get("keys").and_then(toml::Value::as_array) {
            for key in keys {
                if let Some(path) = key.get("private_key") {
                    private_keys.push((s(&key["alg"]), s(&key["kid"]), s(path)));
                }
                for field in ["public_key", "secret_file"] {
                    if let Some(path) = key.get(field) {
                        other_files.push(s(path));
                    }
                }
            }
        }
        if let Some(users) = doc.get("users") {
            let backend = users.get("backend").and_then(toml::Value::as_str);
            if backend.unwrap_or("file") == "file" {
                let file = users.get("file").and_then(toml::Value::as_str);
                other_files.push(file.unwrap_or("users.toml").to_string());
            }
        }
        if let Some(file) = doc
            .get("store")
            .and_then(|s| s.get("password_file"))
            .and_then(toml::Value::as_str)
        {
            other_files.push(file.to_string());
        }
        let store_backend = doc
            .get("store")
            .and_then(|s| s.get("backend"))
            .and_then(toml::Value::as_str)
            .unwrap_or("memory")
            .to_string();
        GatewayToml {
            listen_port: port("listen"),
            admin_port: port("admin"),
            tls_cert: s(&doc["listen"]["tls_cert"]),
            tls_key: s(&doc["listen"]["tls_key"]),
            private_keys,
            other_files,
            store_backend,
            store: doc.get("store").and_then(toml::Value::as_table).cloned(),
        }
    }

    fn all_files(&self) -> Vec<&str> {
        let mut files = vec![self.tls_cert.as_str(), self.tls_key.as_str()];
        files.extend(self.private_keys.iter().map(|(_, _, p)| p.as_str()));
        files.extend(self.other_files.iter().map(String::as_str));
        files
    }
}

/// `base.join(rel)` with `.` and `..` resolved lexically, as the gateway resolves paths.
pub(crate) fn resolve(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(rel).components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Creates the TLS certificate/key and the signing keys gateway.toml names, with the
/// real binary, at the paths it names (relative to `config_dir`).
fn generate_material(gateway: &GatewayToml, config_dir: &Path, scratch: &Path) {
    let gen = scratch.join("generated");
    run_ok(Command::new(BIN).arg("dev-certs").arg("--out").arg(&gen));
    place(
        &gen.join("dev-cert.pem"),
        &resolve(config_dir, &gateway.tls_cert),
    );
    place(
        &gen.join("dev-key.pem"),
        &resolve(config_dir, &gateway.tls_key),
    );
    for (alg, kid, path) in &gateway.private_keys {
        let out = scratch.join(format!("keygen-{kid}"));
        run_ok(
            Command::new(BIN)
                .args(["keygen", "--alg", alg, "--kid", kid, "--out"])
                .arg(&out),
        );
        place(&out.join(format!("{kid}.pem")), &resolve(config_dir, path));
    }
}

fn place(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if !to.exists() {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("cannot copy to {}: {e}", to.display()));
    }
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the portcullis binary runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `portcullis check --config <gateway>`: must succeed with no warning but unreachable upstreams.
fn check(gateway: &Path) {
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(gateway)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "portcullis check rejected {}:\n{stderr}",
        gateway.display()
    );
    // The upstreams named there (compose service names, cluster DNS) do not exist on the
    // test machine, so only that one warning is expected.
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("warning") && !l.contains("cannot be contacted now"))
        .collect();
    assert!(unexpected.is_empty(), "portcullis check warned:\n{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

// ---- all YAML ----------------------------------------------------------------------------

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files(&deploy_dir());
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(deploy_dir()).unwrap().display().to_string())
        .collect();
    for expected in [
        "docker-compose.yml",
        "k8s/configmap.yaml",
        "k8s/deployment.yaml",
        "k8s/hpa.yaml",
        "k8s/networkpolicy.yaml",
        "k8s/pdb.yaml",
        "k8s/redis-secret.yaml",
        "k8s/redis.yaml",
        "k8s/secret.yaml",
        "k8s/sentinel.yaml",
        "k8s/service.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing deploy/{expected}"
        );
    }
    for path in &files {
        let docs = yaml_docs(path);
        assert!(!docs.is_empty(), "{} is empty", path.display());
        if path.starts_with(deploy_dir().join("k8s")) {
            for doc in &docs {
                str_at(doc, &["apiVersion"]);
                str_at(doc, &["kind"]);
                str_at(doc, &["metadata", "name"]);
            }
        }
    }
}

// ---- docker compose ----------------------------------------------------------------------

fn compose() -> Value {
    let mut docs = yaml_docs(&deploy_dir().join("docker-compose.yml"));
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn compose_gateway() -> GatewayToml {
    GatewayToml::parse(&read(&deploy_dir().join("compose/gateway.toml")))
}

/// "127.0.0.1:8443:8443" / "8443:8443" / "8443" -> (host port, container port).
fn compose_port(spec: &str) -> (Option<u16>, u16) {
    let spec = spec.split('/').next().unwrap();
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let container = parts[0].parse().unwrap();
    let host = parts.get(1).map(|p| p.parse().unwrap());
    (host, container)
}

#[test]
fn compose_ports_match_the_compose_gateway_toml() {
    let compose = compose();
    let gateway = compose_gateway();
    let services = at(&compose, &["services"]);
    let mut host_ports = Vec::new();
    for name in ["gateway-a", "gateway-b"] {
        let service = at(services, &[name]);
        let ports = seq_at(service, &["ports"]);
        assert_eq!(ports.len(), 1, "{name} publishes exactly the HTTPS port");
        let (host, container) = compose_port(ports[0].as_str().unwrap());
        assert_eq!(
            container, gateway.listen_port,
            "{name} publishes [listen] addr"
        );
        assert_ne!(
            container, gateway.admin_port,
            "{name} must not publish admin"
        );
        host_ports.push(host.expect("a host port"));
        // The config the service runs is the mounted deploy/compose/gateway.toml.
        let command: Vec<&str> = seq_at(service, &["command"])
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(command, ["run", "--config", "/etc/portcullis/gateway.toml"]);
        let volumes: Vec<&str> = seq_at(service, &["volumes"])
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            volumes.contains(&"./compose:/etc/portcullis:ro"),
            "{name} mounts deploy/compose at /etc/portcullis: {volumes:?}"
        );
        assert!(
            service.get("healthcheck").is_none(),
            "distroless has no curl"
        );
    }
    assert_eq!(host_ports, [8443, 8444]);

    // The echo service listens where routes.toml sends the traffic.
    let routes: toml::Table = toml::from_str(&read(&deploy_dir().join("compose/routes.toml")))
        .expect("routes.toml is valid TOML");
    let url = routes["upstreams"]["echo"]["url"].as_str().unwrap();
    assert_eq!(url, "http://echo:8080");
    let echo: Vec<&str> = seq_at(services, &["echo", "command"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(echo, ["echo", "--listen", "0.0.0.0:8080"]);
    assert!(services.get("echo").unwrap().get("ports").is_none());

    // Redis is provisioned for the shared store, which is not implemented yet.
    let redis = at(services, &["redis"]);
    assert!(str_at(redis, &["image"]).starts_with("redis:7"));
    let command: Vec<&str> = seq_at(redis, &["command"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(command.windows(2).any(|w| w == ["--appendonly", "yes"]));
    assert!(command
        .windows(2)
        .any(|w| w == ["--appendfsync", "everysec"]));
    assert!(!seq_at(redis, &["volumes"]).is_empty());
    // Both gateways share revocations through the compose service named "redis".
    assert_eq!(gateway.store_backend, "redis");
    let compose_gateway =
        std::fs::read_to_string(deploy_dir().join("compose/gateway.toml")).unwrap();
    assert!(compose_gateway.contains("redis_url = \"redis://redis:6379/0\""));

    // Same image for every portcullis service.
    for name in ["gateway-a", "gateway-b", "echo"] {
        assert_eq!(str_at(services, &[name, "image"]), "portcullis:local");
        assert_eq!(
            str_at(services, &[name, "build", "dockerfile"]),
            "deploy/Dockerfile"
        );
        assert_eq!(str_at(services, &[name, "build", "context"]), "..");
    }
}

#[test]
fn compose_gateway_toml_passes_check() {
    let gateway = compose_gateway();
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("etc/portcullis");
    // Everything docker-compose.yml mounts at /etc/portcullis, except generated certs.
    for path in walk(&deploy_dir().join("compose")) {
        let rel = path.strip_prefix(deploy_dir().join("compose")).unwrap();
        if rel.starts_with("certs") {
            continue;
        }
        write(&config_dir.join(rel), &read(&path));
    }
    generate_material(&gateway, &config_dir, tmp.path());
    check(&config_dir.join("gateway.toml"));
}

// ---- Kubernetes --------------------------------------------------------------------------

/// The ConfigMap's gateway.toml, and the directory it is mounted in inside the pod.
pub(crate) fn k8s_gateway(objects: &BTreeMap<(String, String), Value>) -> (GatewayToml, PathBuf) {
    let deployment = only(objects, "Deployment");
    let args: Vec<&str> = seq_at(container(deployment), &["args"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let config = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| PathBuf::from(w[1]))
        .expect("the container passes --config");
    assert_eq!(args[0], "run");
    let (volume, rel) = mounted_file(objects, deployment, &config);
    let files = volume_files(volume);
    let text = files
        .get(&rel)
        .unwrap_or_else(|| panic!("{} is not in the mounted volume", config.display()));
    (
        GatewayToml::parse(text),
        config.parent().unwrap().to_path_buf(),
    )
}

/// The ConfigMap or Secret mounted over `path`, and the key that file is, or a panic.
pub(crate) fn mounted_file<'a>(
    objects: &'a BTreeMap<(String, String), Value>,
    deployment: &Value,
    path: &Path,
) -> (&'a Value, String) {
    let mounts = seq_at(container(deployment), &["volumeMounts"]);
    let mount = mounts
        .iter()
        .filter(|m| path.starts_with(str_at(m, &["mountPath"])))
        .max_by_key(|m| str_at(m, &["mountPath"]).len())
        .unwrap_or_else(|| panic!("no volumeMount covers {}", path.display()));
    assert!(
        mount.get("subPath").is_none(),
        "whole-volume mounts only, so updates reach the pod"
    );
    let rel = path
        .strip_prefix(str_at(mount, &["mountPath"]))
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let volume_name = str_at(mount, &["name"]);
    let volume = seq_at(deployment, &["spec", "template", "spec", "volumes"])
        .iter()
        .find(|v| str_at(v, &["name"]) == volume_name)
        .unwrap_or_else(|| panic!("no volume named {volume_name}"));
    let object = if let Some(cm) = volume.get("configMap") {
        k8s(objects, "ConfigMap", str_at(cm, &["name"]))
    } else if let Some(secret) = volume.get("secret") {
        k8s(objects, "Secret", str_at(secret, &["secretName"]))
    } else {
        panic!("volume {volume_name} is neither a ConfigMap nor a Secret")
    };
    let source = volume
        .get("configMap")
        .or_else(|| volume.get("secret"))
        .unwrap();
    // With `items`, only the listed keys appear, under their `path`.
    let key = match source.get("items").and_then(Value::as_sequence) {
        Some(items) => items
            .iter()
            .find(|i| str_at(i, &["path"]) == rel)
            .map(|i| str_at(i, &["key"]).to_string())
            .unwrap_or_else(|| panic!("{} is not among the items", path.display())),
        None => rel,
    };
    (object, key)
}

#[test]
fn deployment_mounts_every_file_the_configmap_gateway_toml_names() {
    let objects = k8s_objects();
    let deployment = only(&objects, "Deployment");
    let (gateway, config_dir) = k8s_gateway(&objects);
    for file in gateway.all_files() {
        let path = resolve(&config_dir, file);
        let (object, key) = mounted_file(&objects, deployment, &path);
        assert!(
            volume_files(object).contains_key(&key),
            "{} ({file} in gateway.toml) is mounted from {}/{} which has no key {key:?}",
            path.display(),
            str_at(object, &["kind"]),
            str_at(object, &["metadata", "name"]),
        );
    }
}

#[test]
fn configmap_gateway_toml_passes_check() {
    let objects = k8s_objects();
    let deployment = only(&objects, "Deployment");
    let (gateway, config_dir) = k8s_gateway(&objects);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pod");
    // Lay out every mounted volume as the pod sees it, under `root`.
    let generated: Vec<PathBuf> = [gateway.tls_cert.as_str(), gateway.tls_key.as_str()]
        .into_iter()
        .chain(gateway.private_keys.iter().map(|(_, _, p)| p.as_str()))
        .map(|f| resolve(&config_dir, f))
        .collect();
    for mount in seq_at(container(deployment), &["volumeMounts"]) {
        let mount_path = str_at(mount, &["mountPath"]);
        for file in volume_files_of_mount(&objects, deployment, mount) {
            let pod_path = Path::new(mount_path).join(&file.0);
            // Placeholders in the Secret template are replaced by generated material.
            if generated.contains(&pod_path) {
                continue;
            }
            write(&root.join(pod_path.strip_prefix("/").unwrap()), &file.1);
        }
    }
    let local_config_dir = root.join(config_dir.strip_prefix("/").unwrap());
    generate_material(&gateway, &local_config_dir, tmp.path());
    check(&local_config_dir.join("gateway.toml"));
}

fn volume_files_of_mount(
    objects: &BTreeMap<(String, String), Value>,
    deployment: &Value,
    mount: &Value,
) -> Vec<(String, String)> {
    let name = str_at(mount, &["name"]);
    let volume = seq_at(deployment, &["spec", "template", "spec", "volumes"])
        .iter()
        .find(|v| str_at(v, &["name"]) == name)
        .unwrap();
    let (object, source) = if let Some(cm) = volume.get("configMap") {
        (k8s(objects, "ConfigMap", str_at(cm, &["name"])), cm)
    } else {
        let secret = at(volume, &["secret"]);
        (
            k8s(objects, "Secret", str_at(secret, &["secretName"])),
            secret,
        )
    };
    let files = volume_files(object);
    // With `items`, only the listed keys appear, under their `path`.
    match source.get("items").and_then(Value::as_sequence) {
        Some(items) => items
            .iter()
            .map(|i| {
                let key = str_at(i, &["key"]);
                let text = files.get(key).unwrap_or_else(|| panic!("no key {key}"));
                (str_at(i, &["path"]).to_string(), text.clone())
            })
            .collect(),
        None => files.into_iter().collect(),
    }
}

#[test]
fn k8s_ports_and_probes_match_the_configmap_gateway_toml() {
    let objects = k8s_objects();
    let (gateway, _) = k8s_gateway(&objects);
    let deployment = only(&objects, "Deployment");
    let c = container(deployment);
    let container_ports: Vec<u16> = seq_at(c, &["ports"])
        .iter()
        .map(|p| u16::try_from(at(p, &["containerPort"]).as_u64().unwrap()).unwrap())
        .collect();
    assert!(container_ports.contains(&gateway.listen_port));
    assert!(container_ports.contains(&gateway.admin_port));

    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(str_at(c, &[probe, "httpGet", "path"]), path);
        let port = resolve_port(c, at(c, &[probe, "httpGet", "port"]));
        assert_eq!(port, gateway.admin_port, "{probe} targets the admin port");
        assert!(c[probe]["httpGet"]
            .get("scheme")
            .is_none_or(|s| s == "HTTP"));
    }

    let service = k8s(&objects, "Service", "portcullis");
    let ports = seq_at(service, &["spec", "ports"]);
    assert!(!ports.is_empty());
    for port in ports {
        let target = resolve_port(c, at(port, &["targetPort"]));
        assert_eq!(target, gateway.listen_port, "the Service sends HTTPS only");
    }
    let pod_labels = at(deployment, &["spec", "template", "metadata", "labels"]);
    assert_eq!(at(service, &["spec", "selector"]), pod_labels);
    assert_eq!(
        at(deployment, &["spec", "selector", "matchLabels"]),
        pod_labels
    );
}

#[test]
fn k8s_deployment_is_locked_down() {
    let objects = k8s_objects();
    let deployment = only(&objects, "Deployment");
    assert_eq!(str_at(deployment, &["apiVersion"]), "apps/v1");
    assert_eq!(at(deployment, &["spec", "replicas"]).as_u64(), Some(2));
    let pod = at(deployment, &["spec", "template", "spec"]);
    assert_eq!(
        at(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true)
    );
    let c = container(deployment);
    let sc = at(c, &["securityContext"]);
    assert_eq!(at(sc, &["readOnlyRootFilesystem"]).as_bool(), Some(true));
    assert_eq!(at(sc, &["allowPrivilegeEscalation"]).as_bool(), Some(false));
    let drop: Vec<&str> = seq_at(sc, &["capabilities", "drop"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(drop, ["ALL"]);
    assert!(sc["capabilities"].get("add").is_none());
    // The HPA's CPU utilisation is relative to the request.
    str_at(c, &["resources", "requests", "cpu"]);
    str_at(c, &["resources", "requests", "memory"]);
    str_at(c, &["resources", "limits", "memory"]);
    for mount in seq_at(c, &["volumeMounts"]) {
        assert_eq!(at(mount, &["readOnly"]).as_bool(), Some(true));
    }

    let hpa = only(&objects, "HorizontalPodAutoscaler");
    assert_eq!(str_at(hpa, &["apiVersion"]), "autoscaling/v2");
    assert_eq!(
        str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
        "Deployment"
    );
    assert_eq!(
        str_at(hpa, &["spec", "scaleTargetRef", "name"]),
        str_at(deployment, &["metadata", "name"])
    );
    let metric = &seq_at(hpa, &["spec", "metrics"])[0];
    assert_eq!(str_at(metric, &["resource", "name"]), "cpu");
    assert_eq!(
        at(metric, &["resource", "target", "averageUtilization"]).as_u64(),
        Some(70)
    );

    let pdb = k8s(&objects, "PodDisruptionBudget", "portcullis");
    assert_eq!(at(pdb, &["spec", "minAvailable"]).as_u64(), Some(1));
    assert_eq!(
        at(pdb, &["spec", "selector", "matchLabels"]),
        at(deployment, &["spec", "template", "metadata", "labels"])
    );
}

#[test]
fn k8s_secret_is_a_template() {
    let objects = k8s_objects();
    let secret = k8s(&objects, "Secret", "portcullis-secrets");
    let files = volume_files(secret);
    for key in ["tls.crt", "tls.key", "signing.pem"] {
        let value = files
            .get(key)
            .unwrap_or_else(|| panic!("secret has no {key}"));
        assert!(
            value.contains("REPLACE-ME"),
            "{key} must be a placeholder, not material: {value:?}"
        );
    }
}

// ---- systemd -----------------------------------------------------------------------------

#[test]
fn systemd_unit_is_hardened() {
    let text = read(&deploy_dir().join("portcullis.service"));
    let mut section = String::new();
    let mut service: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key=value");
        if section == "[Service]" {
            service
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    let one = |key: &str| -> &str {
        let values = service
            .get(key)
            .unwrap_or_else(|| panic!("[Service] has no {key}="));
        assert_eq!(values.len(), 1, "{key}= is set more than once");
        &values[0]
    };
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("DynamicUser", "no"),
        ("User", "portcullis"),
        ("Group", "portcullis"),
        ("Restart", "on-failure"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("ReadWritePaths", "/var/lib/portcullis"),
        ("KillSignal", "SIGTERM"),
        ("LimitNOFILE", "65536"),
        ("CapabilityBoundingSet", ""),
        (
            "ExecStart",
            "/usr/local/bin/portcullis run --config /etc/portcullis/gateway.toml",
        ),
    ] {
        assert_eq!(one(key), value, "{key}=");
    }
    assert!(one("ExecReload").contains("-HUP $MAINPID"));
    assert!(
        !service.contains_key("AmbientCapabilities"),
        "no capability unless binding :443"
    );
    assert_eq!(service["SystemCallFilter"][0], "@system-service");
}

// ---- Dockerfile --------------------------------------------------------------------------

#[test]
fn dockerfile_final_stage_runs_as_non_root() {
    let text = read(&deploy_dir().join("Dockerfile"));
    // Join `\`-continued lines into one instruction; comments and blank lines are skipped.
    let mut logical = Vec::new();
    let mut pending = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                logical.push(std::mem::take(&mut pending));
            }
        }
    }
    let instructions: Vec<(String, String)> = logical
        .iter()
        .filter_map(|l| {
            let (word, rest) = l.split_once(char::is_whitespace)?;
            Some((word.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .expect("a FROM");
    let final_stage = &instructions[last_from..];
    let user = final_stage
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, v)| v.as_str())
        .expect("the final stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(
        !matches!(name, "root" | "0" | ""),
        "the final stage runs as {user}"
    );
    let get = |word: &str| -> Vec<&str> {
        final_stage
            .iter()
            .filter(|(i, _)| i == word)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("ENTRYPOINT"), [r#"["/usr/local/bin/portcullis"]"#]);
    assert_eq!(
        get("CMD"),
        [r#"["run", "--config", "/etc/portcullis/gateway.toml"]"#]
    );
    let gateway = compose_gateway();
    let exposed: Vec<u16> = get("EXPOSE")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|p| p.split('/').next().unwrap().parse().unwrap())
        .collect();
    assert!(exposed.contains(&gateway.listen_port));
    assert!(exposed.contains(&gateway.admin_port));
    assert!(
        instructions
            .iter()
            .any(|(i, v)| i == "RUN" && v.contains("cargo build --release --locked")),
        "the builder builds with --locked"
    );
}

// ---- secrets -----------------------------------------------------------------------------

/// Whether `text` has a PEM private key block ("-----BEGIN ... PRIVATE KEY-----").
fn has_private_key_block(text: &str) -> bool {
    let begin = "-----BEGIN";
    text.match_indices(begin).any(|(at, _)| {
        let rest = &text[at + begin.len()..];
        let label = rest.split("-----").next().unwrap_or("");
        label.contains(concat!("PRIVATE", " KEY"))
    })
}

#[test]
fn the_private_key_detector_works() {
    let pem = format!("x\n-----BEGIN EC {} KEY-----\nabc\n", "PRIVATE");
    assert!(has_private_key_block(&pem));
    let pkcs8 = format!("-----BEGIN {} KEY-----", "PRIVATE");
    assert!(has_private_key_block(&pkcs8));
    assert!(!has_private_key_block(
        "-----BEGIN CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----"
    ));
}

#[test]
fn no_private_key_under_deploy() {
    // deploy/compose/certs/*.pem is where the compose README has you generate dev
    // material; the root .gitignore keeps every *.pem out of git.
    let gitignore = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore"));
    assert!(gitignore.lines().any(|l| l.trim() == "*.pem"));
    let generated = deploy_dir().join("compose").join("certs");
    for path in walk(&deploy_dir()) {
        let is_pem = path.extension().is_some_and(|e| e == "pem");
        if path.starts_with(&generated) && is_pem {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !has_private_key_block(&text),
            "{} contains a PEM private key",
            path.display()
        );
    }
}
