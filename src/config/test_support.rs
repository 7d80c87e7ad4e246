//! A minimal valid configuration written to a temp dir with generated key material, shared
//! by the unit tests that need a real `Loaded` (config validation, explain).

use std::path::Path;

/// The smallest gateway.toml that loads: certs, one EdDSA key, routes.toml beside it.
pub(crate) const GATEWAY: &str = r#"
[listen]
addr = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[tokens]
issuer = "portcullis"
audience = "portcullis"
signing_kid = "main"
[[keys]]
kid = "main"
alg = "EdDSA"
private_key = "main.pem"
[routes]
file = "routes.toml"
"#;

/// Writes the cert, TLS key and signing key that `GATEWAY` names into `dir`.
pub(crate) fn write_material(dir: &Path) {
    crate::tools::devcerts::write_dev_cert(dir).expect("dev cert");
    std::fs::rename(dir.join("dev-cert.pem"), dir.join("cert.pem")).expect("rename cert");
    std::fs::rename(dir.join("dev-key.pem"), dir.join("key.pem")).expect("rename key");
    let pem =
        crate::tools::keygen::generate_private_pem(crate::token::Alg::EdDSA).expect("signing key");
    std::fs::write(dir.join("main.pem"), pem).expect("write signing key");
}
