//! Second-factor secrets at rest: AES-256-GCM under a key the operator gives by file or
//! environment variable, so that users.toml and Redis never hold a TOTP secret in clear.
//! The user's name is the associated data: a sealed secret copied to another user's record
//! does not open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Text before every sealed value, naming the format.
const VERSION: &str = "v1.";

/// The key that seals and opens second-factor secrets, and keys recovery-code digests;
/// during a rotation, with the key before it, which still opens and checks but never seals.
pub struct SealKey(LessSafeKey, hmac::Key, Option<Box<SealKey>>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    /// A key from its text: base64 of 32 random bytes (`openssl rand -base64 32`).
    pub fn from_text(text: &str) -> Result<SealKey, &'static str> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            "the second-factor key is not base64 (make one with `openssl rand -base64 32`)"
        })?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "the second-factor key must be 32 bytes (`openssl rand -base64 32`)")?;
        // A separate key for digests, derived so that one key file serves both uses.
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            b"portcullis recovery codes v1",
        );
        let digest_key = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        Ok(SealKey(LessSafeKey::new(unbound), digest_key, None))
    }

    /// This key with `previous` (the one being rotated out) as a fallback for opening
    /// secrets and checking recovery codes; only this key seals.
    pub fn with_previous(self, previous: SealKey) -> SealKey {
        let SealKey(seal, digest, _) = previous;
        SealKey(self.0, self.1, Some(Box::new(SealKey(seal, digest, None))))
    }

    /// The stored forms `code` may have: under this key, then under the previous one.
    pub fn recovery_digests(&self, user: &str, code: &str) -> Vec<String> {
        let mut digests = vec![self.recovery_digest(user, code)];
        if let Some(previous) = &self.2 {
            digests.push(previous.recovery_digest(user, code));
        }
        digests
    }

    /// Whether `sealed` opens with this key itself (not only with the previous one).
    pub fn opens_with_current(&self, user: &str, sealed: &str) -> bool {
        self.open_here(user, sealed).is_ok()
    }

    /// The stored form of a recovery code of `user`: 32 hex digits of a keyed digest, so a
    /// leaked users.toml or Redis dump holds nothing to try offline without the key.
    pub fn recovery_digest(&self, user: &str, code: &str) -> String {
        let mut message = Vec::with_capacity(user.len() + code.len() + 1);
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(code.as_bytes());
        let tag = hmac::sign(&self.1, &message);
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `secret` sealed for `user`: `v1.` and base64url of nonce, ciphertext and tag.
    pub fn seal(&self, user: &str, secret: &[u8]) -> Result<String, &'static str> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system random generator failed")?;
        let mut sealed = secret.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(user)),
                &mut sealed,
            )
            .map_err(|_| "sealing failed")?;
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Ok(format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The secret `sealed` holds for `user` (under this key or the previous one); an error
    /// for another key, another user or a value that was altered.
    pub fn open(&self, user: &str, sealed: &str) -> Result<Vec<u8>, &'static str> {
        match (self.open_here(user, sealed), &self.2) {
            (Err(_), Some(previous)) => previous.open_here(user, sealed),
            (opened, _) => opened,
        }
    }

    fn open_here(&self, user: &str, sealed: &str) -> Result<Vec<u8>, &'static str> {
        let unreadable = "a sealed second-factor secret does not open with this key";
        let body = sealed.strip_prefix(VERSION).ok_or(unreadable)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| unreadable)?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad(user)), &mut buffer)
            .map_err(|_| unreadable)?;
        Ok(plain.to_vec())
    }
}

/// Whether `text` has the shape of a recovery-code digest (store validation).
pub fn looks_like_digest(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `text` has the shape of a sealed value (users.toml validation).
pub fn looks_sealed(text: &str) -> bool {
    text.strip_prefix(VERSION)
        .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())
        .is_some_and(|bytes| bytes.len() > NONCE_LEN + 16)
}

fn aad(user: &str) -> Vec<u8> {
    format!("portcullis-totp:{user}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn a_secret_opens_only_with_its_key_and_its_user() {
        let key = SealKey::from_text(KEY).unwrap();
        let sealed = key.seal("alice", b"12345678901234567890").unwrap();
        assert!(sealed.starts_with("v1.") && looks_sealed(&sealed));
        assert!(!sealed.contains("12345678901234567890"));
        assert_eq!(key.open("alice", &sealed).unwrap(), b"12345678901234567890");
        assert!(key.open("bob", &sealed).is_err(), "bound to the user");
        let other = SealKey::from_text("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=").unwrap();
        assert!(other.open("alice", &sealed).is_err(), "bound to the key");
        let mut altered = sealed.clone();
        altered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        assert!(key.open("alice", &altered).is_err(), "tamper-evident");
        assert_ne!(
            sealed,
            key.seal("alice", b"12345678901234567890").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn during_a_rotation_the_previous_key_opens_and_checks_but_never_seals() {
        const NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
        let old = SealKey::from_text(KEY).unwrap();
        let sealed_old = old.seal("alice", b"secret-under-old-key").unwrap();
        let old_digest = old.recovery_digest("alice", "ABCDEFGHJK");
        let rotating = SealKey::from_text(NEW)
            .unwrap()
            .with_previous(SealKey::from_text(KEY).unwrap());
        assert_eq!(
            rotating.open("alice", &sealed_old).unwrap(),
            b"secret-under-old-key"
        );
        assert!(!rotating.opens_with_current("alice", &sealed_old));
        let sealed_new = rotating.seal("alice", b"secret-under-new-key").unwrap();
        assert!(rotating.opens_with_current("alice", &sealed_new));
        assert!(
            old.open("alice", &sealed_new).is_err(),
            "sealed with the new key only"
        );
        let digests = rotating.recovery_digests("alice", "ABCDEFGHJK");
        assert_eq!(digests.len(), 2);
        assert_eq!(digests[1], old_digest);
        assert_ne!(digests[0], old_digest);
        assert_eq!(rotating.recovery_digest("alice", "ABCDEFGHJK"), digests[0]);
        let after = SealKey::from_text(NEW).unwrap();
        assert!(
            after.open("alice", &sealed_old).is_err(),
            "old key removed: old seals fail"
        );
        assert_eq!(after.recovery_digests("alice", "ABCDEFGHJK").len(), 1);
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SealKey::from_text("not base64!").is_err());
        assert!(SealKey::from_text("c2hvcnQ=").is_err());
        assert!(SealKey::from_text(&format!(" {KEY}\n")).is_ok());
        assert!(!looks_sealed("JBSWY3DPEHPK3PXP") && !looks_sealed("v1.!!"));
    }
}
