//! Raw files -> typed runtime values, with every cross-field check and all errors at once.

use std::path::Path;
use std::sync::Arc;

use http::HeaderName;
use toml::Spanned;

use super::compile_routes::AssertionKey;
use super::diag::ConfigErrors;
use super::raw::{self, GatewayFile};
use super::read::{parse_file, read_bytes, resolve, Diag};
use super::Source;
use crate::config::snapshot::{ListenSettings, Snapshot, TokenLifetimes};
use crate::forward::headers::IdentityHeaders;
use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_FIELDS};
use crate::token::keys::{KeyMaterial, KeyRing, KeySpec};
use crate::token::verify::Expectations;

/// A loaded configuration: the snapshot, the fixed listener settings and warnings.
#[derive(Debug)]
pub struct Loaded {
    /// What the request path reads.
    pub snapshot: Snapshot,
    /// Listener addresses and limits.
    pub listen: ListenSettings,
    /// The user store, loaded and checked, or the Redis one App::start opens.
    pub users: super::compile_auth::UsersChoice,
    /// The revocation store to open.
    pub store: super::compile_auth::StoreSettings,
    /// Password hashing pool size and queue.
    pub hashing: (usize, usize),
    /// Failed-login limits.
    pub throttle: crate::throttle::Limits,
    /// Things that work but are probably mistakes (shadowed routes).
    pub warnings: Vec<String>,
}

/// Loads gateway.toml and the files it names, validating everything.
pub fn load(source: &Source) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let gateway_path = source.gateway_path();
    let base = source.base_dir();
    let Some((text, file)) = parse_file::<GatewayFile>(source, &gateway_path, &mut errors) else {
        // Still check the routes file, so the operator sees every error in one pass.
        if let Some(routes_file) = routes_file_of_broken(source, &gateway_path) {
            let path = resolve(&base, &routes_file);
            let (key, read_timeout) = (AssertionKey::Unknown, raw::DEFAULT_READ_TIMEOUT);
            super::compile_routes::load_routes(source, &path, key, read_timeout, &mut errors);
        }
        return Err(ConfigErrors(errors));
    };
    let mut diag = Diag {
        file: &gateway_path,
        source: &text,
        errors: &mut errors,
    };
    let tls = load_tls(&mut diag, &base, &file.listen);
    let keys = load_keys(&mut diag, &base, &file);
    let identity = identity_headers(&mut diag, &file.identity);
    check_tokens(&mut diag, &file.tokens);
    let listen = listen_settings(&mut diag, &base, &file);
    let trusted_proxies = trusted_proxies(&mut diag, &file.listen);
    let hsts = super::compile_edge::hsts(&mut diag, &file.listen);
    let login = super::compile_auth::login_side(&mut diag, &base, &file);
    let issuers = crate::config::compile_issuers::issuers(
        &mut diag,
        &file.issuers,
        file.tokens.issuer.get_ref(),
    );
    let assertion = super::compile_assertion::load(&mut diag, &base, &file, keys.as_ref());
    let assertion_key = match (&file.assertion, &assertion) {
        (None, _) => AssertionKey::Missing,
        (Some(_), Some(signer)) => AssertionKey::Loaded(signer, file.tokens.audience.get_ref()),
        (Some(_), None) => AssertionKey::Unknown,
    };
    let read_timeout = super::compile_routes::read_timeout(&mut diag, &file.proxy.read_timeout);
    let routes_path = resolve(&base, &file.routes.file);
    // A bad default is already reported; the routes are still checked against some value.
    let default_read_timeout = read_timeout.unwrap_or(raw::DEFAULT_READ_TIMEOUT);
    let routes = super::compile_routes::load_routes(
        source,
        &routes_path,
        assertion_key,
        default_read_timeout,
        &mut errors,
    );
    let (
        Some(tls),
        Some(keys),
        Some(identity),
        Some(listen),
        Some(login),
        Some(issuers),
        Some((routes, warnings)),
        Ok(hsts),
    ) = (tls, keys, identity, listen, login, issuers, routes, hsts)
    else {
        return Err(ConfigErrors(errors));
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let tokens = file.tokens;
    let snapshot = Snapshot {
        routes,
        expect: Expectations {
            issuer: tokens.issuer.into_inner(),
            audience: tokens.audience.into_inner(),
            leeway_secs: tokens.leeway.get().as_secs(),
        },
        lifetimes: TokenLifetimes {
            access: tokens.access_ttl.get(),
            refresh: tokens.refresh_ttl.get(),
        },
        jwks: super::compile_assertion::jwks(&keys, assertion.as_deref()),
        keys,
        identity,
        tls,
        auth: login.auth,
        trusted_proxies,
        hsts,
        issuers,
    };
    Ok(Loaded {
        snapshot,
        listen,
        users: login.users,
        store: login.store,
        hashing: login.hashing,
        throttle: login.throttle,
        warnings,
    })
}

/// `routes.file` of a gateway.toml that is valid TOML but failed validation.
fn routes_file_of_broken(source: &Source, gateway_path: &Path) -> Option<String> {
    let text = source.read(gateway_path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table
        .get("routes")?
        .get("file")?
        .as_str()
        .map(str::to_owned)
}

fn load_tls(
    diag: &mut Diag<'_>,
    base: &Path,
    listen: &raw::Listen,
) -> Option<Arc<rustls::ServerConfig>> {
    let cert = read_bytes(diag, base, &listen.tls_cert, "TLS certificate");
    let key = read_bytes(diag, base, &listen.tls_key, "TLS key");
    let (cert, key) = (cert?, key?);
    match crate::config::tls::server_config(&cert, &key) {
        Ok(config) => Some(config),
        Err(err) => {
            diag.at(listen.tls_cert.span(), err.to_string());
            None
        }
    }
}

fn listen_settings(diag: &mut Diag<'_>, base: &Path, file: &GatewayFile) -> Option<ListenSettings> {
    let listen = &file.listen;
    let mut ok = true;
    let header_bytes = *listen.max_header_bytes.get_ref();
    if !(8192..=MAX_HEADER_BYTES).contains(&header_bytes) {
        diag.at(
            listen.max_header_bytes.span(),
            format!("max_header_bytes = {header_bytes} is out of range (expected 8192 to {MAX_HEADER_BYTES})"),
        );
        ok = false;
    }
    let header_fields = *listen.max_header_fields.get_ref();
    if !(10..=MAX_HEADER_FIELDS).contains(&header_fields) {
        diag.at(
            listen.max_header_fields.span(),
            format!("max_header_fields = {header_fields} is out of range (expected 10 to {MAX_HEADER_FIELDS})"),
        );
        ok = false;
    }
    if *listen.max_connections.get_ref() == 0 {
        diag.at(
            listen.max_connections.span(),
            "max_connections must be at least 1",
        );
        ok = false;
    }
    ok.then(|| ListenSettings {
        addr: listen.addr,
        plain_addr: listen.plain_addr,
        admin_addr: file.admin.as_ref().map(|a| a.addr),
        header_timeout: listen.header_timeout.get(),
        idle_timeout: listen.idle_timeout.get(),
        max_header_bytes: header_bytes,
        max_header_fields: header_fields,
        max_connections: *listen.max_connections.get_ref(),
        shutdown_grace: listen.shutdown_grace.get(),
        tls_cert: resolve(base, listen.tls_cert.get_ref()),
    })
}

fn trusted_proxies(
    diag: &mut Diag<'_>,
    listen: &raw::Listen,
) -> Vec<crate::forward::proxies::Cidr> {
    let mut ranges = Vec::new();
    for text in &listen.trusted_proxies {
        match crate::forward::proxies::Cidr::parse(text.get_ref()) {
            Ok(range) => ranges.push(range),
            Err(message) => diag.at(text.span(), message),
        }
    }
    ranges
}

fn check_tokens(diag: &mut Diag<'_>, tokens: &raw::Tokens) {
    for (field, value) in [("issuer", &tokens.issuer), ("audience", &tokens.audience)] {
        if value.get_ref().trim().is_empty() {
            diag.at(value.span(), format!("{field} must not be empty"));
        }
    }
}

fn load_keys(diag: &mut Diag<'_>, base: &Path, file: &GatewayFile) -> Option<KeyRing> {
    let mut specs = Vec::new();
    let mut ok = true;
    for key in &file.keys {
        match key_material(diag, base, key) {
            Some(material) => specs.push(KeySpec {
                kid: key.get_ref().kid.clone(),
                alg: key.get_ref().alg,
                material,
                verify_only: key.get_ref().verify_only,
            }),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let signing = &file.tokens.signing_kid;
    match KeyRing::new(specs, signing.get_ref()) {
        Ok(ring) => Some(ring),
        Err(key_errors) => {
            for err in key_errors {
                let span = file
                    .keys
                    .iter()
                    .find(|k| k.get_ref().kid == err.kid)
                    .map_or_else(|| signing.span(), |k| k.span());
                diag.at(span, err.message);
            }
            None
        }
    }
}

fn key_material(diag: &mut Diag<'_>, base: &Path, key: &Spanned<raw::Key>) -> Option<KeyMaterial> {
    let k = key.get_ref();
    let given = [&k.private_key, &k.public_key, &k.secret_env, &k.secret_file];
    if given.iter().filter(|f| f.is_some()).count() != 1 {
        diag.at(key.span(), format!("key \"{}\": expected exactly one of private_key, public_key, secret_env, secret_file", k.kid));
        return None;
    }
    if let Some(path) = &k.private_key {
        return read_bytes(diag, base, path, "private key").map(KeyMaterial::PrivatePem);
    }
    if let Some(path) = &k.public_key {
        return read_bytes(diag, base, path, "public key").map(KeyMaterial::PublicPem);
    }
    if let Some(path) = &k.secret_file {
        let mut secret = read_bytes(diag, base, path, "secret file")?;
        while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            secret.pop();
        }
        return Some(KeyMaterial::Secret(secret));
    }
    let var = k.secret_env.as_ref()?;
    match std::env::var(var.get_ref()) {
        Ok(secret) if !secret.is_empty() => Some(KeyMaterial::Secret(secret.into_bytes())),
        _ => {
            diag.at(
                var.span(),
                format!(
                    "environment variable {} is not set or empty (expected the HMAC secret)",
                    var.get_ref()
                ),
            );
            None
        }
    }
}

fn header_name(diag: &mut Diag<'_>, value: &Spanned<String>) -> Option<HeaderName> {
    match HeaderName::from_bytes(value.get_ref().as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            diag.at(
                value.span(),
                format!("\"{}\" is not a valid header name", value.get_ref()),
            );
            None
        }
    }
}

fn identity_headers(diag: &mut Diag<'_>, identity: &raw::Identity) -> Option<IdentityHeaders> {
    let user = header_name(diag, &identity.user);
    let roles = header_name(diag, &identity.roles);
    let assertion = header_name(diag, &identity.assertion);
    let mut claims = Vec::new();
    for (claim, header) in &identity.claims {
        claims.push((claim.clone(), header_name(diag, header)?));
    }
    let mut named: Vec<&Spanned<String>> =
        vec![&identity.user, &identity.roles, &identity.assertion];
    named.extend(identity.claims.values());
    let names_ok = identity_names_distinct_and_free(diag, &named);
    let prefix = identity.strip_prefix.get_ref();
    let prefix_ok = prefix.len() >= 2 && HeaderName::from_bytes(prefix.as_bytes()).is_ok();
    if !prefix_ok {
        diag.at(identity.strip_prefix.span(), "strip_prefix must be a header-name prefix of at least 2 characters, such as \"X-Auth-\"");
    }
    let strip_prefix = prefix
        .bytes()
        .map(|b| {
            if b == b'_' || b == b'.' {
                '-'
            } else {
                char::from(b.to_ascii_lowercase())
            }
        })
        .collect();
    Some(IdentityHeaders {
        user: user?,
        roles: roles?,
        claims,
        strip_prefix,
        forward_authorization: identity.forward_authorization,
        assertion: assertion?,
    })
    .filter(|_| prefix_ok && names_ok)
}

/// Headers an identity header may not be named after: the gateway sets, strips or relies
/// on these itself, so a claim there would be dropped or would overwrite them.
const RESERVED_HEADERS: [&str; 20] = [
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "expect",
    "forwarded",
    "host",
    "keep-alive",
    "proxy",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-request-id",
];

/// Each identity header name once (folding case, `_` and `.` as upstream frameworks do),
/// none reserved; a duplicate would let a claim value overwrite `X-Auth-User`.
fn identity_names_distinct_and_free(diag: &mut Diag<'_>, named: &[&Spanned<String>]) -> bool {
    let fold = |name: &str| -> String {
        name.bytes()
            .map(|b| match b {
                b'_' | b'.' => '-',
                b => char::from(b.to_ascii_lowercase()),
            })
            .collect()
    };
    let mut ok = true;
    for (i, name) in named.iter().enumerate() {
        let folded = fold(name.get_ref());
        if RESERVED_HEADERS.contains(&folded.as_str()) {
            diag.at(name.span(), format!("\"{}\" is a header the gateway manages; expected another name for an identity header", name.get_ref()));
            ok = false;
        } else if named[..i]
            .iter()
            .any(|earlier| fold(earlier.get_ref()) == folded)
        {
            diag.at(
                name.span(),
                format!(
                    "identity header \"{}\" is used twice (expected one header per identity value)",
                    name.get_ref()
                ),
            );
            ok = false;
        }
    }
    ok
}
