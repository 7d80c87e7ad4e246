//! routes.toml -> the compiled route table, with shadowed-route warnings.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use toml::Spanned;

use super::compile_policy::route_policy;
use super::diag::ConfigError;
use super::duration::HumanDuration;
use super::raw::{self, RoutesFile};
use super::read::{parse_file, Diag};
use super::Source;
use crate::assertion::{RouteAssertion, Signer};
use crate::config::snapshot::Route;
use crate::forward::upstream::Upstream;
use crate::route::{Matcher, Pattern, Table};

/// What gateway.toml says about assertions, for upstreams with `assertion = true`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AssertionKey<'a> {
    /// gateway.toml or its `[assertion]` key failed to load: already reported, check nothing.
    Unknown,
    /// No `[assertion]` section.
    Missing,
    /// The loaded key, and the gateway's token audience (no upstream may be named so).
    Loaded(&'a Arc<Signer>, &'a str),
}

/// Loads routes.toml; returns the table and the shadowing warnings. `read_timeout` is the
/// gateway's default for routes that set none.
pub(crate) fn load_routes(
    source: &Source,
    path: &Path,
    assertion: AssertionKey<'_>,
    read_timeout: Duration,
    errors: &mut Vec<ConfigError>,
) -> Option<(Table<Route>, Vec<String>)> {
    let (text, file) = parse_file::<RoutesFile>(source, path, errors)?;
    let mut diag = Diag {
        file: path,
        source: &text,
        errors,
    };
    let upstreams = build_upstreams(&mut diag, &file.upstreams);
    let (assertions, mut ok) = upstream_assertions(&mut diag, &file.upstreams, assertion);
    let mut rules = Vec::new();
    let mut spans = Vec::new();
    for route in &file.routes {
        let wants = assertions.get(route.upstream.get_ref()).cloned();
        let compiled = compile_route(
            &mut diag,
            route,
            (&upstreams, &file.upstreams),
            wants,
            read_timeout,
        );
        match compiled {
            Some(rule) => {
                rules.push(rule);
                spans.push(route.path.span());
            }
            None => ok = false,
        }
    }
    if !ok || upstreams.len() != file.upstreams.len() {
        return None;
    }
    let warnings = shadow_warnings(&diag, &rules, &spans);
    Some((Table::new(rules), warnings))
}

fn build_upstreams(
    diag: &mut Diag<'_>,
    raw: &BTreeMap<String, raw::Upstream>,
) -> BTreeMap<String, Arc<Upstream>> {
    let mut built = BTreeMap::new();
    for (name, up) in raw {
        match Upstream::new(
            name,
            up.url.get_ref(),
            up.connect_timeout.get(),
            up.timeout.get(),
        ) {
            Ok(upstream) => {
                built.insert(name.clone(), Arc::new(upstream));
            }
            Err(err) => diag.at(up.url.span(), format!("upstream \"{name}\": {err}")),
        }
    }
    built
}

/// The assertion settings of every upstream with `assertion = true`, and whether all are ok.
fn upstream_assertions(
    diag: &mut Diag<'_>,
    raw: &BTreeMap<String, raw::Upstream>,
    key: AssertionKey<'_>,
) -> (BTreeMap<String, RouteAssertion>, bool) {
    let mut wanted = BTreeMap::new();
    let mut ok = true;
    for (name, up) in raw {
        let Some(flag) = up.assertion.as_ref().filter(|flag| *flag.get_ref()) else {
            continue;
        };
        match key {
            AssertionKey::Unknown => ok = false,
            AssertionKey::Missing => {
                ok = false;
                diag.at(flag.span(), format!("upstream \"{name}\": assertion = true needs an [assertion] key in gateway.toml (kid, private_key; create one with `portcullis keygen --alg EdDSA --kid assertion-1 --out certs/`)"));
            }
            AssertionKey::Loaded(_, audience) if audience == name => {
                ok = false;
                diag.at(flag.span(), format!("upstream \"{name}\": an upstream with assertion = true may not be named like the gateway's token audience, or an access token would pass its audience check"));
            }
            AssertionKey::Loaded(signer, _) => {
                let assertion = RouteAssertion {
                    signer: signer.clone(),
                    audience: name.as_str().into(),
                };
                wanted.insert(name.clone(), assertion);
            }
        }
    }
    (wanted, ok)
}

/// A read timeout as written, or an error at its span when it is zero.
pub(crate) fn read_timeout(
    diag: &mut Diag<'_>,
    value: &Spanned<HumanDuration>,
) -> Option<Duration> {
    let duration = value.get_ref().get();
    if duration.is_zero() {
        diag.at(
            value.span(),
            "read_timeout must be a duration above zero, such as \"60s\"",
        );
        return None;
    }
    Some(duration)
}

fn compile_route(
    diag: &mut Diag<'_>,
    route: &raw::Route,
    (upstreams, raw_names): (
        &BTreeMap<String, Arc<Upstream>>,
        &BTreeMap<String, raw::Upstream>,
    ),
    assertion: Option<RouteAssertion>,
    default_read_timeout: Duration,
) -> Option<(Matcher, Route)> {
    let pattern = match Pattern::parse(route.path.get_ref()) {
        Ok(pattern) => Some(pattern),
        Err(err) => {
            diag.at(
                route.path.span(),
                format!("invalid path \"{}\": {err}", route.path.get_ref()),
            );
            None
        }
    };
    let host = route_host(diag, route);
    let methods = route_methods(diag, route);
    let upstream = upstreams.get(route.upstream.get_ref()).cloned();
    // An upstream whose URL was refused is already reported; only a missing name is new.
    if !raw_names.contains_key(route.upstream.get_ref()) {
        let names: Vec<&str> = raw_names.keys().map(String::as_str).collect();
        diag.at(
            route.upstream.span(),
            format!(
                "unknown upstream \"{}\" (expected one of: {})",
                route.upstream.get_ref(),
                names.join(", ")
            ),
        );
    }
    let policy = route_policy(diag, route);
    let strip_prefix = route_strip_prefix(diag, route);
    let read_timeout = match &route.read_timeout {
        Some(value) => read_timeout(diag, value),
        None => Some(default_read_timeout),
    };
    let matcher = Matcher {
        host: host?,
        pattern: pattern?,
        methods: methods?,
    };
    let compiled = Route {
        pattern: route.path.get_ref().clone(),
        origin: diag.position(route.path.span()),
        upstream: upstream?,
        policy: policy?,
        strip_prefix: strip_prefix?,
        read_timeout: read_timeout?,
        assertion,
        sign_in: route.sign_in,
        stats: Default::default(),
    };
    Some((matcher, compiled))
}

fn route_host(diag: &mut Diag<'_>, route: &raw::Route) -> Option<Option<String>> {
    let Some(host) = &route.host else {
        return Some(None);
    };
    let text = host.get_ref();
    let valid = !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        diag.at(host.span(), format!("invalid host \"{text}\" (expected a DNS name without port, such as \"api.example.com\")"));
        return None;
    }
    Some(Some(text.to_ascii_lowercase()))
}

fn route_methods(diag: &mut Diag<'_>, route: &raw::Route) -> Option<Option<Vec<Method>>> {
    let Some(methods) = &route.methods else {
        return Some(None);
    };
    if methods.get_ref().is_empty() {
        diag.at(
            methods.span(),
            "methods must not be empty (omit it to allow any method)",
        );
        return None;
    }
    let mut parsed = Vec::new();
    for name in methods.get_ref() {
        let upper = !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase());
        match Method::from_bytes(name.as_bytes()) {
            Ok(method) if upper => parsed.push(method),
            _ => {
                diag.at(
                    methods.span(),
                    format!(
                        "invalid method \"{name}\" (expected an uppercase method name such as GET)"
                    ),
                );
                return None;
            }
        }
    }
    Some(Some(parsed))
}

fn route_strip_prefix(diag: &mut Diag<'_>, route: &raw::Route) -> Option<Option<String>> {
    let Some(prefix) = &route.strip_prefix else {
        return Some(None);
    };
    let text = prefix.get_ref();
    let normalized = crate::path::normalize(text).ok();
    if !text.starts_with('/')
        || normalized.as_deref() != Some(text.as_str())
        || text.contains(['*', '?', '#'])
    {
        diag.at(
            prefix.span(),
            format!(
                "invalid strip_prefix \"{text}\" (expected a normalized path such as \"/admin\")"
            ),
        );
        return None;
    }
    Some(Some(text.trim_end_matches('/').to_string()))
}

fn shadow_warnings(
    diag: &Diag<'_>,
    rules: &[(Matcher, Route)],
    spans: &[std::ops::Range<usize>],
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (later, (matcher, route)) in rules.iter().enumerate() {
        let shadowing = rules[..later]
            .iter()
            .position(|(earlier, _)| earlier.shadows(matcher));
        if let Some(earlier) = shadowing {
            warnings.push(format!(
                "{}: route \"{}\" can never match: route \"{}\" at {} comes first and matches everything it does",
                diag.position(spans[later].clone()),
                route.pattern,
                rules[earlier].1.pattern,
                diag.position(spans[earlier].clone()),
            ));
        }
    }
    warnings
}
