//! `[[issuers]]` as written -> [`Issuer`]s, with every error reported at its line.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use toml::Spanned;

use crate::config::raw;
use crate::config::read::Diag;
use crate::issuers::fetch::{fetch_uri, Live};
use crate::issuers::jwks::AlgSet;
use crate::issuers::{Issuer, Issuers, JwksSource};

/// Compiles every `[[issuers]]` entry; `own_issuer` is the gateway's `[tokens] issuer`.
pub(crate) fn issuers(
    diag: &mut Diag<'_>,
    entries: &[Spanned<raw::Issuer>],
    own_issuer: &str,
) -> Option<Issuers> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.get_ref().issuer.get_ref();
        let duplicate = entries[..i]
            .iter()
            .any(|e| e.get_ref().issuer.get_ref() == name);
        if duplicate {
            diag.at(
                entry.get_ref().issuer.span(),
                format!("issuer {name:?} is configured twice"),
            );
            ok = false;
            continue;
        }
        match issuer(diag, entry, own_issuer) {
            Some(issuer) => out.push(Arc::new(issuer)),
            None => ok = false,
        }
    }
    ok.then_some(Issuers(out))
}

fn issuer(diag: &mut Diag<'_>, entry: &Spanned<raw::Issuer>, own: &str) -> Option<Issuer> {
    let raw = entry.get_ref();
    let mut ok = true;
    let name = raw.issuer.get_ref();
    if name.trim().is_empty() {
        diag.at(raw.issuer.span(), "issuer must not be empty");
        ok = false;
    } else if name == own {
        // The gateway's own tokens (refresh tokens included) must keep their own checks.
        diag.at(
            raw.issuer.span(),
            format!("issuer {name:?} is the gateway's own [tokens] issuer"),
        );
        ok = false;
    }
    if raw.audience.get_ref().trim().is_empty() {
        diag.at(raw.audience.span(), "audience must not be empty");
        ok = false;
    }
    let source = source(diag, entry);
    let algorithms = algorithms(diag, &raw.algorithms);
    let roles_claim = roles_claim(diag, &raw.roles_claim);
    let (refresh_min, refresh_max) = (raw.refresh_min.get(), raw.refresh_max.get());
    if refresh_min < Duration::from_secs(1) || refresh_min > refresh_max {
        diag.at(
            entry.span(),
            format!("issuer {name:?}: expected 1s <= refresh_min <= refresh_max"),
        );
        ok = false;
    }
    let fetch_timeout = raw.fetch_timeout.get();
    if fetch_timeout.is_zero() {
        diag.at(
            entry.span(),
            format!("issuer {name:?}: fetch_timeout must be more than 0"),
        );
        ok = false;
    }
    let (source, algorithms, roles_claim) = (source?, algorithms?, roles_claim?);
    ok.then(|| Issuer {
        issuer: name.clone(),
        audience: raw.audience.get_ref().clone(),
        algorithms,
        roles_claim,
        source,
        refresh_min,
        refresh_max,
        unknown_kid_refetch: raw.unknown_kid_refetch.get(),
        fetch_timeout,
        live: Live::new(Arc::default()),
    })
}

/// Exactly one of jwks_url, discovery_url, and a URL the fetcher may use.
fn source(diag: &mut Diag<'_>, entry: &Spanned<raw::Issuer>) -> Option<JwksSource> {
    let raw = entry.get_ref();
    let (url, make): (&Spanned<String>, fn(Uri) -> JwksSource) =
        match (&raw.jwks_url, &raw.discovery_url) {
            (Some(url), None) => (url, JwksSource::Jwks),
            (None, Some(url)) => (url, JwksSource::Discovery),
            _ => {
                diag.at(
                    entry.span(),
                    format!(
                        "issuer {:?}: expected exactly one of jwks_url, discovery_url",
                        raw.issuer.get_ref()
                    ),
                );
                return None;
            }
        };
    match fetch_uri(url.get_ref()) {
        Ok(uri) => Some(make(uri)),
        Err(message) => {
            diag.at(url.span(), message);
            None
        }
    }
}

pub(crate) fn algorithms(
    diag: &mut Diag<'_>,
    algs: &Spanned<Vec<crate::token::Alg>>,
) -> Option<AlgSet> {
    if algs.get_ref().is_empty() {
        diag.at(algs.span(), "algorithms must name at least one algorithm");
        return None;
    }
    if let Some(hmac) = algs.get_ref().iter().find(|a| a.is_hmac()) {
        // A provider's keys are public; accepting HMAC would let anyone holding one sign.
        diag.at(
            algs.span(),
            format!("{hmac} is not allowed for an external issuer (expected RS256, PS256, ES256, ES384 or EdDSA)"),
        );
        return None;
    }
    Some(AlgSet::of(algs.get_ref()))
}

pub(crate) fn roles_claim(diag: &mut Diag<'_>, claim: &Spanned<String>) -> Option<Vec<String>> {
    let segments: Vec<String> = claim.get_ref().split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        diag.at(
            claim.span(),
            format!(
                "roles_claim {:?} is not a dotted claim path (expected e.g. \"realm_access.roles\" or \"groups\")",
                claim.get_ref()
            ),
        );
        return None;
    }
    Some(segments)
}

#[cfg(test)]
mod tests;
