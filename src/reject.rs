//! Every refusal the gateway makes, and the one place that turns it into a response.

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::path::PathError;
use crate::policy::{Deny, StepUp};
use crate::token::verify::TokenError;

/// Why a request is answered by the gateway instead of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The path is malformed or tries a trick (400).
    BadPath(PathError),
    /// The request itself is malformed (400).
    BadRequest(&'static str),
    /// No route matches (404).
    NoRoute,
    /// The bearer token is missing or invalid (401).
    Token(TokenError),
    /// The token is good but the policy says no (403).
    Forbidden(Deny),
    /// The token is good but its sign-in falls short of the route's demand (401, RFC 9470).
    StepUp(StepUp),
    /// Refused for a reason that is not the token's: a CSRF check, a caller (403).
    Refused(&'static str),
    /// The upstream refused or dropped the connection (502).
    UpstreamUnavailable,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// A gateway endpoint's request body did not arrive in time (408).
    BodyTimeout,
    /// The token was revoked (401).
    Revoked,
    /// A gateway endpoint was called with the wrong method (405).
    MethodNotAllowed,
    /// A gateway endpoint got a body that is not JSON (415).
    UnsupportedMediaType,
    /// A gateway endpoint got a body over its limit (413).
    PayloadTooLarge,
    /// The request head is over `max_header_bytes` or `max_header_fields` (431).
    HeadTooLarge(&'static str),
    /// Login failed: unknown user, wrong password or disabled user, one answer for all (401).
    BadCredentials,
    /// The password was right, the user has a second factor and no code came (401).
    MfaRequired,
    /// The one-time code was wrong, expired or spent already (401).
    BadOtp(&'static str),
    /// Too many failed logins; retry after this many seconds (429).
    Throttled(u64),
    /// A spent refresh token was presented again: its family is revoked (401).
    RefreshReuse,
    /// The token family rotated too often; retry after this many seconds (429).
    RefreshThrottled(u64),
    /// The user behind a refresh token is disabled or gone (401).
    UserGone,
    /// Registration: the name is taken (409).
    Taken,
    /// The configuration cannot do this (501): a password change with the http user store.
    NotSupported(&'static str),
    /// A dependency (user store, revocation store, hash pool) cannot answer now (503).
    Unavailable(&'static str),
    /// Something that should not fail did; details are in the log (500).
    Internal,
}

/// Why an authorization was denied, as /metrics counts it: one variant per label, so that
/// rewording a message cannot move its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No token was sent.
    MissingToken,
    /// The token is not a well-formed JWT.
    MalformedToken,
    /// The token's header names no key.
    MissingKid,
    /// The token names a key the gateway does not know.
    UnknownKid,
    /// The token's alg is not its key's.
    AlgMismatch,
    /// The signature does not verify.
    BadSignature,
    /// Past exp.
    Expired,
    /// Before nbf.
    NotYetValid,
    /// iat later than now and the leeway.
    IssuedInFuture,
    /// Another iss.
    WrongIssuer,
    /// aud does not name the gateway.
    WrongAudience,
    /// A refresh token used as an access token, or the reverse.
    WrongType,
    /// A required claim is absent.
    MissingClaim,
    /// The token, its subject or its family was revoked.
    Revoked,
    /// The token holds a role the route refuses.
    ForbiddenRole,
    /// The token lacks a role the route needs.
    MissingRole,
    /// The token lacks a scope the route needs.
    MissingScope,
    /// A claim the route pins has another value.
    ClaimMismatch,
    /// The sign-in lacks a second factor, a method, a provider or recency the route demands.
    InsufficientAuthn,
    /// The revocation store could not answer.
    StoreUnavailable,
    /// Anything else (a CSRF check, for one).
    Other,
}

impl DenyReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [DenyReason; 21] = [
        DenyReason::MissingToken,
        DenyReason::MalformedToken,
        DenyReason::MissingKid,
        DenyReason::UnknownKid,
        DenyReason::AlgMismatch,
        DenyReason::BadSignature,
        DenyReason::Expired,
        DenyReason::NotYetValid,
        DenyReason::IssuedInFuture,
        DenyReason::WrongIssuer,
        DenyReason::WrongAudience,
        DenyReason::WrongType,
        DenyReason::MissingClaim,
        DenyReason::Revoked,
        DenyReason::ForbiddenRole,
        DenyReason::MissingRole,
        DenyReason::MissingScope,
        DenyReason::ClaimMismatch,
        DenyReason::InsufficientAuthn,
        DenyReason::StoreUnavailable,
        DenyReason::Other,
    ];

    /// The `reason` label of `portcullis_auth_decisions_total`.
    pub fn label(self) -> &'static str {
        match self {
            DenyReason::MissingToken => "missing bearer token",
            DenyReason::MalformedToken => "malformed token",
            DenyReason::MissingKid => "token has no kid",
            DenyReason::UnknownKid => "unknown key id",
            DenyReason::AlgMismatch => "algorithm does not match the key",
            DenyReason::BadSignature => "bad signature",
            DenyReason::Expired => "token expired",
            DenyReason::NotYetValid => "token not yet valid",
            DenyReason::IssuedInFuture => "token issued in the future",
            DenyReason::WrongIssuer => "wrong issuer",
            DenyReason::WrongAudience => "wrong audience",
            DenyReason::WrongType => "wrong token type",
            DenyReason::MissingClaim => "missing claim",
            DenyReason::Revoked => "token revoked",
            DenyReason::ForbiddenRole => "forbidden role",
            DenyReason::MissingRole => "missing role",
            DenyReason::MissingScope => "missing scope",
            DenyReason::ClaimMismatch => "claim mismatch",
            DenyReason::InsufficientAuthn => "insufficient user authentication",
            DenyReason::StoreUnavailable => "revocation store unavailable",
            DenyReason::Other => "other",
        }
    }

    fn of_token(err: TokenError) -> DenyReason {
        match err {
            TokenError::Missing => DenyReason::MissingToken,
            TokenError::Malformed => DenyReason::MalformedToken,
            TokenError::MissingKid => DenyReason::MissingKid,
            TokenError::UnknownKid => DenyReason::UnknownKid,
            TokenError::AlgMismatch => DenyReason::AlgMismatch,
            TokenError::BadSignature => DenyReason::BadSignature,
            TokenError::Expired => DenyReason::Expired,
            TokenError::NotYetValid => DenyReason::NotYetValid,
            TokenError::IssuedInFuture => DenyReason::IssuedInFuture,
            TokenError::WrongIssuer => DenyReason::WrongIssuer,
            TokenError::WrongAudience => DenyReason::WrongAudience,
            TokenError::WrongType => DenyReason::WrongType,
            TokenError::MissingClaim(_) => DenyReason::MissingClaim,
        }
    }

    fn of_policy(deny: Deny) -> DenyReason {
        match deny {
            Deny::ForbiddenRole => DenyReason::ForbiddenRole,
            Deny::MissingRole => DenyReason::MissingRole,
            Deny::MissingScope => DenyReason::MissingScope,
            Deny::ClaimMismatch => DenyReason::ClaimMismatch,
        }
    }
}

/// The realm named in every `WWW-Authenticate` challenge.
const REALM: &str = "portcullis";

impl Reject {
    /// HTTP status for this refusal.
    pub fn status(self) -> StatusCode {
        match self {
            Reject::BadPath(_) | Reject::BadRequest(_) => StatusCode::BAD_REQUEST,
            Reject::NoRoute => StatusCode::NOT_FOUND,
            Reject::Token(_) | Reject::StepUp(_) => StatusCode::UNAUTHORIZED,
            Reject::Forbidden(_) | Reject::Refused(_) => StatusCode::FORBIDDEN,
            Reject::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Reject::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Reject::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reject::Revoked
            | Reject::BadCredentials
            | Reject::RefreshReuse
            | Reject::UserGone
            | Reject::MfaRequired
            | Reject::BadOtp(_) => StatusCode::UNAUTHORIZED,
            Reject::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reject::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reject::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::HeadTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reject::Throttled(_) | Reject::RefreshThrottled(_) => StatusCode::TOO_MANY_REQUESTS,
            Reject::Taken => StatusCode::CONFLICT,
            Reject::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            Reject::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Reject::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` member of the JSON body (RFC 6750 codes where they apply).
    pub fn code(self) -> &'static str {
        match self {
            Reject::BadPath(_) | Reject::BadRequest(_) => "invalid_request",
            Reject::NoRoute => "not_found",
            Reject::Token(TokenError::Missing) => "missing_token",
            Reject::Token(_) => "invalid_token",
            Reject::Forbidden(_) => "insufficient_scope",
            Reject::StepUp(_) => "insufficient_user_authentication",
            Reject::Refused(_) => "access_denied",
            Reject::UpstreamUnavailable => "bad_gateway",
            Reject::UpstreamTimeout => "gateway_timeout",
            Reject::BodyTimeout => "request_timeout",
            Reject::Revoked => "invalid_token",
            Reject::MethodNotAllowed => "method_not_allowed",
            Reject::UnsupportedMediaType => "unsupported_media_type",
            Reject::PayloadTooLarge => "payload_too_large",
            Reject::HeadTooLarge(_) => "request_header_fields_too_large",
            Reject::BadCredentials => "invalid_credentials",
            Reject::MfaRequired => "mfa_required",
            Reject::BadOtp(_) => "invalid_otp",
            Reject::Throttled(_) => "too_many_attempts",
            Reject::RefreshThrottled(_) => "too_many_requests",
            Reject::RefreshReuse | Reject::UserGone => "invalid_grant",
            Reject::Taken => "conflict",
            Reject::NotSupported(_) => "not_supported",
            Reject::Unavailable(_) => "unavailable",
            Reject::Internal => "internal_error",
        }
    }

    /// The /metrics label of a refused authorization.
    pub fn deny_reason(self) -> DenyReason {
        match self {
            Reject::Token(err) => DenyReason::of_token(err),
            Reject::Forbidden(deny) => DenyReason::of_policy(deny),
            Reject::StepUp(_) => DenyReason::InsufficientAuthn,
            Reject::Revoked => DenyReason::Revoked,
            Reject::Unavailable(_) => DenyReason::StoreUnavailable,
            _ => DenyReason::Other,
        }
    }

    /// The human reason: for the client and the audit log. Never holds input.
    pub fn reason(self) -> &'static str {
        match self {
            Reject::BadPath(e) => e.reason(),
            Reject::BadRequest(reason) => reason,
            Reject::NoRoute => "no route matches the request",
            Reject::Token(e) => e.reason(),
            Reject::Forbidden(d) => d.reason(),
            Reject::StepUp(step_up) => step_up.reason(),
            Reject::Refused(reason) => reason,
            Reject::UpstreamUnavailable => "upstream unavailable",
            Reject::UpstreamTimeout => "upstream timed out",
            Reject::BodyTimeout => "request body not received in time",
            Reject::Revoked => "token revoked",
            Reject::MethodNotAllowed => "method not allowed",
            Reject::UnsupportedMediaType => "expected Content-Type: application/json",
            Reject::PayloadTooLarge => "request body too large",
            Reject::HeadTooLarge(reason) => reason,
            Reject::BadCredentials => "invalid username or password",
            Reject::MfaRequired => "a second factor is required: send the one-time code as \"otp\"",
            Reject::BadOtp(reason) => reason,
            Reject::Throttled(_) => "too many failed attempts, retry later",
            Reject::RefreshThrottled(_) => "too many refreshes for this session, retry later",
            Reject::RefreshReuse => "refresh token reuse detected; the session is revoked",
            Reject::UserGone => "user is disabled or no longer exists",
            Reject::Taken => "username is taken",
            Reject::NotSupported(reason) => reason,
            Reject::Unavailable(reason) => reason,
            Reject::Internal => "internal error",
        }
    }

    /// The RFC 6750 challenge, for 401 and 403 only.
    fn challenge(self) -> Option<String> {
        match self {
            // RFC 6750 3.1: no error code when the request carried no credentials.
            Reject::Token(TokenError::Missing) => Some(format!("Bearer realm=\"{REALM}\"")),
            // RFC 9110 15.5.2: every 401 carries a challenge.
            Reject::BadCredentials
            | Reject::RefreshReuse
            | Reject::UserGone
            | Reject::MfaRequired
            | Reject::BadOtp(_) => Some(format!("Bearer realm=\"{REALM}\"")),
            Reject::Token(_) | Reject::Revoked | Reject::Forbidden(_) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\"",
                self.code(),
                self.reason()
            )),
            Reject::StepUp(step_up) => Some(step_up_challenge(step_up)),
            _ => None,
        }
    }
}

/// RFC 9470 section 3: what the client must come back with, as `acr_values` (the RFC 8176
/// method names the route accepts) and `max_age` (seconds).
fn step_up_challenge(step_up: StepUp) -> String {
    let mut challenge = format!(
        "Bearer realm=\"{REALM}\", error=\"insufficient_user_authentication\", \
         error_description=\"{}\"",
        step_up.reason()
    );
    if !step_up.acr_values.is_empty() {
        let names: Vec<&str> = step_up.acr_values.names().collect();
        challenge.push_str(&format!(", acr_values=\"{}\"", names.join(" ")));
    }
    if let Some(max_age) = step_up.max_age {
        challenge.push_str(&format!(", max_age=\"{max_age}\""));
    }
    challenge
}

/// Builds the response for a refusal: status, challenge and a JSON body.
pub fn respond(reject: Reject) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "error": reject.code(),
        "error_description": reject.reason(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = reject.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match reject {
        Reject::Throttled(secs) | Reject::RefreshThrottled(secs) => {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        Reject::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Reject::MethodNotAllowed => {
            headers.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        _ => {}
    }
    if let Some(challenge) = reject.challenge() {
        // Built only from static strings, so it is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_reasons_index_their_own_table_with_distinct_labels() {
        for (i, reason) in DenyReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?} out of order in ALL");
        }
        let mut labels: Vec<_> = DenyReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DenyReason::ALL.len());
    }

    #[test]
    fn a_refusal_counts_under_the_reason_it_gives() {
        for reject in [
            Reject::Token(TokenError::Expired),
            Reject::Forbidden(Deny::MissingRole),
            Reject::Revoked,
            Reject::Unavailable("revocation store unavailable"),
        ] {
            assert_eq!(reject.deny_reason().label(), reject.reason());
        }
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let resp = respond(Reject::Token(TokenError::Missing));
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"portcullis\""
        );
    }

    #[test]
    fn invalid_token_challenge_names_the_reason() {
        let resp = respond(Reject::Token(TokenError::Expired));
        let challenge = resp.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains("token expired"), "{challenge}");
    }

    #[test]
    fn forbidden_is_insufficient_scope() {
        let resp = respond(Reject::Forbidden(Deny::MissingRole));
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let challenge = resp.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or_default();
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
    }

    #[test]
    fn step_up_is_the_rfc_9470_challenge_with_what_would_pass() {
        use crate::policy::{AmrSet, Shortfall};
        let step_up = StepUp {
            shortfall: Shortfall::SecondFactor,
            acr_values: AmrSet::parse(["mfa", "hwk"]).unwrap(),
            max_age: Some(900),
        };
        let resp = respond(Reject::StepUp(step_up));
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"portcullis\", error=\"insufficient_user_authentication\", \
             error_description=\"this route needs a sign-in with a second factor\", \
             acr_values=\"hwk mfa\", max_age=\"900\""
        );
        let age_only = StepUp {
            shortfall: Shortfall::TooOld,
            acr_values: AmrSet::default(),
            max_age: Some(60),
        };
        let challenge = respond(Reject::StepUp(age_only)).headers()[WWW_AUTHENTICATE].clone();
        let challenge = challenge.to_str().unwrap_or_default();
        assert!(!challenge.contains("acr_values"), "{challenge}");
        assert!(challenge.ends_with("max_age=\"60\""), "{challenge}");
    }

    #[test]
    fn throttled_carries_retry_after() {
        let resp = respond(Reject::Throttled(42));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "42");
    }

    #[test]
    fn revoked_token_is_an_invalid_token_challenge() {
        let resp = respond(Reject::Revoked);
        let challenge = resp.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or_default();
        assert!(challenge.contains("token revoked"), "{challenge}");
    }

    #[test]
    fn upstream_faults_have_no_challenge() {
        let resp = respond(Reject::UpstreamUnavailable);
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert!(resp.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
