//! A running gateway: its config knobs, startup on free ports, and the tokens it trusts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{
    addr_in_use, ed25519_pem, free_port, now_secs, plain_get, run_cli, tls_cert, Client, Proc,
    TestDir, DEADLINE,
};

/// The knobs of one gateway under test.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// routes.toml, verbatim.
    pub routes: String,
    /// TOML appended to gateway.toml (whole sections, e.g. `[identity]`).
    pub extra: String,
    /// Lines added to the `[tokens]` section (e.g. `refresh_reuse_grace = "1s"`).
    pub tokens: String,
    /// `[tokens] leeway`.
    pub leeway: String,
    pub header_timeout: String,
    pub idle_timeout: String,
    pub max_header_bytes: usize,
    /// `[listen] max_connections`: connections served at once, the rest wait to be accepted.
    pub max_connections: usize,
    /// Also open the plain-HTTP listener.
    pub plain: bool,
    /// Lines added to the `[listen]` section (e.g. `trusted_proxies = [...]`).
    pub listen: String,
    /// Environment variables of the gateway process.
    pub env: Vec<(String, String)>,
    /// stderr is a pipe nobody reads (`Gateway::log` then has stdout only).
    pub stderr_unread: bool,
    /// A command that execs the gateway (e.g. `prlimit --nofile=...  --`); empty: none.
    pub launcher: Vec<String>,
}

impl GatewayConfig {
    pub fn new(routes: impl Into<String>) -> GatewayConfig {
        GatewayConfig {
            routes: routes.into(),
            extra: String::new(),
            tokens: String::new(),
            leeway: "30s".into(),
            header_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            max_header_bytes: 16384,
            max_connections: 10000,
            plain: false,
            listen: String::new(),
            env: Vec::new(),
            stderr_unread: false,
            launcher: Vec::new(),
        }
    }
    /// `standard_routes(upstream_url)`.
    pub fn standard(upstream_url: &str) -> GatewayConfig {
        GatewayConfig::new(standard_routes(upstream_url))
    }
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
    pub fn tokens(mut self, toml: &str) -> Self {
        self.tokens.push_str(toml);
        self.tokens.push('\n');
        self
    }
    pub fn leeway(mut self, d: &str) -> Self {
        self.leeway = d.into();
        self
    }
    pub fn header_timeout(mut self, d: &str) -> Self {
        self.header_timeout = d.into();
        self
    }
    pub fn idle_timeout(mut self, d: &str) -> Self {
        self.idle_timeout = d.into();
        self
    }
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }
    pub fn launcher(mut self, command: &[&str]) -> Self {
        self.launcher = command.iter().map(|part| part.to_string()).collect();
        self
    }
    pub fn stderr_unread(mut self) -> Self {
        self.stderr_unread = true;
        self
    }
    pub fn listen(mut self, toml: &str) -> Self {
        self.listen.push_str(toml);
        self.listen.push('\n');
        self
    }
}

/// The route table most tests use, all on one upstream named `api`:
/// `/public/**` GET/HEAD without auth, `/open/**` any method without auth,
/// `/admin/**` needs role admin, `/api/**` needs any valid token.
pub fn standard_routes(upstream_url: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{upstream_url}"
connect_timeout = "2s"
timeout = "10s"

[[routes]]
path = "/public/**"
methods = ["GET", "HEAD"]
upstream = "api"
auth = "none"

[[routes]]
path = "/open/**"
upstream = "api"
auth = "none"

[[routes]]
path = "/admin/**"
upstream = "api"
roles_any = ["admin"]

[[routes]]
path = "/api/**"
upstream = "api"
"#
    )
}

/// A running `portcullis run`, killed on drop.
pub struct Gateway {
    proc: Proc,
    pub dir: TestDir,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub plain: Option<SocketAddr>,
    pub config_path: PathBuf,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    pub signing_key_pem: String,
    pub public_key_pem: String,
}

impl Gateway {
    pub async fn start(cfg: GatewayConfig) -> Gateway {
        Gateway::start_in(TestDir::new(), cfg).await
    }

    /// Write every file `cfg` needs into `dir` (on free ports, rewritten at start), so a CLI
    /// command such as `user add --config` can run before the gateway does.
    pub fn prepare(dir: &TestDir, cfg: &GatewayConfig) -> PathBuf {
        let (signing, _) = ed25519_pem();
        dir.write("main.pem", &signing);
        dir.write("routes.toml", &cfg.routes);
        let addr = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().expect("addr") };
        let plain = cfg.plain.then(|| addr(free_port()));
        let toml = gateway_toml(cfg, addr(free_port()), addr(free_port()), plain);
        dir.write("gateway.toml", &toml)
    }

    /// Stop the gateway and hand back its directory (users.toml included) for a restart.
    pub fn stop(self) -> TestDir {
        drop(self.proc);
        self.dir
    }

    /// Start in `dir`, keeping what it holds: users.toml, and the signing key of a gateway
    /// that ran there before (so its tokens still verify). Cert and ports are new.
    pub async fn start_in(dir: TestDir, cfg: GatewayConfig) -> Gateway {
        let (cert_pem, key_pem, cert_der) = tls_cert();
        dir.write("cert.pem", &cert_pem);
        dir.write("key.pem", &key_pem);
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let (signing, public) = match (read("main.pem"), read("main.pub.pem")) {
            (Ok(signing), Ok(public)) => (signing, public),
            _ => {
                let (signing, public) = ed25519_pem();
                dir.write("main.pem", &signing);
                dir.write("main.pub.pem", &public);
                (signing, public)
            }
        };
        dir.write("routes.toml", &cfg.routes);

        let mut attempt = 0;
        loop {
            attempt += 1;
            let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let plain: Option<SocketAddr> = cfg
                .plain
                .then(|| format!("127.0.0.1:{}", free_port()).parse().expect("addr"));
            let config_path = dir.write("gateway.toml", &gateway_toml(&cfg, https, admin, plain));
            let log = fresh_log_path(&dir);
            let cfg_arg = config_path.to_str().expect("utf-8 temp path").to_string();
            let args = ["run", "--config", &cfg_arg];
            let mut proc = Proc::spawn_via(
                &cfg.launcher,
                "gateway",
                &args,
                &cfg.env,
                log,
                cfg.stderr_unread,
            );

            let ready = wait_ready(&mut proc, admin, !cfg.stderr_unread).await;
            match ready {
                Ok(()) => {
                    return Gateway {
                        proc,
                        dir,
                        https,
                        admin,
                        plain,
                        config_path,
                        cert_der,
                        signing_key_pem: signing,
                        public_key_pem: public,
                    }
                }
                Err(e) if attempt < 4 && addr_in_use(&proc.log()) => {
                    drop(e);
                    continue;
                }
                Err(e) => {
                    let log = proc.log();
                    let toml = std::fs::read_to_string(&config_path).unwrap_or_default();
                    // Keep the temp dir for inspection; the log is the diagnosis.
                    let kept = dir.dir.keep();
                    panic!("gateway did not become ready: {e} (files kept in {})\n--- gateway.toml ---\n{toml}\n--- routes.toml ---\n{}\n--- gateway output ---\n{log}", kept.display(), cfg.routes);
                }
            }
        }
    }

    /// Sends a signal ("HUP", "TERM", ...) to the gateway process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.proc.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Writes `text` to the file `name` of the gateway's directory, sends SIGHUP and waits
    /// until the log says the configuration was reloaded.
    pub async fn reload_with(&self, name: &str, text: &str) {
        let count = self.log().matches("configuration reloaded").count();
        self.dir.write(name, text);
        self.signal("HUP");
        let done = super::eventually(Duration::from_secs(10), || async {
            (self.log().matches("configuration reloaded").count() > count)
                .then_some(())
                .ok_or("not reloaded yet".to_string())
        })
        .await;
        assert!(done.is_ok(), "{name}: no reload:\n{}", self.log());
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The exit status once the process has ended, None while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.exited()
    }

    pub fn client(&self) -> Client {
        Client::new(self.https, self.cert_der.clone())
    }

    /// `localhost:PORT`, what a browser would send as Host.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.https.port())
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn config_arg(&self) -> String {
        self.config_path
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    /// Claims of a valid access token for `sub` with `roles`.
    pub fn claims(&self, sub: &str, roles: &[&str]) -> Value {
        let now = now_secs();
        json!({
            "iss": "portcullis",
            "aud": "portcullis",
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "jti": format!("test-{}-{}", sub, now_nanos()),
            "roles": roles,
            "typ": "access",
        })
    }

    /// A header for EdDSA with kid "main".
    pub fn header(&self) -> jsonwebtoken::Header {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some("main".into());
        h.typ = Some("JWT".into());
        h
    }

    /// Sign `claims` with the gateway's own key under `header`.
    pub fn sign(&self, header: &jsonwebtoken::Header, claims: &Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_ed_pem(self.signing_key_pem.as_bytes())
            .expect("ed25519 PEM");
        jsonwebtoken::encode(header, claims, &key).expect("sign token")
    }

    /// A valid access token, minted in the test with the key the gateway trusts (kid "main").
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.sign(&self.header(), &self.claims(sub, roles))
    }

    /// A token minted by `portcullis token --config ... --sub S --role R...`.
    pub fn cli_token(&self, sub: &str, roles: &[&str]) -> String {
        let cfg = self.config_arg();
        let mut args = vec!["token", "--config", cfg.as_str(), "--sub", sub];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        let out = run_cli(&args);
        assert_eq!(out.code, Some(0), "portcullis token failed: {out:?}");
        out.stdout.trim().to_string()
    }
}

/// `gateway-N.log` with the first N not taken, so a restart keeps the earlier logs.
fn fresh_log_path(dir: &TestDir) -> PathBuf {
    (1..)
        .map(|n| dir.join(&format!("gateway-{n}.log")))
        .find(|p| !p.exists())
        .expect("some log name is free")
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn gateway_toml(
    cfg: &GatewayConfig,
    https: SocketAddr,
    admin: SocketAddr,
    plain: Option<SocketAddr>,
) -> String {
    let plain_line = plain
        .map(|p| format!("plain_addr = \"{p}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[listen]
addr = "{https}"
tls_cert = "cert.pem"
tls_key = "key.pem"
{plain_line}header_timeout = "{ht}"
idle_timeout = "{it}"
max_header_bytes = {mhb}
max_connections = {mc}
{listen}
[admin]
addr = "{admin}"

[tokens]
issuer = "portcullis"
audience = "portcullis"
access_ttl = "15m"
leeway = "{leeway}"
signing_kid = "main"
{tokens}
[[keys]]
kid = "main"
alg = "EdDSA"
private_key = "main.pem"

[routes]
file = "routes.toml"

{extra}"#,
        listen = cfg.listen,
        ht = cfg.header_timeout,
        it = cfg.idle_timeout,
        mhb = cfg.max_header_bytes,
        mc = cfg.max_connections,
        tokens = cfg.tokens,
        leeway = cfg.leeway,
        extra = cfg.extra,
    )
}

/// Waits for the gateway's /readyz. Under parallel tests another gateway may have taken
/// this one's admin port (free_port hands out a port that is free *now*) and answer its
/// /readyz while this one fails to bind and exits: with its log read, ready also needs
/// this process's own "portcullis listening" line, which follows every bind.
async fn wait_ready(proc: &mut Proc, admin: SocketAddr, log_read: bool) -> Result<(), String> {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!("gateway exited early with {status}"));
        }
        let bound = !log_read || proc.log().contains("portcullis listening");
        match plain_get(admin, "/readyz").await {
            Ok((200, _)) if bound => return Ok(()),
            Ok((s, _)) if tokio::time::Instant::now() >= until => {
                return Err(format!("/readyz answered {s}"))
            }
            Err(e) if tokio::time::Instant::now() >= until => return Err(format!("/readyz: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}
