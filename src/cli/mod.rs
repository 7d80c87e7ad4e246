//! Command-line definitions; one small function per subcommand, each calling the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use portcullis::config::{self, Source};
use portcullis::control::log::{Flush as LogFlush, LogWriter};
use portcullis::token::mint::{self, Grant};
use portcullis::token::{Alg, TokenType};

mod passkeys;
mod store;
mod totp;
mod users;

/// An authentication gateway: TLS in, JWT route policies, identity headers out.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (creates dev certs and a dev signing key on the embedded default).
    Run(ConfigArg),
    /// Validate every file; exit 1 with file:line:col errors; warn about shadowed routes.
    Check(ConfigArg),
    /// Which route a request matches, its policy, allow/deny and why (offline, no network).
    ///
    /// Exit code: 0 allow (forwarded, or answered by a gateway endpoint), 2 deny,
    /// 1 invalid configuration or METHOD.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// Request method, case-sensitive as on the wire (GET, POST, ...).
        method: String,
        /// Request target: path and optional query, as the client sends it.
        path: String,
        /// Host header value (host[:port]); omitted = routes with a host never match.
        #[arg(long)]
        host: Option<String>,
        /// Bearer access token to verify against the route's policy.
        #[arg(long)]
        token: Option<String>,
    },
    /// Mint an access token with the active signing key.
    Token {
        #[command(flatten)]
        config: ConfigArg,
        /// Subject (user name).
        #[arg(long)]
        sub: String,
        /// A role; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Lifetime, e.g. "15m"; defaults to tokens.access_ttl.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Generate a JWT signing key.
    Keygen {
        /// EdDSA, ES256, ES384, RS256, PS256, HS256, HS384 or HS512.
        #[arg(long)]
        alg: Alg,
        /// Key id; also the file name.
        #[arg(long)]
        kid: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a self-signed TLS certificate for localhost.
    DevCerts {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
    },
    /// Read a password on stdin (no echo on a terminal), print its argon2id PHC hash.
    HashPassword,
    /// Manage users of the file or Redis user store.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Revoke one token (--jti) or everything a subject holds (--sub), via the admin listener.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// Token id to revoke.
        #[arg(long, conflicts_with = "sub", required_unless_present = "sub")]
        jti: Option<String>,
        /// Subject whose tokens issued until now are revoked.
        #[arg(long)]
        sub: Option<String>,
    },
    /// A demo upstream that answers with the request it saw, as JSON.
    Echo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// gateway.toml; default config/gateway.toml, else the embedded default.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Parses the command line and runs the subcommand.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Dropped last, after the subcommand: the gateway's final lines are written before exit.
    let _flush = init_tracing(matches!(cli.command, Command::Run(_)))?;
    match cli.command {
        Command::Run(arg) => run(arg),
        Command::Check(arg) => check(arg),
        Command::Explain {
            config,
            method,
            path,
            host,
            token,
        } => explain(config, &method, &path, host.as_deref(), token.as_deref()),
        Command::Token {
            config,
            sub,
            roles,
            ttl,
        } => token(config, &sub, roles, ttl.as_deref()),
        Command::Keygen { alg, kid, out } => keygen(alg, &kid, &out),
        Command::DevCerts { out } => dev_certs(&out),
        Command::HashPassword => users::hash_password(),
        Command::User(command) => users::run(command),
        Command::Revoke { config, jti, sub } => revoke(config, jti, sub),
        Command::Echo { listen } => runtime()?
            .block_on(portcullis::tools::echo::serve(listen))
            .map(|()| ExitCode::SUCCESS)
            .context("echo upstream"),
    }
}

/// Logs to stderr: for the gateway through the log's writer thread (a request never waits
/// on stderr; the returned guard writes the last lines on drop), for the one-shot commands
/// directly, in order with what they print.
fn init_tracing(gateway: bool) -> anyhow::Result<Option<LogFlush>> {
    if !gateway {
        install_subscriber(std::io::stderr);
        return Ok(None);
    }
    let (writer, flush) =
        LogWriter::spawn(std::io::stderr(), portcullis::control::log::QUEUE_BYTES)
            .context("cannot start the log writer thread")?;
    writer.install(!json_format() && !ansi());
    install_subscriber(writer);
    Ok(Some(flush))
}

fn install_subscriber<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi());
    if json_format() {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// PORTCULLIS_LOG_FORMAT=json: one JSON object a line.
fn json_format() -> bool {
    std::env::var("PORTCULLIS_LOG_FORMAT").as_deref() == Ok("json")
}

/// Colours only for a person at a terminal.
fn ansi() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The explicit config, else config/gateway.toml, else the embedded default.
fn source(arg: &ConfigArg) -> Source {
    match &arg.config {
        Some(path) => Source::File(path.clone()),
        None if Path::new(config::DEFAULT_CONFIG_PATH).exists() => {
            Source::File(config::DEFAULT_CONFIG_PATH.into())
        }
        None => Source::Embedded(PathBuf::from("config")),
    }
}

fn load(source: &Source) -> anyhow::Result<config::Loaded> {
    config::load(source).map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}

/// The configuration to use; with none named (the samples), the dev certificate and signing
/// key they point at are created first if missing, so that `check`, `token` and `explain`
/// work on a fresh clone as `run` does.
fn source_with_dev_material(arg: &ConfigArg) -> anyhow::Result<Source> {
    let source = source(arg);
    if arg.config.is_none() {
        let dir = config::read::resolve(&source.base_dir(), "../certs");
        let created = portcullis::tools::devcerts::ensure_dev_material(&dir)?;
        for path in created {
            tracing::warn!(file = %path.display(), "created DEV material: self-signed TLS cert / dev signing key, not for production");
        }
    }
    Ok(source)
}

fn run(arg: ConfigArg) -> anyhow::Result<ExitCode> {
    let source = source_with_dev_material(&arg)?;
    let loaded = load(&source)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = runtime()?;
    let _guard = runtime.enter();
    let app = runtime
        .block_on(portcullis::control::app::App::start(loaded, source))
        .map_err(|err| anyhow::anyhow!("cannot open the revocation store: {err}"))?;
    let listen = app.listen.clone();
    let shutdown = portcullis::control::signals::shutdown_requested();
    runtime
        .block_on(portcullis::server::listen::serve(app, listen, shutdown))
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

fn check(arg: ConfigArg) -> anyhow::Result<ExitCode> {
    let source = source_with_dev_material(&arg)?;
    match config::load(&source) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            for warning in upstream_warnings(&loaded.snapshot) {
                eprintln!("warning: {warning}");
            }
            println!("{}: ok", source.gateway_path().display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for err in &errors.0 {
                eprintln!("error: {err}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Upstreams `check` cannot reach right now: a warning, since they may simply start later.
fn upstream_warnings(snap: &portcullis::config::snapshot::Snapshot) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::new();
    for index in 0..snap.routes.len() {
        if let Some(route) = snap.routes.get(index) {
            seen.entry(route.upstream.name.clone())
                .or_insert_with(|| (route.upstream.clone(), route.origin.clone()));
        }
    }
    let wait = std::time::Duration::from_millis(500);
    seen.into_iter()
        .filter_map(|(name, (upstream, origin))| {
            let problem = upstream.probe(wait).err()?;
            Some(format!(
                "{origin}: upstream \"{name}\" cannot be contacted now: {problem}"
            ))
        })
        .collect()
}

fn explain(
    arg: ConfigArg,
    method: &str,
    path: &str,
    host: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| anyhow::anyhow!("invalid method {method:?}"))?;
    let loaded = load(&source_with_dev_material(&arg)?)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let now = portcullis::runtime::unix_now();
    let explanation =
        portcullis::request::explain::explain(&loaded.snapshot, &method, path, host, token, now);
    print!("{explanation}");
    Ok(match explanation.allowed() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(2),
    })
}

/// Access tokens minted for longer than this get a warning.
const LONG_ACCESS_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

fn token(
    arg: ConfigArg,
    sub: &str,
    roles: Vec<String>,
    ttl: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let loaded = load(&source_with_dev_material(&arg)?)?;
    let snap = loaded.snapshot;
    let ttl = match ttl {
        Some(text) => config::duration::parse(text).map_err(anyhow::Error::msg)?,
        None => snap.lifetimes.access,
    };
    if sub.is_empty() {
        bail!("--sub must not be empty");
    }
    if ttl > LONG_ACCESS_TTL {
        // A bearer token cannot be recalled once copied; only revocation stops it.
        eprintln!(
            "warning: this access token is valid for {} days; it works until then unless \
             revoked (portcullis revoke --jti or --sub)",
            ttl.as_secs() / 86_400
        );
    }
    let grant = Grant {
        sub,
        roles: &roles,
        extra: serde_json::Map::new(),
        typ: TokenType::Access,
        fam: None,
        ttl_secs: ttl.as_secs(),
        authn: Default::default(),
    };
    let now = portcullis::runtime::unix_now();
    let (token, _) = mint::mint(
        &snap.keys,
        &snap.expect.issuer,
        &snap.expect.audience,
        grant,
        now,
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn keygen(alg: Alg, kid: &str, out: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let written = portcullis::tools::keygen::keygen(alg, kid, out)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    // The first file is the key that signs: the private PEM, or the HMAC secret.
    if let Some(key) = written.first() {
        let field = if alg.is_hmac() {
            "secret_file"
        } else {
            "private_key"
        };
        // gateway.toml resolves relative paths against its own directory, not the one keygen
        // ran in: an absolute path is right wherever the block is pasted.
        let key = std::path::absolute(key).unwrap_or_else(|_| key.clone());
        println!(
            "\nTo use it, add to gateway.toml (publish it before signing with it: README \"Key rotation\"):\n\n[[keys]]\nkid = {kid:?}\nalg = \"{alg}\"\n{field} = {:?}",
            key.display().to_string()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn dev_certs(out: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (cert, key) = portcullis::tools::devcerts::write_dev_cert(out)?;
    println!("wrote {}\nwrote {}", cert.display(), key.display());
    Ok(ExitCode::SUCCESS)
}

fn revoke(arg: ConfigArg, jti: Option<String>, sub: Option<String>) -> anyhow::Result<ExitCode> {
    let loaded = load(&source(&arg))?;
    let Some(admin) = loaded.listen.admin_addr else {
        bail!("`revoke` talks to the running gateway's admin listener: set [admin] addr");
    };
    let order = serde_json::json!({ "jti": jti, "sub": sub });
    let body = runtime()?.block_on(portcullis::control::admin::post_revoke(admin, &order))?;
    print!("{body}");
    Ok(ExitCode::SUCCESS)
}
