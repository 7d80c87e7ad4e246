//! Recovery codes: ten one-time codes for when the authenticator app is gone, shown once,
//! stored only as keyed digests (`SealKey::recovery_digest`).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// How many codes a set holds.
pub const SET_SIZE: usize = 10;

/// Letters and digits of a code: RFC 4648 base32, lowercase, so no 0/o or 1/l confusion.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Characters of a code without its dash: 10 x 5 bits = 50 bits.
const CODE_CHARS: usize = 10;

/// A new set of codes as shown to the person: `xxxxx-xxxxx`.
pub fn new_set() -> Result<Vec<String>, &'static str> {
    let mut bytes = [0u8; SET_SIZE * CODE_CHARS];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random generator failed")?;
    Ok(bytes
        .chunks(CODE_CHARS)
        .map(|chunk| {
            let chars: String = chunk
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect())
}

/// A typed code in its canonical form (lowercase, no dash or spaces), or None when it
/// cannot be a recovery code (a six-digit TOTP code, for one).
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = code.len() == CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::sealed::SealKey;

    #[test]
    fn a_set_is_ten_distinct_codes_that_normalize_and_digest_per_user() {
        let set = new_set().unwrap_or_default();
        assert_eq!(set.len(), SET_SIZE);
        let mut unique = set.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), SET_SIZE);
        let code = &set[0];
        assert_eq!(code.len(), 11);
        assert_eq!(normalize(code), Some(code.replace('-', "")));
        assert_eq!(
            normalize(&format!(" {} ", code.to_uppercase())),
            normalize(code)
        );
        assert_eq!(normalize("123456"), None);
        assert_eq!(normalize("abcde-fghi1"), None, "1 is not in the alphabet");
        let key = SealKey::from_text("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        let key = key.unwrap_or_else(|e| panic!("{e}"));
        let canonical = normalize(code).unwrap_or_default();
        let digest = key.recovery_digest("alice", &canonical);
        assert!(crate::users::sealed::looks_like_digest(&digest), "{digest}");
        assert_ne!(digest, key.recovery_digest("bob", &canonical));
        assert!(!digest.contains(&canonical));
    }
}
