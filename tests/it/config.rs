//! `portcullis check`, `keygen`, `dev-certs`: the operator commands around the config files.

use std::path::Path;

use crate::common::*;

const GATEWAY_OK: &str = r#"[listen]
addr = "127.0.0.1:18443"
tls_cert = "cert.pem"
tls_key = "key.pem"

[admin]
addr = "127.0.0.1:19091"

[tokens]
issuer = "portcullis"
audience = "portcullis"
access_ttl = "15m"
leeway = "30s"
signing_kid = "main"

[[keys]]
kid = "main"
alg = "EdDSA"
private_key = "main.pem"

[routes]
file = "routes.toml"
"#;

const ROUTES_OK: &str = r#"[upstreams.api]
url = "http://127.0.0.1:18080"
connect_timeout = "2s"
timeout = "30s"

[[routes]]
path = "/public/**"
upstream = "api"
auth = "none"
"#;

/// A directory with cert, key and signing key, plus the two config files given.
fn config_dir(gateway: &str, routes: &str) -> TestDir {
    let dir = TestDir::new();
    let (cert, key, _) = tls_cert();
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);
    dir.write("main.pem", &ed25519_pem().0);
    dir.write("gateway.toml", gateway);
    dir.write("routes.toml", routes);
    dir
}

fn check(config: &Path) -> CliOutput {
    run_cli(&["check", "--config", config.to_str().expect("utf-8 path")])
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
        + 1
}

/// The stderr line reporting `file:line:col:` and mentioning `word`, if any.
fn diag_line<'a>(stderr: &'a str, file: &str, line: usize, word: &str) -> Option<&'a str> {
    let prefix = format!("{file}:{line}:");
    stderr.lines().find(|l| {
        let Some(at) = l.find(&prefix) else {
            return false;
        };
        let rest = &l[at + prefix.len()..];
        let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !col.is_empty() && rest[col.len()..].starts_with(':') && l.contains(word)
    })
}

#[test]
fn check_accepts_a_valid_config() {
    let dir = config_dir(GATEWAY_OK, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn check_reports_unknown_key_with_file_line_col() {
    let gateway = GATEWAY_OK.replace("leeway = \"30s\"", "leeway = \"30s\"\nbogus_knob = 1");
    let dir = config_dir(&gateway, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = line_of(&gateway, "bogus_knob");
    assert!(
        diag_line(&out.stderr, "gateway.toml", line, "bogus_knob").is_some(),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn check_reports_missing_upstream_with_file_line_col() {
    let routes = ROUTES_OK.replace("upstream = \"api\"", "upstream = \"apii\"");
    let dir = config_dir(GATEWAY_OK, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = line_of(&routes, "apii");
    assert!(
        diag_line(&out.stderr, "routes.toml", line, "apii").is_some(),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn check_reports_unknown_key_and_missing_upstream_together() {
    let gateway = GATEWAY_OK.replace("leeway = \"30s\"", "leeway = \"30s\"\nbogus_knob = 1");
    let routes = ROUTES_OK.replace("upstream = \"api\"", "upstream = \"apii\"");
    let dir = config_dir(&gateway, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let g = diag_line(
        &out.stderr,
        "gateway.toml",
        line_of(&gateway, "bogus_knob"),
        "bogus_knob",
    );
    let r = diag_line(&out.stderr, "routes.toml", line_of(&routes, "apii"), "apii");
    assert!(
        g.is_some() && r.is_some(),
        "want both errors; stderr:\n{}",
        out.stderr
    );
}

#[test]
fn check_reports_every_error_in_one_pass() {
    let routes = format!(
        "{ROUTES_OK}\n[[routes]]\npath = \"/a/**\"\nupstream = \"nope1\"\n\n[[routes]]\npath = \"/b/**\"\nupstream = \"nope2\"\n"
    );
    let dir = config_dir(GATEWAY_OK, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        diag_line(
            &out.stderr,
            "routes.toml",
            line_of(&routes, "nope1"),
            "nope1"
        )
        .is_some(),
        "stderr:\n{}",
        out.stderr
    );
    assert!(
        diag_line(
            &out.stderr,
            "routes.toml",
            line_of(&routes, "nope2"),
            "nope2"
        )
        .is_some(),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn check_rejects_bad_duration() {
    let gateway = GATEWAY_OK.replace("access_ttl = \"15m\"", "access_ttl = \"15 fortnights\"");
    let dir = config_dir(&gateway, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = line_of(&gateway, "fortnights");
    assert!(
        diag_line(&out.stderr, "gateway.toml", line, "").is_some(),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn check_rejects_bad_read_timeouts_with_file_line_col() {
    let gateway = format!("{GATEWAY_OK}\n[proxy]\nread_timeout = \"0s\"\n");
    let routes = format!("{ROUTES_OK}read_timeout = \"soon\"\n");
    let dir = config_dir(&gateway, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let zero = line_of(&gateway, "\"0s\"");
    let soon = line_of(&routes, "soon");
    for (file, line) in [("gateway.toml", zero), ("routes.toml", soon)] {
        let found = diag_line(&out.stderr, file, line, "duration");
        assert!(found.is_some(), "{file}:{line}: stderr:\n{}", out.stderr);
    }
}

#[test]
fn check_accepts_a_read_timeout_default_and_a_route_override() {
    let gateway = format!("{GATEWAY_OK}\n[proxy]\nread_timeout = \"2m\"\n");
    let routes = format!("{ROUTES_OK}read_timeout = \"10m\"\n");
    let dir = config_dir(&gateway, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn check_rejects_missing_key_file() {
    let gateway = GATEWAY_OK.replace("private_key = \"main.pem\"", "private_key = \"absent.pem\"");
    let dir = config_dir(&gateway, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("absent.pem"), "stderr:\n{}", out.stderr);
}

#[test]
fn check_warns_about_shadowed_routes() {
    let routes = format!("{ROUTES_OK}\n[[routes]]\npath = \"/public/x\"\nupstream = \"api\"\n");
    let dir = config_dir(GATEWAY_OK, &routes);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(
        out.code,
        Some(0),
        "a shadowed route is a warning, not an error: {out:?}"
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    let line = line_of(&routes, "/public/x");
    let warning = diag_line(&all, "routes.toml", line, "/public/x");
    assert!(
        warning.is_some_and(|w| w.to_ascii_lowercase().contains("warn")),
        "no warning naming routes.toml:{line} and the shadowed route:\n{all}"
    );
}

#[test]
fn check_passes_on_the_sample_config() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let in_place = check(&repo.join("config/gateway.toml"));
    if in_place.code == Some(0) {
        return;
    }
    // The samples point at ../certs/dev-*.pem, generated on first run and never committed:
    // check a copy of config/ next to freshly generated certs instead.
    let dir = TestDir::new();
    for entry in std::fs::read_dir(repo.join("config")).expect("config/ exists") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().into_string().expect("utf-8 name");
        let text = std::fs::read_to_string(entry.path()).expect("read sample");
        dir.write(&format!("config/{name}"), &text);
    }
    let (cert, key, _) = tls_cert();
    dir.write("certs/dev-cert.pem", &cert);
    dir.write("certs/dev-key.pem", &key);
    let (signing, public) = ed25519_pem();
    dir.write("certs/dev-signing.pem", &signing);
    dir.write("certs/dev-signing.pub.pem", &public);
    dir.write("certs/dev.pem", &signing);
    let copy = check(&dir.join("config/gateway.toml"));
    assert_eq!(
        copy.code,
        Some(0),
        "sample config fails check even with certs present:\n{}\n(in place: {in_place:?})",
        copy.stderr
    );
}

#[test]
fn dev_certs_writes_cert_and_key() {
    let dir = TestDir::new();
    let out = run_cli(&["dev-certs", "--out", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let cert = std::fs::read_to_string(dir.join("dev-cert.pem")).expect("dev-cert.pem");
    let key = std::fs::read_to_string(dir.join("dev-key.pem")).expect("dev-key.pem");
    assert!(cert.contains("BEGIN CERTIFICATE"), "{cert}");
    assert!(
        key.contains("PRIVATE KEY"),
        "key file is not a private key PEM"
    );
    // The generated pair is usable by `check`.
    let gateway = GATEWAY_OK
        .replace("\"cert.pem\"", "\"dev-cert.pem\"")
        .replace("\"key.pem\"", "\"dev-key.pem\"");
    dir.write("gateway.toml", &gateway);
    dir.write("routes.toml", ROUTES_OK);
    dir.write("main.pem", &ed25519_pem().0);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn keygen_keys_pass_check_and_sign_tokens() {
    for alg in ["EdDSA", "ES256", "RS256", "HS256"] {
        let dir = config_dir(GATEWAY_OK, ROUTES_OK);
        let kid = format!("k-{}", alg.to_ascii_lowercase());
        let out = run_cli(&[
            "keygen",
            "--alg",
            alg,
            "--kid",
            &kid,
            "--out",
            dir.path().to_str().expect("utf-8"),
        ]);
        assert_eq!(out.code, Some(0), "keygen {alg}: {out:?}");
        // The snippet keygen prints is what goes into gateway.toml.
        let snippet = out
            .stdout
            .split_once("[[keys]]\n")
            .map(|(_, keys)| keys.trim_end().to_string())
            .unwrap_or_else(|| panic!("keygen {alg} printed no [[keys]] snippet: {out:?}"));
        if alg == "HS256" {
            assert!(
                dir.join(&format!("{kid}.secret")).exists(),
                "keygen {alg} wrote no {kid}.secret"
            );
        } else {
            assert!(
                dir.join(&format!("{kid}.pem")).exists(),
                "keygen {alg} wrote no {kid}.pem"
            );
            assert!(
                dir.join(&format!("{kid}.pub.pem")).exists(),
                "keygen {alg} wrote no {kid}.pub.pem"
            );
        }
        let gateway = GATEWAY_OK
            .replace(
                "signing_kid = \"main\"",
                &format!("signing_kid = \"{kid}\""),
            )
            .replace(
                "kid = \"main\"\nalg = \"EdDSA\"\nprivate_key = \"main.pem\"",
                &snippet,
            );
        let cfg = dir.write("gateway.toml", &gateway);
        let cfg = cfg.to_str().expect("utf-8");
        let out = run_cli(&["check", "--config", cfg]);
        assert_eq!(out.code, Some(0), "check with a {alg} keygen key: {out:?}");
        let out = run_cli(&["token", "--config", cfg, "--sub", "alice", "--role", "user"]);
        assert_eq!(out.code, Some(0), "token with a {alg} keygen key: {out:?}");
        let token = out.stdout.trim();
        assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
        let header = jsonwebtoken::decode_header(token).expect("JWT header");
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(format!("{:?}", header.alg), alg);
    }
}

#[test]
fn token_command_mints_access_tokens_with_the_given_claims() {
    let dir = config_dir(GATEWAY_OK, ROUTES_OK);
    let cfg = dir.join("gateway.toml");
    let out = run_cli(&[
        "token",
        "--config",
        cfg.to_str().expect("utf-8"),
        "--sub",
        "alice",
        "--role",
        "a",
        "--role",
        "b",
        "--ttl",
        "5m",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let token = out.stdout.trim();
    let payload = token.split('.').nth(1).expect("JWT payload");
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], serde_json::json!(["a", "b"]));
    assert_eq!(claims["iss"], "portcullis");
    assert!(
        claims["aud"] == "portcullis" || claims["aud"] == serde_json::json!(["portcullis"]),
        "aud {}",
        claims["aud"]
    );
    assert_eq!(claims["typ"], "access");
    let ttl = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(ttl, 300, "--ttl 5m");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(
        jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .as_deref()
            == Some("main")
    );
}

#[test]
fn check_rejects_redis_users_without_the_redis_store() {
    let gateway = format!("{GATEWAY_OK}\n[users]\nbackend = \"redis\"\n");
    let dir = config_dir(&gateway, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = line_of(&gateway, "backend = \"redis\"");
    let diag = diag_line(&out.stderr, "gateway.toml", line, "needs [store] backend");
    assert!(diag.is_some(), "stderr:\n{}", out.stderr);
}

/// `run` on `gateway` (with the usual files beside it), to completion.
fn run_to_exit(gateway: &str) -> CliOutput {
    let dir = config_dir(gateway, ROUTES_OK);
    let config = dir.join("gateway.toml");
    run_cli(&["run", "--config", config.to_str().expect("utf-8 path")])
}

#[test]
fn a_taken_port_is_named_with_its_config_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("bound").port();
    let https_taken = GATEWAY_OK
        .replace("127.0.0.1:18443", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:19091", &format!("127.0.0.1:{}", free_port()));
    let out = run_to_exit(&https_taken);
    assert_ne!(out.code, Some(0), "{out:?}");
    let want = format!("cannot listen on 127.0.0.1:{port} (listen.addr)");
    assert!(out.stderr.contains(&want), "{}", out.stderr);

    let admin_taken = GATEWAY_OK
        .replace("127.0.0.1:18443", &format!("127.0.0.1:{}", free_port()))
        .replace("127.0.0.1:19091", &format!("127.0.0.1:{port}"));
    let out = run_to_exit(&admin_taken);
    assert_ne!(out.code, Some(0), "{out:?}");
    let want = format!("cannot listen on 127.0.0.1:{port} (admin.addr)");
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

#[test]
fn a_host_name_as_listening_address_says_to_use_an_ip() {
    let dir = config_dir(
        &GATEWAY_OK.replace("127.0.0.1:18443", "localhost:8443"),
        ROUTES_OK,
    );
    let out = check(&dir.join("gateway.toml"));
    assert_ne!(out.code, Some(0), "{out:?}");
    let line = diag_line(&out.stderr, "gateway.toml", 2, "IP address").unwrap_or_else(|| {
        panic!(
            "no gateway.toml:2 error naming an IP address: {}",
            out.stderr
        )
    });
    assert!(line.contains("localhost cannot be used"), "{line}");
}

#[test]
fn token_command_warns_about_an_access_token_valid_for_days() {
    let dir = config_dir(GATEWAY_OK, ROUTES_OK);
    let cfg = dir.join("gateway.toml");
    let cfg = cfg.to_str().expect("utf-8");
    let out = run_cli(&["token", "--config", cfg, "--sub", "alice", "--ttl", "90d"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("warning: this access token is valid for 90 days"),
        "{}",
        out.stderr
    );
    let day = run_cli(&["token", "--config", cfg, "--sub", "alice", "--ttl", "1d"]);
    assert!(!day.stderr.contains("warning"), "{}", day.stderr);
}

#[test]
fn a_malformed_hsts_value_is_a_config_error_with_its_position() {
    let gateway = GATEWAY_OK.replace(
        "tls_key = \"key.pem\"\n",
        "tls_key = \"key.pem\"\nhsts = \"includeSubDomains\"\n",
    );
    let dir = config_dir(&gateway, ROUTES_OK);
    let out = check(&dir.join("gateway.toml"));
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        diag_line(&out.stderr, "gateway.toml", 5, "max-age=SECONDS").is_some(),
        "{}",
        out.stderr
    );
}

#[test]
fn check_token_and_explain_work_on_a_fresh_clone_before_the_first_run() {
    let clone = TestDir::new();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    std::fs::create_dir_all(clone.join("config")).expect("config dir");
    std::fs::create_dir_all(clone.join("certs")).expect("certs dir");
    for entry in std::fs::read_dir(&samples).expect("config/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a file name");
        std::fs::copy(&path, clone.join("config").join(name)).expect("copy a sample");
    }
    let check = run_cli_in(clone.path(), &["check"]);
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(clone.join("certs/dev-cert.pem").exists(), "{check:?}");
    let token = run_cli_in(
        clone.path(),
        &["token", "--sub", "alice", "--role", "admin"],
    );
    assert_eq!(token.code, Some(0), "{token:?}");
    assert_eq!(token.stdout.trim().split('.').count(), 3, "{token:?}");
    let explain = run_cli_in(clone.path(), &["explain", "GET", "/public/x"]);
    assert_eq!(explain.code, Some(0), "{explain:?}");
}
