//! Loading and validating configuration: raw TOML in, a typed `Snapshot` out.

pub mod compile;
mod compile_assertion;
pub mod compile_auth;
mod compile_edge;
pub mod compile_issuers;
mod compile_passkeys;
mod compile_policy;
mod compile_provider_auth;
mod compile_providers;
mod compile_routes;
mod compile_second_factor;
mod compile_sign_in;
pub mod diag;
pub mod duration;
pub mod raw;
pub mod read;
pub mod snapshot;
pub mod tls;

use std::path::{Path, PathBuf};

pub use compile::{load, Loaded};
pub use diag::{ConfigError, ConfigErrors};

/// The sample gateway.toml, also the embedded default.
pub const DEFAULT_GATEWAY_TOML: &str = include_str!("../../config/gateway.toml");
/// The sample routes.toml, also the embedded default.
pub const DEFAULT_ROUTES_TOML: &str = include_str!("../../config/routes.toml");
/// Where `run` looks for its configuration when given none.
pub const DEFAULT_CONFIG_PATH: &str = "config/gateway.toml";

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A gateway.toml on disk; the files it names are read from disk.
    File(PathBuf),
    /// The embedded samples, as if they were in `<dir>/gateway.toml` and `<dir>/routes.toml`.
    Embedded(PathBuf),
    /// Texts held in memory as `<dir>/gateway.toml` and `<dir>/routes.toml` (fuzzing, tests);
    /// any other file they name is read from disk.
    Inline {
        /// The directory the texts stand in.
        dir: PathBuf,
        /// The gateway.toml text.
        gateway: String,
        /// The routes.toml text.
        routes: String,
    },
}

impl Source {
    /// The gateway.toml path used in messages and for resolving relative paths.
    pub fn gateway_path(&self) -> PathBuf {
        match self {
            Source::File(path) => path.clone(),
            Source::Embedded(dir) | Source::Inline { dir, .. } => dir.join("gateway.toml"),
        }
    }

    /// The directory relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Source::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Source::Embedded(dir) | Source::Inline { dir, .. } => dir.clone(),
        }
    }

    /// Reads a configuration text: the embedded samples stand in for their own names.
    pub fn read(&self, path: &Path) -> std::io::Result<String> {
        let (dir, gateway, routes) = match self {
            Source::File(_) => return read_config_file(path),
            Source::Embedded(dir) => (dir, DEFAULT_GATEWAY_TOML, DEFAULT_ROUTES_TOML),
            Source::Inline {
                dir,
                gateway,
                routes,
            } => (dir, gateway.as_str(), routes.as_str()),
        };
        if path == dir.join("gateway.toml") {
            return Ok(gateway.to_string());
        }
        if path == dir.join("routes.toml") {
            return Ok(routes.to_string());
        }
        read_config_file(path)
    }
}

/// Largest file the loader reads: config texts, keys and certificates are a few KiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a file the configuration names, refusing what is not a regular file (a FIFO would
/// block the loader, `/dev/zero` would exhaust memory) or is larger than `MAX_FILE_BYTES`.
pub(crate) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let message = format!("larger than {MAX_FILE_BYTES} bytes");
        return Err(Error::new(ErrorKind::InvalidData, message));
    }
    Ok(bytes)
}

fn read_config_file(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_limited(path)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

/// The files a running gateway watches for changes: gateway.toml and every file it names.
///
/// Best effort: a gateway.toml that does not parse yields just itself, so the next good
/// save is still noticed.
pub fn watched_files(source: &Source) -> Vec<PathBuf> {
    let gateway = source.gateway_path();
    let mut files = vec![gateway.clone()];
    let Ok(text) = source.read(&gateway) else {
        return files;
    };
    let Ok(file) = toml::from_str::<raw::GatewayFile>(&text) else {
        return files;
    };
    let base = source.base_dir();
    let mut named = vec![
        file.routes.file.clone(),
        file.users.file.clone(),
        file.listen.tls_cert.get_ref().clone(),
        file.listen.tls_key.get_ref().clone(),
    ];
    for key in &file.keys {
        let key = key.get_ref();
        for path in [&key.private_key, &key.public_key, &key.secret_file]
            .into_iter()
            .flatten()
        {
            named.push(path.get_ref().clone());
        }
    }
    if let Some(assertion) = &file.assertion {
        named.push(assertion.get_ref().private_key.get_ref().clone());
    }
    files.extend(named.iter().map(|path| read::resolve(&base, path)));
    files
}
