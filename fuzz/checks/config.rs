//! The config loader on arbitrary gateway.toml and routes.toml text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use http::Method;

use portcullis::config::{load, Source, DEFAULT_ROUTES_TOML};

/// A directory with generated TLS and signing material, laid out like the repository
/// (`config/` beside `certs/`), so the sample files load as they are.
///
/// Made once under `target/` and then shared: it is built beside and renamed into place, so
/// parallel runs never see it half written and no directory is left behind per process.
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-config");
        if !base.join("config").exists() {
            let building = base.with_extension(std::process::id().to_string());
            write_material(&building);
            if std::fs::rename(&building, &base).is_err() {
                // Another process got there first; use its directory.
                let _ = std::fs::remove_dir_all(&building);
            }
        }
        base
    })
}

fn write_material(dir: &Path) {
    portcullis::tools::devcerts::ensure_dev_material(&dir.join("certs")).expect("dev material");
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    let users = include_str!("../../config/users.toml");
    std::fs::write(dir.join("config/users.toml"), users).expect("users.toml");
}

/// `gateway.toml` text, a NUL, then `routes.toml` text (the sample routes when absent).
pub fn config(data: &[u8]) {
    let (gateway, routes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, DEFAULT_ROUTES_TOML.as_bytes()),
    };
    let dir = base_dir().join("config");
    let source = Source::Inline {
        dir: dir.clone(),
        gateway: String::from_utf8_lossy(gateway).into_owned(),
        routes: String::from_utf8_lossy(routes).into_owned(),
    };
    let first = load(&source);
    match &first {
        Ok(loaded) => {
            check_loaded(&source, loaded);
        }
        Err(errors) => check_errors(&source, &errors.0),
    }
    // Same text, same answer: no error order that depends on hashing or the clock.
    let again = load(&source);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.warnings, b.warnings),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("two loads of the same text disagree"),
    }
}

/// Every error names a file and, when it has a position, one inside that file's text.
fn check_errors(source: &Source, errors: &[portcullis::config::ConfigError]) {
    assert!(!errors.is_empty(), "refused without a reason");
    for err in errors {
        assert!(!err.message.trim().is_empty(), "empty message: {err:?}");
        let Some((line, col)) = err.position else {
            continue;
        };
        let Ok(text) = source.read(&err.file) else {
            continue;
        };
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(line >= 1 && line <= lines.len(), "line out of range: {err}");
        let width = lines[line - 1].chars().count();
        assert!(col >= 1 && col <= width + 1, "column out of range: {err}");
        assert!(err.to_string().starts_with(&err.file.display().to_string()));
    }
}

/// A loaded config holds every route of routes.toml, and each one is reachable unless an
/// earlier route takes its requests.
fn check_loaded(source: &Source, loaded: &portcullis::config::Loaded) {
    let routes_text = source.read(&source.base_dir().join("routes.toml"));
    let table = &loaded.snapshot.routes;
    let file = routes_text.map(|text| toml::from_str::<portcullis::config::raw::RoutesFile>(&text));
    if let Ok(Ok(file)) = file {
        assert_eq!(file.routes.len(), table.len(), "routes lost in compilation");
    }
    for index in 0..table.len() {
        let Some(matcher) = table.matcher(index) else {
            panic!("rule {index} has no matcher");
        };
        let segments: Vec<&str> = matcher
            .pattern
            .as_str()
            .split('/')
            .filter(|s| !s.is_empty() && *s != "**")
            .map(|s| if s == "*" { "x" } else { s })
            .collect();
        let path = format!("/{}", segments.join("/"));
        let method = matcher
            .methods
            .as_ref()
            .and_then(|m| m.first().cloned())
            .unwrap_or(Method::GET);
        let found = table.find(matcher.host.as_deref(), &method, &path);
        assert!(
            found.is_some_and(|(i, _)| i <= index),
            "route {index} ({}) unreachable for {path:?}: {:?}",
            matcher.pattern.as_str(),
            found.map(|(i, _)| i)
        );
    }
}
