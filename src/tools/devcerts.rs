//! `portcullis dev-certs` and the dev material `run` creates on a fresh clone.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why dev material could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// rcgen could not build the certificate.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Key generation failed.
    #[error(transparent)]
    Keygen(#[from] crate::tools::keygen::KeygenError),
}

/// File names of the dev certificate and key inside the output directory.
pub const CERT_FILE: &str = "dev-cert.pem";
/// The dev TLS private key.
pub const KEY_FILE: &str = "dev-key.pem";
/// The dev JWT signing key.
pub const SIGNING_KEY_FILE: &str = "dev-signing.pem";

/// Writes a self-signed certificate for localhost, 127.0.0.1 and ::1 into `dir`.
pub fn write_dev_cert(dir: &Path) -> Result<(PathBuf, PathBuf), DevCertError> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    write_file(
        &key_path,
        certified.signing_key.serialize_pem().as_bytes(),
        true,
    )?;
    write_file(&cert_path, certified.cert.pem().as_bytes(), false)?;
    Ok((cert_path, key_path))
}

/// Creates the dev TLS cert and the dev EdDSA signing key in `dir` when missing.
pub fn ensure_dev_material(dir: &Path) -> Result<Vec<PathBuf>, DevCertError> {
    let mut created = Vec::new();
    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    if !dir.join(CERT_FILE).exists() || !dir.join(KEY_FILE).exists() {
        let (cert, key) = write_dev_cert(dir)?;
        created.extend([cert, key]);
    }
    let signing = dir.join(SIGNING_KEY_FILE);
    if !signing.exists() {
        let pem = crate::tools::keygen::generate_private_pem(crate::token::Alg::EdDSA)?;
        write_file(&signing, pem.as_bytes(), true)?;
        created.push(signing);
    }
    Ok(created)
}

/// Writes a file; private ones get mode 0600 from the start.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), DevCertError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let result = options
        .open(path)
        .and_then(|mut file| file.write_all(contents));
    result.map_err(|source| DevCertError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_material_is_created_once_and_loads_as_tls_identity() {
        let dir = tempfile::tempdir().expect("temp dir");
        let created = ensure_dev_material(dir.path()).expect("dev material");
        assert_eq!(created.len(), 3);
        let cert = std::fs::read(dir.path().join(CERT_FILE)).expect("cert written");
        let key = std::fs::read(dir.path().join(KEY_FILE)).expect("key written");
        assert!(crate::config::tls::server_config(&cert, &key).is_ok());
        assert!(ensure_dev_material(dir.path())
            .expect("second run")
            .is_empty());
    }
}
