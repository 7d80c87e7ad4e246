//! The test harness: the only code that knows how to start things.
//!
//! `Gateway::start(cfg)` runs the real `portcullis` binary on loopback ports with a TLS
//! cert and an Ed25519 signing key generated at test time; `Upstream::echo()` runs
//! `portcullis echo`; `MockUpstream` is an in-process hyper server for behaviour the echo
//! cannot show (slow answers, big bodies, upgrades, proof that a request never arrived).
//! `Client` speaks HTTP/1.1 or HTTP/2 over rustls and sends paths byte for byte.
//! Every handle kills or stops what it started on `Drop`.
//!
//! - `gateway`: `GatewayConfig`, `Gateway`, token minting and token assertions.
//! - `upstream`: `Upstream` (echo), `MockUpstream`, `PatternBody`, `Digest`.
//! - `client`: `Client`, `RequestBuilder`, `Response` over hyper.
//! - `raw`: bytes hyper would not send, `RawResponse`, reading responses by hand.
//! - `tokens`: token assertions (`assert_invalid_token`) and unverified claim reading.
//! - `auth`: users via the CLI, the `/auth/*` endpoints, `Pair`, the audit log.
//! - `nginx`: `Nginx`, a real nginx with `auth_request` in front of the gateway.
//! - `redis`: `Redis`, a real redis-server per test.
//! - `sentinel`: `SentinelSet`, a real master, replica and three sentinels.
//! - `sessions`: `session_cycles`, login -> refresh -> logout on two gateways through a
//!   failover, and `SessionTally`, what each step answered.
//! - `backend`: `CredentialBackend`, an existing password checker for the http user store.
//! - `idp`: `Idp`, an external identity provider (discovery + JWK Set) for `[[issuers]]`.
//! - `oidc`: `OidcProvider`, a real OpenID provider (node + `oidc-provider`), and
//!   `CurlBrowser`, curl with a cookie jar walking through it.
//! - `oidc_setup`: `OidcSetup`, a gateway with one or more such providers to sign in with.
//! - `scripted`: `ScriptedUpstream`, a raw TCP upstream for framing faults, stalls, hang-ups.
#![allow(dead_code)]

mod auth;
mod backend;
mod client;
mod cluster;
mod gateway;
mod idp;
mod nginx;
mod oidc;
mod oidc_setup;
mod raw;
mod redis;
mod scripted;
mod sentinel;
mod sessions;
mod tokens;
mod upstream;

pub use auth::*;
pub use backend::*;
pub use client::*;
pub use cluster::*;
pub use gateway::*;
pub use idp::*;
pub use nginx::*;
pub use oidc::*;
pub use oidc_setup::*;
pub use raw::*;
pub use redis::*;
pub use scripted::*;
pub use sentinel::*;
pub use sessions::*;
pub use tokens::*;
pub use upstream::*;

use std::fs::File;
use std::future::Future;
use std::io::Read as _;
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The request and response body type of the in-process servers and the client.
type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

/// How long anything in the harness may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A loopback port the OS considers free right now (bind :0, read, drop).
pub fn free_port() -> u16 {
    let l = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr()
        .expect("local addr of a bound listener")
        .port()
}

/// A temp dir that lives as long as its owner.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("portcullis-test")
                .tempdir()
                .expect("tempdir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

/// Poll `f` until it returns `Ok`, or fail with its last error after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut last;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("not true within {deadline:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A self-signed TLS cert for localhost, 127.0.0.1 and ::1 (cert PEM, key PEM, cert DER).
pub fn tls_cert() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("rcgen self-signed cert");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().clone(),
    )
}

/// An Ed25519 key pair as PEM (PKCS#8 private key, SPKI public key).
pub fn ed25519_pem() -> (String, String) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 keygen");
    (kp.serialize_pem(), kp.public_key_pem())
}

/// Run the binary to completion.
pub fn run_cli(args: &[&str]) -> CliOutput {
    run_cli_in(Path::new("."), args)
}

/// Run the binary to completion in `dir` (what it finds without `--config` is there).
pub fn run_cli_in(dir: &Path, args: &[&str]) -> CliOutput {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run the binary to completion with `input` on its stdin (a pipe, not a terminal).
pub fn run_cli_stdin(args: &[&str], input: &str) -> CliOutput {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A CLI may refuse its arguments before it reads stdin: the pipe is closed then.
    match stdin.write_all(input.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for the CLI");
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A child process killed (and reaped) on drop; its output goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
    what: String,
    /// The read end of a stderr pipe nobody reads (see `spawn_with`), held open so that
    /// the child's writes block once the pipe is full instead of failing.
    _unread: Option<std::process::ChildStderr>,
}

impl Proc {
    fn spawn(what: &str, args: &[&str], log: PathBuf) -> Proc {
        Proc::spawn_with(what, args, &[], log, false)
    }

    /// Spawns with `env`; with `stderr_unread`, stderr is a pipe nobody reads, as a stalled
    /// log reader (a full disk, a stuck journald) looks to the process.
    fn spawn_with(
        what: &str,
        args: &[&str],
        env: &[(String, String)],
        log: PathBuf,
        stderr_unread: bool,
    ) -> Proc {
        Proc::spawn_via(&[], what, args, env, log, stderr_unread)
    }

    /// As `spawn_with`, through `launcher` (a command that execs the rest, e.g. `prlimit`)
    /// when it is not empty; the child's pid is then the binary's.
    fn spawn_via(
        launcher: &[String],
        what: &str,
        args: &[&str],
        env: &[(String, String)],
        log: PathBuf,
        stderr_unread: bool,
    ) -> Proc {
        let out = File::create(&log).expect("create log file");
        let err = match stderr_unread {
            true => Stdio::piped(),
            false => Stdio::from(out.try_clone().expect("clone log file handle")),
        };
        let mut command = match launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN} {args:?}: {e}"));
        Proc {
            _unread: child.stderr.take(),
            child,
            log,
            what: what.to_string(),
        }
    }
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- {} output ({}) -----\n{}\n----- end -----",
                self.what,
                self.log.display(),
                self.log()
            );
        }
    }
}

fn addr_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("in use") || l.contains("os error 98") || l.contains("addrinuse")
}
