//! A compact JWS taken apart once: three segments, each base64url-decoded once into one
//! buffer that belongs to this verification alone, and the signature checked over the
//! signing input before any payload JSON is read.
//!
//! jsonwebtoken's `decode_header` + `decode` decoded and parsed the header three times and
//! the payload twice, and made an HMAC key from the secret on every call; for HS256 that was
//! most of the cost around a sub-microsecond MAC (issue 19 target 4). The checks are the
//! same: the header is still parsed as jsonwebtoken's `Header` (an unknown alg, "none"
//! included, a non-string extra member or a repeated field is malformed), and the
//! signature is checked by aws-lc-rs (HMAC compared in constant time) or by jsonwebtoken.

use std::borrow::Cow;
use std::ops::Range;

use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;

use super::{b64url, TokenError};
use crate::token::keys::VerifyKey;

/// What the header says about the key, before anything is authenticated.
pub(super) struct KeyHint<'h> {
    /// The header's `alg`.
    pub alg: Algorithm,
    /// The header's `kid`, if any.
    pub kid: Option<Cow<'h, str>>,
    /// Whether the header names critical extensions.
    pub crit: bool,
    /// Whether it has members beyond jsonwebtoken's plain fields (extras or a jwk): then
    /// only a full scan can rule out a repeated member.
    pub extras: bool,
}

/// The plain header shape: `alg`, then optionally `kid` and `typ` as strings without escapes
/// (or null, as `Header` allows); anything else fails here and is parsed as `Header`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainHeader<'h> {
    alg: Algorithm,
    kid: Option<&'h str>,
    /// Read only so that a non-string typ is left to `Header` to judge.
    #[serde(rename = "typ")]
    _typ: Option<&'h str>,
}

/// The three segments of a compact JWS, and their decoded bytes.
pub(super) struct Compact<'t> {
    /// `header.payload`: what the signature covers.
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// Decoded header, then payload, then signature; never shared with another token.
    buf: Vec<u8>,
    header: Range<usize>,
    payload_range: Range<usize>,
}

impl<'t> Compact<'t> {
    /// Splits `token` into exactly three segments and decodes the header; anything else is
    /// malformed.
    pub(super) fn split(token: &'t str) -> Result<Compact<'t>, TokenError> {
        // Exactly two dots, found by one vectorized scan (str::split went byte by byte).
        let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
        let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
            return Err(TokenError::Malformed);
        };
        // A dot is ASCII, so each slice ends on a character boundary.
        let (header, payload, signature) = (
            &token[..first],
            &token[first + 1..second],
            &token[second + 1..],
        );
        let signing_input = &token[..second];
        // Every 4 base64 characters decode to at most 3 bytes.
        let capacity = (header.len() + payload.len() + signature.len()).div_ceil(4) * 3 + 6;
        let mut compact = Compact {
            signing_input,
            payload,
            signature,
            buf: Vec::with_capacity(capacity),
            header: 0..0,
            payload_range: 0..0,
        };
        compact.header = compact.decode(header).ok_or(TokenError::Malformed)?;
        Ok(compact)
    }

    /// The decoded header JSON.
    pub(super) fn header_json(&self) -> &[u8] {
        &self.buf[self.header.clone()]
    }

    /// The header, read as jsonwebtoken's `Header` reads it; unauthenticated until
    /// [`Self::check`].
    ///
    /// A header of only `alg`, `kid` and `typ` (what every token minted here has) is read
    /// into borrowed fields, without the allocations of `Header` and its flattened extras;
    /// whatever that shape refuses (any other member, a repeat, an escape in a string, not
    /// an object) is parsed as `Header`, so exactly the same headers are refused.
    pub(super) fn header(&self) -> Result<KeyHint<'_>, TokenError> {
        let json = self.header_json();
        // serde reads a struct from a JSON array too; `Header` (flattened) only from an object.
        // Text checked as UTF-8 once spares serde_json checking every string again.
        let text = std::str::from_utf8(json)
            .ok()
            .filter(|t| t.trim_ascii_start().starts_with('{'));
        if let Some(text) = text {
            if let Ok(plain) = serde_json::from_str::<PlainHeader>(text) {
                let kid = plain.kid.map(Cow::Borrowed);
                let (crit, extras) = (false, false);
                return Ok(KeyHint {
                    alg: plain.alg,
                    kid,
                    crit,
                    extras,
                });
            }
        }
        let header: Header = serde_json::from_slice(json).map_err(|_| TokenError::Malformed)?;
        Ok(KeyHint {
            alg: header.alg,
            kid: header.kid.map(Cow::Owned),
            crit: header.crit.is_some(),
            extras: !header.extras.is_empty() || header.jwk.is_some(),
        })
    }

    /// Checks the signature with `key` (its pinned alg, which the header was held to).
    /// Base64 that does not decode is malformed; a signature that does not verify is bad.
    pub(super) fn check(&mut self, key: &VerifyKey) -> Result<(), TokenError> {
        let message = self.signing_input.as_bytes();
        let Some(mac) = &key.mac else {
            return match jsonwebtoken::crypto::verify(
                self.signature,
                message,
                &key.key,
                key.alg.jwt(),
            ) {
                Ok(true) => Ok(()),
                Ok(false) => Err(TokenError::BadSignature),
                Err(_) => Err(TokenError::Malformed),
            };
        };
        let signature = self.decode(self.signature).ok_or(TokenError::Malformed)?;
        // aws-lc-rs compares the tags in constant time.
        aws_lc_rs::hmac::verify(mac, message, &self.buf[signature])
            .map_err(|_| TokenError::BadSignature)
    }

    /// Decodes the payload; call only after [`Self::check`] succeeded.
    pub(super) fn decode_payload(&mut self) -> Result<(), TokenError> {
        self.payload_range = self.decode(self.payload).ok_or(TokenError::Malformed)?;
        Ok(())
    }

    /// The payload JSON [`Self::decode_payload`] decoded (empty before).
    pub(super) fn payload_json(&self) -> &[u8] {
        &self.buf[self.payload_range.clone()]
    }

    /// Appends the decoded `segment` to the buffer and returns where it landed.
    fn decode(&mut self, segment: &str) -> Option<Range<usize>> {
        let start = self.buf.len();
        b64url::decode_into(segment.as_bytes(), &mut self.buf).then_some(start..self.buf.len())
    }
}
