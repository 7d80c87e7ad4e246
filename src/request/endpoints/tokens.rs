//! Minting the access + refresh pair that login and refresh hand out.

use http::StatusCode;
use serde_json::{Map, Value};

use super::body;
use crate::config::snapshot::Snapshot;
use crate::reject::Reject;
use crate::revoke::{Pair, Successor};
use crate::token::mint::{self, Grant};
use crate::token::{fits_roles_header, Authn, TokenType, RESERVED_CLAIMS};
use crate::Body;

/// Who a pair is for.
pub struct Subject<'a> {
    /// `sub`.
    pub name: &'a str,
    /// `roles`.
    pub roles: &'a [String],
    /// Extra claims; registered claim names are dropped, never overridden.
    pub claims: &'a Map<String, Value>,
    /// How the person signed in: `amr`, `auth_time`, `idp`.
    pub authn: &'a Authn,
}

/// Mints an access token and a refresh token of family `fam`, with the ids and issue
/// time `next` fixes.
pub fn issue_pair(
    snap: &Snapshot,
    subject: &Subject<'_>,
    fam: &str,
    next: &Successor,
) -> Result<Pair, Reject> {
    let extra: Map<String, Value> = subject
        .claims
        .iter()
        .filter(|(name, _)| !RESERVED_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let roles = headable_roles(subject);
    let mint_one = |typ, ttl: std::time::Duration, jti: &str| {
        let grant = Grant {
            sub: subject.name,
            roles: &roles,
            extra: extra.clone(),
            typ,
            fam: Some(fam.to_string()),
            ttl_secs: ttl.as_secs(),
            authn: subject.authn.clone(),
        };
        let (issuer, audience) = (&snap.expect.issuer, &snap.expect.audience);
        mint::mint_as(
            &snap.keys,
            issuer,
            audience,
            grant,
            next.iat,
            jti.to_string(),
        )
        .map(|(token, _)| token)
    };
    let (access, refresh) = (&next.access_jti, &next.refresh_jti);
    let minted = mint_one(TokenType::Access, snap.lifetimes.access, access).and_then(|access| {
        let refresh = mint_one(TokenType::Refresh, snap.lifetimes.refresh, refresh)?;
        Ok((access, refresh))
    });
    match minted {
        Ok((access_token, refresh_token)) => Ok(Pair {
            access_token,
            refresh_token,
        }),
        Err(err) => {
            tracing::error!(error = %err, "cannot mint tokens");
            Err(Reject::Internal)
        }
    }
}

/// The subject's roles the roles header can carry: a store (the http one above all) may
/// return "staff,admin", which the upstream would read as two roles. Dropped, as in
/// providers' tokens, and logged: the store's record needs fixing.
fn headable_roles(subject: &Subject<'_>) -> Vec<String> {
    let (kept, dropped): (Vec<String>, Vec<String>) = subject
        .roles
        .iter()
        .cloned()
        .partition(|r| fits_roles_header(r));
    if !dropped.is_empty() {
        tracing::warn!(user = %subject.name, ?dropped, "roles the roles header cannot carry left out of the token");
    }
    kept
}

/// The 200 answer carrying a pair, in OAuth 2.0 token-response shape; in cookie mode
/// the pair (and a fresh CSRF value) is also set as cookies, and the body carries the
/// tokens only when `in_body` (see `cookies::tokens_in_body`): otherwise it says only
/// when the session expires.
pub fn pair_response(snap: &Snapshot, pair: &Pair, in_body: bool) -> http::Response<Body> {
    let mut response = match in_body {
        true => pair_json(snap, pair),
        false => expiry_json(snap),
    };
    if let Some(cookies) = &snap.auth.cookies {
        crate::cookies::set_pair(cookies, response.headers_mut(), pair);
    }
    response
}

fn pair_json(snap: &Snapshot, pair: &Pair) -> http::Response<Body> {
    body::json(
        StatusCode::OK,
        &serde_json::json!({
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": snap.lifetimes.access.as_secs(),
            "refresh_token": pair.refresh_token,
            "refresh_expires_in": snap.lifetimes.refresh.as_secs(),
        }),
    )
}

fn expiry_json(snap: &Snapshot) -> http::Response<Body> {
    body::json(
        StatusCode::OK,
        &serde_json::json!({
            "expires_in": snap.lifetimes.access.as_secs(),
            "refresh_expires_in": snap.lifetimes.refresh.as_secs(),
        }),
    )
}
