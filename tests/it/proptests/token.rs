//! Property tests for token verification: no alteration of a minted token gets through.

use proptest::prelude::*;

use portcullis::token::verify::{verify, TokenError};
use portcullis::token::{Claims, TokenType, ALL_ALGS};

use crate::fuzz_checks::token::{minted, NOW};

/// Only errors from before the claims are trusted: the signature never checked out.
fn refused_unauthenticated(result: Result<Claims, TokenError>) -> bool {
    matches!(
        result,
        Err(TokenError::Malformed
            | TokenError::MissingKid
            | TokenError::UnknownKid
            | TokenError::AlgMismatch
            | TokenError::BadSignature)
    )
}

#[test]
fn every_byte_of_every_alg_matters() {
    for alg in ALL_ALGS {
        let (ring, token, expect) = minted(alg);
        assert!(verify(ring, expect, token, TokenType::Access, NOW).is_ok());
        for at in 0..token.len() {
            let mut bytes = token.as_bytes().to_vec();
            // Stay inside the base64url alphabet, so the change is not caught by parsing alone.
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).expect("ascii");
            let result = verify(ring, expect, &altered, TokenType::Access, NOW);
            assert!(refused_unauthenticated(result), "{alg} byte {at}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_token_altered_in_any_byte_never_verifies(
        alg in prop::sample::select(ALL_ALGS.to_vec()),
        at in any::<prop::sample::Index>(),
        byte in 0u8..0x80,
    ) {
        let (ring, token, expect) = minted(alg);
        let at = at.index(token.len());
        prop_assume!(token.as_bytes()[at] != byte);
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = byte;
        let altered = String::from_utf8(bytes).expect("ascii");
        let result = verify(ring, expect, &altered, TokenType::Access, NOW);
        prop_assert!(refused_unauthenticated(result), "{} byte {} -> {:?}", alg, at, byte);
    }

    #[test]
    fn a_token_cut_or_extended_never_verifies(
        alg in prop::sample::select(ALL_ALGS.to_vec()),
        cut in any::<prop::sample::Index>(),
        extra in "[A-Za-z0-9_.-]{0,3}",
    ) {
        let (ring, token, expect) = minted(alg);
        let altered = format!("{}{extra}", &token[..cut.index(token.len())]);
        prop_assume!(altered != token);
        let result = verify(ring, expect, &altered, TokenType::Access, NOW);
        prop_assert!(refused_unauthenticated(result), "{} {:?}", alg, altered);
    }
}
