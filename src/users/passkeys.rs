//! Passkeys (WebAuthn credentials) at rest: a user's registered credentials, kept in the
//! user store beside the password (users.toml `passkeys`, Redis `{p}passkeys:<name>`), and
//! the lookups a username-less sign-in needs (credential id -> owner).
//!
//! A passkey holds a public key and a signature counter, no secret: a leaked store lets no
//! one sign in. Still, Debug shows only the id, label and creation time.

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Passkey, Uuid};

use super::{Change, ChangeError, UserStore};

/// Most passkeys one user may register: enough for every device a person owns.
pub const MAX_PER_USER: usize = 20;

/// One registered passkey.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding: how the CLI and the page name it.
    pub id: String,
    /// What the user called it ("laptop"), shown on the passkeys page.
    pub label: String,
    /// When it was registered, seconds since the Unix epoch.
    pub created: u64,
    /// The public key and counter, as webauthn-rs keeps them.
    pub passkey: Passkey,
}

impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl StoredPasskey {
    /// A new record for a just-registered passkey.
    pub fn new(passkey: Passkey, label: &str, created: u64) -> StoredPasskey {
        StoredPasskey {
            id: credential_id(passkey.cred_id().as_ref()),
            label: clean_label(label),
            created,
            passkey,
        }
    }

    /// The record as one line of JSON (users.toml and Redis hold this text).
    pub fn to_json(&self) -> Result<String, ChangeError> {
        serde_json::to_string(self).map_err(|_| ChangeError::Invalid("passkey does not serialize"))
    }

    /// A record from its stored JSON; the problem (never the value) when malformed.
    pub fn from_json(text: &str) -> Result<StoredPasskey, &'static str> {
        let record: StoredPasskey =
            serde_json::from_str(text).map_err(|_| "passkey is not a stored passkey record")?;
        if record.id != credential_id(record.passkey.cred_id().as_ref()) {
            return Err("passkey id does not match its credential");
        }
        Ok(record)
    }
}

/// A change to one user's passkeys (see [`Change::Passkey`]).
#[derive(Clone, Debug)]
pub enum PasskeyChange {
    /// Register a new passkey; `Taken` if its credential id is registered already.
    Add(Box<StoredPasskey>),
    /// Replace a passkey's record after a sign-in moved its counter.
    Update(Box<StoredPasskey>),
    /// Remove the passkey with this id; `UnknownUser` when the user has none such.
    Remove(String),
}

/// base64url (no padding) of a credential id.
pub fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The WebAuthn user handle of `name`: the first 16 bytes of a SHA-256 of the name, so the
/// authenticator never stores the name itself and the handle needs no column of its own.
pub fn user_handle(name: &str) -> Uuid {
    let hash = digest(
        &SHA256,
        format!("portcullis-passkey-user:{name}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

/// A label trimmed to 60 printable characters, "passkey" when nothing is left.
fn clean_label(label: &str) -> String {
    let clean: String = label.chars().filter(|c| !c.is_control()).take(60).collect();
    match clean.trim() {
        "" => "passkey".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// `records` with `change` applied: the rules every store shares.
pub(crate) fn applied(
    mut records: Vec<StoredPasskey>,
    change: &PasskeyChange,
) -> Result<Vec<StoredPasskey>, ChangeError> {
    match change {
        PasskeyChange::Add(record) => {
            if records.iter().any(|r| r.id == record.id) {
                return Err(ChangeError::Taken);
            }
            if records.len() >= MAX_PER_USER {
                return Err(ChangeError::Invalid("too many passkeys for one user"));
            }
            records.push((**record).clone());
        }
        PasskeyChange::Update(record) => {
            let slot = records.iter_mut().find(|r| r.id == record.id);
            *slot.ok_or(ChangeError::UnknownUser)? = (**record).clone();
        }
        PasskeyChange::Remove(id) => {
            let before = records.len();
            records.retain(|r| &r.id != id);
            if records.len() == before {
                return Err(ChangeError::UnknownUser);
            }
        }
    }
    Ok(records)
}

impl UserStore {
    /// `name`'s passkeys (canonical name); none for the http store, which cannot hold any.
    pub async fn passkeys(&self, name: &str) -> Result<Vec<StoredPasskey>, ChangeError> {
        match self {
            UserStore::File(store) => Ok(store
                .get(name)
                .map(|entry| entry.passkeys().to_vec())
                .unwrap_or_default()),
            UserStore::Redis(store) => store.passkeys(name).await,
            UserStore::Http(_) => Ok(Vec::new()),
        }
    }

    /// Who registered the credential `id` (base64url), if anyone.
    pub async fn passkey_owner(&self, id: &str) -> Result<Option<String>, ChangeError> {
        match self {
            UserStore::File(store) => Ok(store.passkey_owner(id)),
            UserStore::Redis(store) => store.passkey_owner(id).await,
            UserStore::Http(_) => Ok(None),
        }
    }

    /// Adds, updates or removes one of `name`'s passkeys, persisted before returning. An
    /// added credential id must be new across every user (`Taken` otherwise).
    pub async fn change_passkey(
        &self,
        name: &str,
        change: PasskeyChange,
    ) -> Result<(), ChangeError> {
        if let PasskeyChange::Add(record) = &change {
            if self.passkey_owner(&record.id).await?.is_some() {
                return Err(ChangeError::Taken);
            }
        }
        match self {
            UserStore::File(store) => store.change(name, Change::Passkey(change)).await,
            UserStore::Redis(store) => store.change_passkey(name, change).await,
            UserStore::Http(_) => Err(ChangeError::Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_stable_per_name_and_distinct_between_names() {
        assert_eq!(user_handle("alice"), user_handle("alice"));
        assert_ne!(user_handle("alice"), user_handle("bob"));
        assert_eq!(clean_label("  \u{7}  "), "passkey");
        assert_eq!(clean_label(&"x".repeat(99)).len(), 60);
        assert!(StoredPasskey::from_json("{\"id\":\"x\"}").is_err());
    }
}
