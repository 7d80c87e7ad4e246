//! The authorization code flow's two legs: the URL the browser is sent to, and the code
//! exchanged for an ID token that is checked (OpenID Connect Core 1.0, 3.1.3.7) before it
//! names a person.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde_json::{Map, Value};

use super::{send, Client, Endpoints, Provider};
use crate::issuers::fetch;
use crate::issuers::verify::{verify_external_with, Subject};
use crate::token::verify::TokenError;
use crate::token::Claims;

/// A PKCE pair (RFC 7636): the verifier stays with the gateway, the S256 challenge goes out.
pub struct Pkce {
    /// 64 unreserved characters.
    pub verifier: String,
}

impl Pkce {
    /// A fresh random verifier.
    pub fn new() -> Pkce {
        let verifier = format!(
            "{}{}",
            crate::token::mint::new_id(),
            crate::token::mint::new_id()
        );
        Pkce { verifier }
    }

    /// BASE64URL(SHA256(verifier)).
    pub fn challenge(verifier: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// Who the provider says signed in, checked.
#[derive(Debug)]
pub struct Person {
    /// The provider's `sub`.
    pub sub: String,
    /// Roles from the provider's roles claim.
    pub roles: Vec<String>,
    /// The claims the gateway carries into its tokens: email, name, preferred_username.
    pub claims: Map<String, Value>,
    /// The provider's `amr`.
    pub amr: Vec<String>,
    /// The provider's `auth_time`.
    pub auth_time: Option<u64>,
    /// The provider's session id (`sid`), when it sends a usable one: a back-channel
    /// logout may name only it.
    pub sid: Option<String>,
}

/// Longest provider `sid` kept.
const MAX_SID: usize = 255;

/// A `sid` the gateway can keep and look up: visible ASCII, 1 to 255 bytes.
pub fn usable_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.len() <= MAX_SID && sid.bytes().all(|b| b.is_ascii_graphic())
}

/// The claims an ID token may pass on into the gateway's tokens.
const CARRIED: [&str; 3] = ["email", "name", "preferred_username"];

impl Provider {
    /// The authorization request URL (code flow, PKCE S256, state and nonce).
    pub fn authorization_url(
        &self,
        endpoints: &Endpoints,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &Pkce::challenge(verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let joiner = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{joiner}{query}", endpoints.authorization)
    }

    /// Exchanges `code` at the token endpoint; the ID token it answers with, unverified.
    pub async fn exchange(
        &self,
        client: &Client,
        endpoints: &Endpoints,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
            error: Option<String>,
        }
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let request = http::Request::post(endpoints.token.clone()).header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        // The serializer is not Send: it is done with before the await.
        let (request, form) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(fields);
            let request = self.authenticate(endpoints, request, &mut form)?;
            (request, form.finish())
        };
        let body = Full::new(Bytes::from(form));
        let read = tokio::time::timeout(self.keys.fetch_timeout, send(client, request, body)).await;
        let (status, body) = read.unwrap_or_else(|_| Err("token endpoint timed out".into()))?;
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| format!("token endpoint answered {status} with no token response"))?;
        match (status, answer.id_token, answer.error) {
            (StatusCode::OK, Some(id_token), None) => Ok(id_token),
            // The provider's error code only: its description may echo what was sent.
            (_, _, Some(error)) => Err(format!("token endpoint refused: {}", printable(&error))),
            _ => Err("token endpoint answered without an id_token".into()),
        }
    }

    /// Verifies an ID token with the provider's keys (fetched again once for a kid not yet
    /// known: the provider may have just rotated) and checks it names a person for us.
    pub async fn person(
        &self,
        jwks_client: &fetch::Client,
        id_token: &str,
        nonce: &str,
        leeway: u64,
        now: u64,
    ) -> Result<Person, String> {
        let claims = self
            .verify_token(jwks_client, id_token, leeway, now, Subject::Required)
            .await?;
        self.check_id_token(claims, nonce)
    }

    /// A token signed by the provider, for this client, in date; its keys are fetched again
    /// once for a kid not yet known (the provider may have just rotated).
    pub(super) async fn verify_token(
        &self,
        jwks_client: &fetch::Client,
        token: &str,
        leeway: u64,
        now: u64,
        subject: Subject,
    ) -> Result<Claims, String> {
        let verify = || verify_external_with(&self.keys, token, leeway, now, subject);
        let verified = match verify() {
            Err(TokenError::UnknownKid) => {
                fetch::refresh(&self.keys, jwks_client).await;
                verify()
            }
            other => other,
        };
        verified.map_err(|e| format!("token refused: {e}"))
    }

    /// The checks an access token does not need: nonce, azp, iat, allowed domains.
    fn check_id_token(&self, claims: Claims, nonce: &str) -> Result<Person, String> {
        let extra = &claims.extra;
        let sent_nonce = extra.get("nonce").and_then(Value::as_str);
        let same = |n: &str| {
            aws_lc_rs::constant_time::verify_slices_are_equal(n.as_bytes(), nonce.as_bytes())
                .is_ok()
        };
        if !sent_nonce.is_some_and(same) {
            return Err("ID token refused: nonce does not match this sign-in".into());
        }
        // Core 3.1.3.7 (4, 5): with several audiences azp is needed, and must be us.
        let azp = extra.get("azp").and_then(Value::as_str);
        let several = matches!(&claims.aud, crate::token::Audience::Many(list) if list.len() > 1);
        if azp.is_some_and(|a| a != self.client_id) || (several && azp.is_none()) {
            return Err("ID token refused: azp is not this client".into());
        }
        if claims.iat == 0 {
            return Err("ID token refused: no iat".into());
        }
        if !self.allowed_domains.is_empty() && !self.domain_allowed(extra) {
            return Err("email domain not allowed".into());
        }
        let carried = CARRIED
            .iter()
            .filter_map(|name| Some((name.to_string(), extra.get(*name)?.clone())))
            .filter(|(_, value)| value.is_string())
            .collect();
        Ok(Person {
            sub: claims.sub,
            roles: claims.roles,
            claims: carried,
            amr: claims.amr,
            auth_time: claims.auth_time,
            sid: extra
                .get("sid")
                .and_then(Value::as_str)
                .filter(|sid| usable_sid(sid))
                .map(str::to_string),
        })
    }

    /// A verified email whose domain is one of `allowed_domains`.
    fn domain_allowed(&self, extra: &Map<String, Value>) -> bool {
        let verified = extra.get("email_verified") == Some(&Value::Bool(true));
        let email = extra
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        verified && domain.is_some_and(|d| self.allowed_domains.contains(&d))
    }
}

/// An error code as logged and shown: letters, digits and `_` only, at most 64.
pub fn printable(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{json, Map, Value};

    use super::super::{Credential, Provider, ProviderFields, Secret};
    use super::Pkce;
    use crate::issuers::fetch::Live;
    use crate::issuers::jwks::AlgSet;
    use crate::issuers::{Issuer, JwksSource};
    use crate::token::{Audience, Claims, TokenType};

    #[test]
    fn the_s256_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            Pkce::challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::new().verifier;
        assert!((43..=128).contains(&fresh.len()), "{fresh}");
    }

    fn provider(domains: &[&str]) -> Provider {
        let keys = Issuer {
            issuer: "https://id.example".into(),
            audience: "gw".into(),
            algorithms: AlgSet::of(&[crate::token::Alg::RS256]),
            roles_claim: vec!["roles".into()],
            source: JwksSource::Jwks("https://id.example/jwks".parse().expect("uri")),
            refresh_min: Duration::from_secs(60),
            refresh_max: Duration::from_secs(60),
            unknown_kid_refetch: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(5),
            live: Live::new(Arc::default()),
        };
        let fields = ProviderFields {
            id: "corp".into(),
            title: "Corp".into(),
            client_id: "gw".into(),
            credential: Credential::Secret(Secret("s".into())),
            scopes: "openid".into(),
            client_auth: None,
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
            post_logout: None,
        };
        Provider::new(fields, Arc::new(keys))
    }

    fn claims(aud: Audience, extra: Value) -> Claims {
        let Value::Object(extra) = extra else {
            panic!("extra is an object")
        };
        Claims {
            iss: "https://id.example".into(),
            aud,
            sub: "alice".into(),
            iat: 1,
            nbf: 0,
            exp: 2,
            jti: String::new(),
            roles: vec!["staff".into()],
            typ: TokenType::Access,
            fam: None,
            amr: vec!["pwd".into()],
            auth_time: Some(1),
            idp: None,
            extra,
        }
    }

    #[test]
    fn the_id_token_must_carry_this_sign_ins_nonce_and_be_for_this_client() {
        let p = provider(&[]);
        let one = || Audience::One("gw".into());
        let ok = p.check_id_token(
            claims(
                one(),
                json!({"nonce": "n1", "email": "a@x.example", "sid": "s"}),
            ),
            "n1",
        );
        let person = ok.expect("accepted");
        assert_eq!(person.sub, "alice");
        assert_eq!(person.roles, vec!["staff".to_string()]);
        let mut carried = Map::new();
        carried.insert("email".into(), json!("a@x.example"));
        assert_eq!(person.claims, carried, "only the carried claims");
        for (aud, extra) in [
            (one(), json!({"nonce": "n2"})),
            (one(), json!({})),
            (one(), json!({"nonce": "n1", "azp": "other"})),
            (
                Audience::Many(vec!["gw".into(), "other".into()]),
                json!({"nonce": "n1"}),
            ),
        ] {
            let refused = p.check_id_token(claims(aud, extra.clone()), "n1");
            assert!(refused.is_err(), "{extra}");
        }
    }

    #[test]
    fn allowed_domains_need_a_verified_email_in_one_of_them() {
        let p = provider(&["example.com"]);
        let check = |extra: Value| {
            p.check_id_token(claims(Audience::One("gw".into()), extra), "n")
                .is_ok()
        };
        assert!(check(
            json!({"nonce": "n", "email": "a@Example.com", "email_verified": true})
        ));
        assert!(!check(json!({"nonce": "n", "email": "a@example.com"})));
        assert!(!check(
            json!({"nonce": "n", "email": "a@example.com", "email_verified": "true"})
        ));
        assert!(!check(
            json!({"nonce": "n", "email": "a@evil.example.com", "email_verified": true})
        ));
        assert!(!check(json!({"nonce": "n", "email_verified": true})));
    }
}
