//! Keys other tools read: the private keys `keygen` and the dev material write load in the
//! machine's OpenSSL (`openssl pkey`) and in Python's `cryptography`, as well as in the gateway.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Every asymmetric algorithm `keygen` writes a PEM pair for (PS256 keys are RS256 keys).
const ASYMMETRIC: [&str; 4] = ["EdDSA", "ES256", "ES384", "RS256"];

/// Loads `private` and, when given, `public` with Python's `cryptography`; prints the key type.
const PYTHON_LOAD: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization
with open(sys.argv[1], "rb") as f:
    key = serialization.load_pem_private_key(f.read(), password=None)
if len(sys.argv) > 2:
    with open(sys.argv[2], "rb") as f:
        serialization.load_pem_public_key(f.read())
print(type(key).__name__)
"#;

/// Runs a tool on the machine to completion; a missing tool fails the test, it never skips.
fn tool(program: &str, args: &[&str]) -> CliOutput {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (CI installs it: .ci/run): {e}"));
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `private` (and `public`) load in `openssl pkey` and in Python's `cryptography`.
fn assert_other_tools_load(private: &Path, public: Option<&Path>, what: &str) {
    let private = private.to_str().expect("utf-8 path");
    let out = tool("openssl", &["pkey", "-in", private, "-noout"]);
    assert_eq!(out.code, Some(0), "openssl pkey refuses {what}: {out:?}");
    let mut args = vec!["-c", PYTHON_LOAD, private];
    if let Some(public) = public {
        let public = public.to_str().expect("utf-8 path");
        let out = tool("openssl", &["pkey", "-pubin", "-in", public, "-noout"]);
        assert_eq!(
            out.code,
            Some(0),
            "openssl pkey refuses {what}'s public key: {out:?}"
        );
        args.push(public);
    }
    let out = tool("python3", &args);
    assert_eq!(
        out.code,
        Some(0),
        "python cryptography refuses {what}: {out:?}"
    );
}

#[test]
fn keygen_private_keys_load_in_openssl_and_python_cryptography() {
    let dir = TestDir::new();
    let out_dir = dir.path().to_str().expect("utf-8 path");
    for alg in ASYMMETRIC {
        let kid = format!("k-{}", alg.to_ascii_lowercase());
        let out = run_cli(&["keygen", "--alg", alg, "--kid", &kid, "--out", out_dir]);
        assert_eq!(out.code, Some(0), "keygen {alg}: {out:?}");
        let private = dir.join(&format!("{kid}.pem"));
        let public = dir.join(&format!("{kid}.pub.pem"));
        assert_other_tools_load(&private, Some(&public), &format!("keygen's {alg} key"));
    }
}

#[test]
fn the_dev_signing_and_tls_keys_load_in_openssl_python_and_the_gateway() {
    // `check` without --config, in a directory with no config/, uses the embedded samples
    // and creates the dev material they point at (as `run` does); exit 0 means it loaded.
    let clone = TestDir::new();
    let out = run_cli_in(clone.path(), &["check"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for name in ["dev-signing.pem", "dev-key.pem"] {
        let key = clone.join(&format!("certs/{name}"));
        assert!(key.exists(), "check created no certs/{name}: {out:?}");
        assert_other_tools_load(&key, None, &format!("the dev {name}"));
    }
    let token = run_cli_in(
        clone.path(),
        &["token", "--sub", "alice", "--role", "admin"],
    );
    assert_eq!(
        token.code,
        Some(0),
        "the dev signing key does not sign: {token:?}"
    );
}

#[test]
fn keygen_block_pasted_into_the_sample_config_loads_from_the_repository_root() {
    // The README's rotation step: `keygen --out certs/` in the repository root, its block
    // pasted into config/gateway.toml, whose relative paths start from config/.
    let clone = TestDir::new();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["gateway.toml", "routes.toml", "users.toml"] {
        let text = std::fs::read_to_string(samples.join(name)).expect("a sample");
        clone.write(&format!("config/{name}"), &text);
    }
    let out = run_cli_in(clone.path(), &["check"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let args = [
        "keygen", "--alg", "EdDSA", "--kid", "k2026b", "--out", "certs",
    ];
    let out = run_cli_in(clone.path(), &args);
    assert_eq!(out.code, Some(0), "{out:?}");
    let block = out
        .stdout
        .split_once("[[keys]]\n")
        .map(|(_, block)| format!("\n[[keys]]\n{}\n", block.trim_end()))
        .unwrap_or_else(|| panic!("no [[keys]] block: {out:?}"));
    let gateway = clone.join("config/gateway.toml");
    let text = std::fs::read_to_string(&gateway).expect("gateway.toml");
    clone.write("config/gateway.toml", &(text + &block));
    let out = run_cli_in(clone.path(), &["check"]);
    assert_eq!(
        out.code,
        Some(0),
        "the pasted block does not load: {block}\n{out:?}"
    );
}
