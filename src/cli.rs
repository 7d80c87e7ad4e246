//! Command-line definitions; one small function per subcommand, each calling the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use portcullis::config::{self, Source};
use portcullis::token::mint::{self, Grant};
use portcullis::token::{Alg, TokenType};

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
    init_tracing();
    match cli.command {
        Command::Run(arg) => run(arg),
        Command::Check(arg) => check(arg),
        Command::Token {
            config,
            sub,
            roles,
            ttl,
        } => token(config, &sub, roles, ttl.as_deref()),
        Command::Keygen { alg, kid, out } => keygen(alg, &kid, &out),
        Command::DevCerts { out } => dev_certs(&out),
        Command::Echo { listen } => runtime()?
            .block_on(portcullis::echo::serve(listen))
            .map(|()| ExitCode::SUCCESS)
            .context("echo upstream"),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PORTCULLIS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
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

fn run(arg: ConfigArg) -> anyhow::Result<ExitCode> {
    let source = source(&arg);
    if arg.config.is_none() {
        let dir = config::compile::resolve(&source.base_dir(), "../certs");
        let created = portcullis::devcerts::ensure_dev_material(&dir)?;
        for path in created {
            tracing::warn!(file = %path.display(), "created DEV material: self-signed TLS cert / dev signing key, not for production");
        }
    }
    let loaded = load(&source)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let shared = portcullis::snapshot::share(loaded.snapshot);
    runtime()?
        .block_on(portcullis::listen::serve(shared, loaded.listen))
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

fn check(arg: ConfigArg) -> anyhow::Result<ExitCode> {
    let source = source(&arg);
    match config::load(&source) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
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

fn token(
    arg: ConfigArg,
    sub: &str,
    roles: Vec<String>,
    ttl: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let loaded = load(&source(&arg))?;
    let snap = loaded.snapshot;
    let ttl = match ttl {
        Some(text) => config::duration::parse(text).map_err(anyhow::Error::msg)?,
        None => snap.lifetimes.access,
    };
    if sub.is_empty() {
        bail!("--sub must not be empty");
    }
    let grant = Grant {
        sub,
        roles: &roles,
        extra: serde_json::Map::new(),
        typ: TokenType::Access,
        fam: None,
        ttl_secs: ttl.as_secs(),
    };
    let now = portcullis::pipeline::unix_now();
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
    for path in portcullis::keygen::keygen(alg, kid, out)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn dev_certs(out: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (cert, key) = portcullis::devcerts::write_dev_cert(out)?;
    println!("wrote {}\nwrote {}", cert.display(), key.display());
    Ok(ExitCode::SUCCESS)
}
