use super::*;
use std::path::Path;

fn cheap() -> Hasher {
    Hasher::with_params(2, 8, 1024, 1, 1)
}

const PW: &str = "correct horse battery";

async fn store_with(path: &Path, users: &[(&str, bool)]) -> UserStore {
    let h = cheap();
    for (name, disabled) in users {
        let phc = h.hash(PW).await.unwrap();
        let disabled = if *disabled { "disabled = true\n" } else { "" };
        let text =
            format!("[[users]]\nname = \"{name}\"\nhash = \"{phc}\"\nroles = [\"r\"]\n{disabled}");
        let old = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, old + &text).unwrap();
    }
    UserStore::File(file::FileStore::load(path, true).unwrap())
}

#[tokio::test]
async fn right_password_logs_in_with_any_username_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir.path().join("u.toml"), &[("alice", false)]).await;
    let user = store.authenticate(&cheap(), "ALICE", PW).await.unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.roles, vec!["r"]);
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        &dir.path().join("u.toml"),
        &[("alice", false), ("bob", true)],
    )
    .await;
    let h = cheap();
    let attempts = [
        ("alice", "wrong password!!"),
        ("nobody", PW),
        ("bob", PW),
        ("bad name!", PW),
    ];
    for (name, pw) in attempts {
        let err = store.authenticate(&h, name, pw).await.unwrap_err();
        assert!(matches!(err, LoginError::BadCredentials), "{name}: {err:?}");
        assert_eq!(err.to_string(), "invalid username or password");
    }
}

#[tokio::test]
async fn lookup_finds_active_users_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        &dir.path().join("u.toml"),
        &[("alice", false), ("bob", true)],
    )
    .await;
    assert!(store.can_lookup());
    assert_eq!(store.lookup("Alice").await.unwrap().unwrap().name, "alice");
    assert_eq!(store.lookup("bob").await.unwrap(), None);
    assert_eq!(store.lookup("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn registered_user_can_log_in_and_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.toml");
    let store = store_with(&path, &[]).await;
    let user = store
        .register(&cheap(), "Carol", PW, vec!["user".into()])
        .await
        .unwrap();
    assert_eq!(user.name, "carol");
    let reloaded = UserStore::File(file::FileStore::load(&path, false).unwrap());
    let again = reloaded.authenticate(&cheap(), "carol", PW).await.unwrap();
    assert_eq!(again, user);
}

#[tokio::test]
async fn registration_refuses_bad_names_weak_passwords_and_taken_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir.path().join("u.toml"), &[("alice", false)]).await;
    let h = cheap();
    let reg = |name: &'static str, pw: &'static str| store.register(&h, name, pw, vec![]);
    assert!(matches!(
        reg("-x", PW).await,
        Err(RegisterError::Invalid(_))
    ));
    assert!(matches!(
        reg("dan", "short").await,
        Err(RegisterError::Invalid(_))
    ));
    assert!(matches!(
        reg("dan", "dan-is-my-password").await,
        Err(RegisterError::Invalid(_))
    ));
    assert!(matches!(reg("ALICE", PW).await, Err(RegisterError::Taken)));
}

#[tokio::test]
async fn weak_hash_is_upgraded_on_login_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.toml");
    let store = store_with(&path, &[("alice", false)]).await;
    let stronger = Hasher::with_params(1, 1, 2048, 1, 1);
    store.authenticate(&stronger, "alice", PW).await.unwrap();
    let reloaded = file::FileStore::load(&path, false).unwrap();
    let entry = reloaded.get("alice").unwrap();
    assert!(entry.phc().starts_with("$argon2id$v=19$m=2048,t=1,p=1$"));
    let v = stronger.verify(entry.phc(), PW).await.unwrap();
    assert_eq!(
        v,
        hash::Verified {
            ok: true,
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn http_store_cannot_register_or_look_up() {
    let http = http::HttpStore::new(
        "http://127.0.0.1:9/login",
        std::time::Duration::from_secs(1),
    );
    let store = UserStore::Http(http.unwrap());
    assert!(!store.can_lookup());
    assert_eq!(store.lookup("alice").await.unwrap(), None);
    let result = store.register(&cheap(), "alice", PW, vec![]).await;
    assert!(matches!(result, Err(RegisterError::Unsupported)));
}
