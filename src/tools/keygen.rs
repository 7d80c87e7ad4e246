//! `portcullis keygen`: writes a fresh signing key (or HMAC secret) for the key ring.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::token::keys::rcgen_alg;
use crate::token::Alg;

/// Why a key could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The kid is unusable as a file name.
    #[error("invalid kid {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    InvalidKid(String),
    /// The algorithm has no private key (HMAC).
    #[error("{0} uses a shared secret, not a private key")]
    NoPrivateKey(Alg),
    /// The crypto backend could not generate the key.
    #[error("could not generate a {alg} key: {reason}")]
    Generate {
        /// The requested algorithm.
        alg: Alg,
        /// The backend's explanation.
        reason: String,
    },
    /// An output file already exists; keys are never overwritten.
    #[error("refusing to overwrite {}", .0.display())]
    Exists(PathBuf),
    /// Writing an output file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Generates a key for `alg` and writes it under `out_dir`, returning the files written.
pub fn keygen(alg: Alg, kid: &str, out_dir: &Path) -> Result<Vec<PathBuf>, KeygenError> {
    check_kid(kid)?;
    if alg.is_hmac() {
        let path = out_dir.join(format!("{kid}.secret"));
        refuse_existing(&path)?;
        write_new(&path, random_secret().as_bytes(), true)?;
        return Ok(vec![path]);
    }
    let pair = generate_pair(alg)?;
    let private = out_dir.join(format!("{kid}.pem"));
    let public = out_dir.join(format!("{kid}.pub.pem"));
    // Check both before writing either, so a refusal leaves nothing half-written.
    refuse_existing(&private)?;
    refuse_existing(&public)?;
    write_new(&private, pair.serialize_pem().as_bytes(), true)?;
    write_new(&public, pair.public_key_pem().as_bytes(), false)?;
    Ok(vec![private, public])
}

/// A new PKCS#8 private key PEM for an asymmetric `alg`.
pub fn generate_private_pem(alg: Alg) -> Result<String, KeygenError> {
    Ok(generate_pair(alg)?.serialize_pem())
}

fn generate_pair(alg: Alg) -> Result<rcgen::KeyPair, KeygenError> {
    let sig_alg = rcgen_alg(alg).ok_or(KeygenError::NoPrivateKey(alg))?;
    let failed = |reason: String| KeygenError::Generate { alg, reason };
    if alg == Alg::EdDSA {
        // rcgen writes Ed25519 keys as PKCS#8 v2 with the public key attached, which OpenSSL
        // 3.0 ("unsupported") and Python's cryptography ("extra data") refuse; v1 (RFC 8410,
        // the private seed only) is what `openssl genpkey` writes and every tool reads.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let v1 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng)
            .map_err(|e| failed(e.to_string()))?;
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(v1.as_ref());
        return rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg)
            .map_err(|e| failed(e.to_string()));
    }
    // With aws-lc-rs, rcgen generates RSA keys too (2048 bits for PKCS_RSA_SHA256); its EC
    // and RSA PKCS#8 output is v1 already.
    rcgen::KeyPair::generate_for(sig_alg).map_err(|e| failed(e.to_string()))
}

/// 64 random bytes as unpadded base64url text.
fn random_secret() -> String {
    // uuid v4 draws from the OS CSPRNG (getrandom); four of them give 64 bytes, of which
    // 488 bits are random (each carries 6 fixed version/variant bits) — ample for HS512.
    let bytes: Vec<u8> = (0..4)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A kid becomes a file name, so it must be short and free of path characters.
fn check_kid(kid: &str) -> Result<(), KeygenError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = (1..=64).contains(&kid.len()) && kid.chars().all(allowed) && kid != "." && kid != "..";
    if ok {
        Ok(())
    } else {
        Err(KeygenError::InvalidKid(kid.to_owned()))
    }
}

fn refuse_existing(path: &Path) -> Result<(), KeygenError> {
    match path.try_exists() {
        Ok(false) => Ok(()),
        Ok(true) => Err(KeygenError::Exists(path.to_owned())),
        Err(source) => Err(KeygenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Creates `path` (never replacing a file) and writes `contents`; private files get mode 0600.
fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<(), KeygenError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let io_err = |source| KeygenError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(|source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeygenError::Exists(path.to_owned())
        } else {
            io_err(source)
        }
    })?;
    file.write_all(contents).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_keygen_writes_private_and_public_pem() {
        let dir = tempfile::tempdir().unwrap();
        let files = keygen(Alg::ES256, "web-1", dir.path()).unwrap();
        assert_eq!(
            files,
            [
                dir.path().join("web-1.pem"),
                dir.path().join("web-1.pub.pem")
            ]
        );
        let private = std::fs::read_to_string(&files[0]).unwrap();
        let public = std::fs::read_to_string(&files[1]).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[cfg(unix)]
    #[test]
    fn private_key_and_secret_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut files = keygen(Alg::EdDSA, "ed", dir.path()).unwrap();
        files.extend(keygen(Alg::HS256, "hs", dir.path()).unwrap());
        for path in [&files[0], &files[2]] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    #[test]
    fn hmac_keygen_writes_64_random_bytes_as_base64url() {
        let dir = tempfile::tempdir().unwrap();
        let files = keygen(Alg::HS512, "hs", dir.path()).unwrap();
        assert_eq!(files, [dir.path().join("hs.secret")]);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(text.as_bytes()).unwrap().len(), 64);
        assert_ne!(text, random_secret());
    }

    #[test]
    fn keygen_refuses_to_overwrite_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pub.pem"), "keep me").unwrap();
        let err = keygen(Alg::EdDSA, "k", dir.path()).unwrap_err();
        assert!(matches!(err, KeygenError::Exists(ref p) if p.ends_with("k.pub.pem")));
        assert!(!dir.path().join("k.pem").exists());
        keygen(Alg::HS256, "s", dir.path()).unwrap();
        assert!(matches!(
            keygen(Alg::HS256, "s", dir.path()),
            Err(KeygenError::Exists(_))
        ));
    }

    #[test]
    fn kid_must_be_a_safe_file_name() {
        let dir = tempfile::tempdir().unwrap();
        for kid in ["", "..", "a/b", "a b", "ключ", &"x".repeat(65)] {
            let err = keygen(Alg::HS256, kid, dir.path()).unwrap_err();
            assert!(matches!(err, KeygenError::InvalidKid(_)), "{kid:?}");
        }
        assert!(check_kid("prod-2024.v1_a").is_ok());
    }

    #[test]
    fn rsa_keys_are_generated_at_2048_bits() {
        let pem = generate_private_pem(Alg::RS256).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            pem.len() > 1600,
            "a 2048-bit PKCS#8 RSA key is about 1.7 KB of PEM"
        );
    }

    #[test]
    fn ed25519_keys_are_pkcs8_v1_without_the_public_key() {
        let pem = generate_private_pem(Alg::EdDSA).unwrap();
        let pair = rcgen::KeyPair::from_pem(&pem).unwrap();
        // RFC 8410 section 10.3: SEQUENCE { version 0, id-Ed25519, OCTET STRING { seed } }.
        let prefix = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let der = pair.serialize_der();
        assert_eq!(der.len(), prefix.len() + 32);
        assert!(der.starts_with(&prefix), "{der:02x?}");
    }

    #[test]
    fn hmac_algs_have_no_private_pem() {
        assert!(matches!(
            generate_private_pem(Alg::HS256),
            Err(KeygenError::NoPrivateKey(_))
        ));
    }
}
