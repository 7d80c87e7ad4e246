//! Username and password rules, pure and shared by every user store and the CLI.
//!
//! Usernames are a small documented ASCII set rather than Unicode normalised with NFKC:
//! a fixed set has no confusable look-alikes ("аlice" with a Cyrillic a), needs no
//! Unicode tables, and reads the same in logs, headers and token `sub` claims.

/// The longest username accepted, in characters (all ASCII, so also bytes).
pub const MAX_NAME_CHARS: usize = 64;
/// The shortest password accepted, in characters (not bytes, so non-ASCII counts fairly).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted, in bytes: argon2 cost does not depend on it, but a
/// request body carrying megabytes of "password" is an attack, not a login.
pub const MAX_PASSWORD_BYTES: usize = 1024;

const NAME_RULE: &str = "username must be 1 to 64 characters of a-z, 0-9, '.', '_', '-'";

/// Usernames are 1..=64 chars of `[a-z0-9._-]` after ASCII lowercasing, starting with a
/// letter or digit; compared case-insensitively, so this is the form to store and compare.
pub fn canonical(name: &str) -> Result<String, &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(NAME_RULE);
    }
    let lower = name.to_ascii_lowercase();
    if !lower.bytes().all(is_name_byte) {
        return Err(NAME_RULE);
    }
    if !lower.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("username must start with a letter or a digit");
    }
    Ok(lower)
}

/// Accepts a password of at least 12 characters and at most 1024 bytes that does not
/// contain the username (ignoring ASCII case).
pub fn check_password(name: &str, password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("password must be at least 12 characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("password must be at most 1024 bytes");
    }
    let name = name.to_ascii_lowercase();
    // An empty name is contained in every string; it is rejected by `canonical` anyway.
    if !name.is_empty() && password.to_ascii_lowercase().contains(&name) {
        return Err("password must not contain the username");
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercase_folds_to_lowercase() {
        assert_eq!(
            canonical("Alice.Smith-2_x"),
            Ok("alice.smith-2_x".to_string())
        );
    }

    #[test]
    fn digits_may_start_a_name() {
        assert_eq!(canonical("7of9"), Ok("7of9".to_string()));
    }

    #[test]
    fn characters_outside_the_set_are_refused() {
        for bad in [
            "al ice", "al@ice", "al/ice", "alice\0", "al:ice", "ålice", "аlice",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn empty_and_overlong_names_are_refused() {
        assert!(canonical("").is_err());
        assert!(canonical(&"a".repeat(64)).is_ok());
        assert!(canonical(&"a".repeat(65)).is_err());
    }

    #[test]
    fn leading_punctuation_is_refused() {
        for bad in [".alice", "-alice", "_alice", "..", "."] {
            assert_eq!(
                canonical(bad),
                Err("username must start with a letter or a digit"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn short_password_is_refused_counting_characters_not_bytes() {
        assert!(check_password("bob", "elevenchars").is_err());
        assert!(check_password("bob", "twelve chars").is_ok());
        // Eleven two-byte characters: 22 bytes but still too short.
        assert!(check_password("bob", &"é".repeat(11)).is_err());
        assert!(check_password("bob", &"é".repeat(12)).is_ok());
    }

    #[test]
    fn overlong_password_is_refused() {
        assert!(check_password("bob", &"x".repeat(1024)).is_ok());
        assert!(check_password("bob", &"x".repeat(1025)).is_err());
    }

    #[test]
    fn password_containing_the_username_is_refused_in_any_case() {
        assert_eq!(
            check_password("alice", "my-ALICE-password"),
            Err("password must not contain the username")
        );
        assert!(check_password("Alice", "xxalicexxxxxxx").is_err());
    }
}
