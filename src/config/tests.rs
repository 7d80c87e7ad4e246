//! Config validation from inline TOML written to a temp dir with generated key material.

use std::path::Path;

use super::test_support::{write_material, GATEWAY};
use super::{load, Source, DEFAULT_GATEWAY_TOML, DEFAULT_ROUTES_TOML};

const ROUTES: &str = r#"
[upstreams.api]
url = "http://127.0.0.1:9"
[[routes]]
path = "/api/**"
upstream = "api"
"#;

/// Loads gateway/routes text; returns the error lines or the warnings.
fn try_load(gateway: &str, routes: &str) -> Result<Vec<String>, Vec<String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    write_material(dir.path());
    std::fs::write(dir.path().join("gateway.toml"), gateway).expect("write gateway");
    std::fs::write(dir.path().join("routes.toml"), routes).expect("write routes");
    let strip = |s: String| s.replace(&format!("{}/", dir.path().display()), "");
    load(&Source::File(dir.path().join("gateway.toml")))
        .map(|loaded| loaded.warnings.into_iter().map(strip).collect())
        .map_err(|errors| errors.0.iter().map(|e| strip(e.to_string())).collect())
}

fn errors(gateway: &str, routes: &str) -> Vec<String> {
    try_load(gateway, routes).expect_err("config should be refused")
}

#[test]
fn minimal_config_loads() {
    assert_eq!(try_load(GATEWAY, ROUTES), Ok(vec![]));
}

#[test]
fn sample_files_are_the_embedded_default_and_load() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let on_disk =
        std::fs::read_to_string(samples.join("gateway.toml")).expect("sample gateway.toml");
    assert_eq!(on_disk, DEFAULT_GATEWAY_TOML);
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("config");
    crate::tools::devcerts::ensure_dev_material(&dir.path().join("certs")).expect("dev material");
    let loaded = load(&Source::Embedded(config_dir));
    let loaded = loaded.unwrap_or_else(|e| panic!("embedded default must load:\n{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.snapshot.routes.len(),
        DEFAULT_ROUTES_TOML.matches("[[routes]]").count()
    );
}

#[test]
fn unknown_key_is_an_error_with_line_and_column() {
    let gateway = GATEWAY.replace("[tokens]", "[tokens]\nisuer = \"typo\"");
    let errs = errors(&gateway, ROUTES);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("gateway.toml:7:1: unknown field `isuer`"),
        "{errs:?}"
    );
}

#[test]
fn unknown_upstream_names_the_choices() {
    let routes = ROUTES.replace("upstream = \"api\"", "upstream = \"apii\"");
    let errs = errors(GATEWAY, &routes);
    assert_eq!(
        errs,
        vec!["routes.toml:6:12: unknown upstream \"apii\" (expected one of: api)"]
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let gateway = GATEWAY.replace(
        "private_key = \"main.pem\"",
        "private_key = \"missing.pem\"",
    );
    let routes = ROUTES
        .replace("/api/**", "/api/**/x")
        .replace("\"api\"\n", "\"nope\"\n");
    let errs = errors(&gateway, &routes);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("gateway.toml:13:15: cannot read private key"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("routes.toml:5:8: invalid path \"/api/**/x\""),
        "{errs:?}"
    );
    assert!(errs[2].contains("unknown upstream \"nope\""), "{errs:?}");
}

#[test]
fn bad_durations_and_addresses_are_type_errors_with_positions() {
    let routes = ROUTES.replace(
        "url = \"http://127.0.0.1:9\"",
        "url = \"http://127.0.0.1:9\"\ntimeout = \"30 seconds\"",
    );
    let errs = errors(GATEWAY, &routes);
    assert!(
        errs[0].starts_with("routes.toml:4:11: invalid duration"),
        "{errs:?}"
    );
    let gateway = GATEWAY.replace("127.0.0.1:0", "localhost");
    assert!(errors(&gateway, ROUTES)[0].starts_with("gateway.toml:3:8:"));
}

#[test]
fn route_checks_roles_methods_host_and_public_with_roles() {
    let routes = format!(
        "{ROUTES}\n{}",
        r#"[[routes]]
path = "/a/**"
upstream = "api"
roles_any = []
[[routes]]
path = "/b/**"
upstream = "api"
methods = ["get"]
[[routes]]
path = "/c/**"
upstream = "api"
host = "api.example.com:443"
[[routes]]
path = "/d/**"
upstream = "api"
auth = "none"
roles_all = ["admin"]
"#
    );
    let errs = errors(GATEWAY, &routes);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[0].contains("roles_any must list at least one"),
        "{errs:?}"
    );
    assert!(errs[1].contains("invalid method \"get\""), "{errs:?}");
    assert!(errs[2].contains("invalid host"), "{errs:?}");
    assert!(
        errs[3].contains("auth = \"none\" cannot be combined"),
        "{errs:?}"
    );
}

#[test]
fn shadowed_route_is_a_warning_not_an_error() {
    let routes = format!("{ROUTES}\n[[routes]]\npath = \"/api/admin/*\"\nupstream = \"api\"\n");
    let warnings = try_load(GATEWAY, &routes).expect("shadowing is allowed");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("routes.toml:9:8: route \"/api/admin/*\" can never match"),
        "{warnings:?}"
    );
}

#[test]
fn hmac_key_needs_a_set_environment_variable() {
    let gateway = GATEWAY.replace(
        "[routes]",
        "[[keys]]\nkid = \"h\"\nalg = \"HS256\"\nsecret_env = \"PORTCULLIS_TEST_UNSET_SECRET\"\n[routes]",
    );
    let errs = errors(&gateway, ROUTES);
    assert!(
        errs[0].contains("PORTCULLIS_TEST_UNSET_SECRET is not set"),
        "{errs:?}"
    );
}

#[test]
fn key_with_two_sources_is_refused() {
    let gateway = GATEWAY.replace(
        "private_key = \"main.pem\"",
        "private_key = \"main.pem\"\nsecret_file = \"main.pem\"",
    );
    let errs = errors(&gateway, ROUTES);
    assert!(
        errs.iter().any(|e| e.contains("expected exactly one of")),
        "{errs:?}"
    );
}

#[test]
fn routes_are_checked_even_when_gateway_toml_is_invalid() {
    let gateway = GATEWAY.replace("[tokens]", "[tokens]\nbogus = 1");
    let routes = ROUTES.replace("upstream = \"api\"", "upstream = \"apii\"");
    let errs = errors(&gateway, &routes);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("gateway.toml:7:1: unknown field `bogus`"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("routes.toml:6:12: unknown upstream"),
        "{errs:?}"
    );
}

#[test]
fn identity_headers_must_be_distinct_and_not_reserved() {
    let gateway = format!(
        "{GATEWAY}\n[identity]\nroles = \"x_auth.user\"\n[identity.claims]\ntenant = \"Transfer-Encoding\"\n"
    );
    let errs = errors(&gateway, ROUTES);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("\"x_auth.user\" is used twice")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("\"Transfer-Encoding\" is a header the gateway manages")),
        "{errs:?}"
    );
}

#[test]
fn a_key_path_that_is_not_a_regular_file_is_refused_not_read() {
    // /dev/zero would never end; a directory or FIFO is no key either.
    let gateway = GATEWAY.replace("private_key = \"main.pem\"", "private_key = \"/dev/zero\"");
    let errs = errors(&gateway, ROUTES);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("cannot read private key /dev/zero: not a regular file"),
        "{errs:?}"
    );
}

#[test]
fn forward_auth_cannot_take_a_gateway_endpoint_path() {
    for taken in ["/auth/login", "/auth/password", "/.well-known/jwks.json"] {
        let gateway = format!(
            "{GATEWAY}\n[forward_auth]\nenabled = true\ntrust = \"nginx\"\npath = \"{taken}\"\n"
        );
        let errs = errors(&gateway, ROUTES);
        assert!(
            errs.iter().any(|e| e.contains("invalid forward_auth.path")),
            "{taken}: {errs:?}"
        );
    }
}

#[test]
fn a_sentinel_store_loads_with_its_password_from_a_file_and_bad_ones_are_placed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, "hunter2\n").expect("write password");
    let store = |extra: &str| {
        format!(
            "{GATEWAY}\n[store]\nbackend = \"redis\"\n\
             redis_url = \"redis+sentinel://app@127.0.0.1:1,127.0.0.1:2/mymaster\"\n{extra}"
        )
    };
    let file = format!("password_file = \"{}\"", secret.display());
    assert_eq!(try_load(&store(&file), ROUTES), Ok(vec![]));
    let missing = errors(&store("password_file = \"nowhere\""), ROUTES);
    assert!(
        missing[0].contains("cannot read password_file"),
        "{missing:?}"
    );
    let both = errors(&store(&format!("{file}\npassword_env = \"X\"")), ROUTES);
    assert!(
        both[0].contains("at most one of password_file, password_env"),
        "{both:?}"
    );
    let unset = errors(
        &store("password_env = \"PORTCULLIS_TEST_UNSET_VAR\""),
        ROUTES,
    );
    assert!(
        unset[0].contains("PORTCULLIS_TEST_UNSET_VAR is not set"),
        "{unset:?}"
    );
    let bad_url = store("").replace("/mymaster", "");
    let bad = errors(&bad_url, ROUTES);
    assert!(
        bad[0].contains("gateway.toml:") && bad[0].contains("/master_name"),
        "{bad:?}"
    );
    assert!(
        !bad[0].contains("127.0.0.1:1"),
        "the URL is not echoed: {bad:?}"
    );
}

#[test]
fn a_cluster_store_loads_and_a_prefix_that_cannot_be_a_hash_tag_is_placed() {
    let store = |extra: &str| {
        format!(
            "{GATEWAY}\n[store]\nbackend = \"redis\"\n\
             redis_url = \"redis+cluster://127.0.0.1:7001,127.0.0.1:7002\"\n{extra}"
        )
    };
    assert_eq!(try_load(&store(""), ROUTES), Ok(vec![]));
    for prefix in ["", "a{b}:", "x}"] {
        let errs = errors(&store(&format!("prefix = \"{prefix}\"")), ROUTES);
        assert!(
            errs[0].contains("gateway.toml:") && errs[0].contains("hash tag"),
            "{prefix:?}: {errs:?}"
        );
    }
    let db = errors(&store("").replace("7002\"", "7002/1\""), ROUTES);
    assert!(db[0].contains("names no database"), "{db:?}");
}

#[test]
fn a_store_ping_interval_under_100ms_is_refused_at_its_line() {
    let store = |every: &str| format!("{GATEWAY}\n[store]\nping_interval = \"{every}\"\n");
    assert_eq!(try_load(&store("200ms"), ROUTES), Ok(vec![]));
    let text = store("50ms");
    let line = text
        .lines()
        .position(|l| l.starts_with("ping_interval"))
        .unwrap()
        + 1;
    let errs = errors(&text, ROUTES);
    assert!(
        errs[0].starts_with(&format!(
            "gateway.toml:{line}:17: store.ping_interval must be at least 100ms"
        )),
        "{errs:?}"
    );
}

#[test]
fn a_login_window_under_a_second_is_refused_at_its_line() {
    let login = |window: &str| format!("{GATEWAY}\n[login]\nwindow = \"{window}\"\n");
    assert_eq!(try_load(&login("1s"), ROUTES), Ok(vec![]));
    let text = login("500ms");
    let line = text.lines().position(|l| l.starts_with("window")).unwrap() + 1;
    let errs = errors(&text, ROUTES);
    assert!(
        errs[0].starts_with(&format!(
            "gateway.toml:{line}:10: login.window must be at least 1s"
        )),
        "{errs:?}"
    );
}
