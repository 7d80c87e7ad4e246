use super::*;
use crate::users::hash::Hasher;
use std::fs;

const PHC: &str = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$PpH7+QVcxn3lvXqljq6L1A0m7Hm1Y7hTtIZ2Y6kAmmA";

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("users.toml");
    fs::write(&path, text).unwrap();
    path
}

fn load_err(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, text);
    match FileStore::load(&path, false) {
        Ok(_) => panic!("loaded"),
        Err(e) => e
            .into_errors()
            .iter()
            .map(|e| {
                let full = e.to_string();
                let prefix = format!("{}:", path.display());
                full.strip_prefix(&prefix).unwrap_or(&full).to_string()
            })
            .collect(),
    }
}

/// `portcullis user add`'s write.
fn add(path: &Path, name: &str, phc: &str, roles: Vec<String>) -> Result<(), ChangeError> {
    let phc = phc.to_string();
    change_blocking(path, name, Change::Add { phc, roles })
}

fn entry(name: &str) -> Entry {
    let user = User {
        name: name.into(),
        roles: vec!["user".into()],
        claims: serde_json::Map::new(),
        disabled: false,
        totp: None,
        recovery: Vec::new(),
    };
    Entry::new(user, PHC.into())
}

#[test]
fn sample_with_claims_and_disabled_loads() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\nroles = [\"admin\"]\n\
         [users.claims]\ntenant = \"acme\"\nlevel = 3\n\n\
         [[users]]\nname = \"bob\"\nhash = \"{PHC}\"\ndisabled = true\n"
    );
    let store = FileStore::load(&write(&dir, &text), false).unwrap();
    assert_eq!(store.len(), 2);
    let alice = store.get("alice").unwrap();
    assert_eq!(alice.user.roles, vec!["admin"]);
    assert_eq!(alice.user.claims["tenant"], "acme");
    assert_eq!(alice.user.claims["level"], 3);
    assert!(store.get("bob").unwrap().user.disabled);
}

#[test]
fn syntax_error_reports_line_and_column() {
    let errs = load_err("[[users]]\nname = \"alice\"\nhash = \n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("3:"), "{errs:?}");
}

#[test]
fn unknown_field_is_rejected_with_its_position() {
    let errs = load_err(&format!(
        "[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\nrole = [\"admin\"]\n"
    ));
    assert!(errs[0].starts_with("4:1:"), "{errs:?}");
    assert!(errs[0].contains("role"), "{errs:?}");
}

#[test]
fn duplicate_names_are_rejected_at_the_second() {
    let user = |n: &str| format!("[[users]]\nname = \"{n}\"\nhash = \"{PHC}\"\n");
    let errs = load_err(&format!("{}{}", user("alice"), user("alice")));
    assert_eq!(errs, vec!["5:8: duplicate user \"alice\"".to_string()]);
}

#[test]
fn non_canonical_and_invalid_names_are_rejected() {
    let user = |n: &str| format!("[[users]]\nname = \"{n}\"\nhash = \"{PHC}\"\n");
    let errs = load_err(&format!("{}{}", user("Alice"), user(".x")));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("2:8:") && errs[0].contains("\"alice\""),
        "{errs:?}"
    );
    assert!(errs[1].starts_with("5:8:"), "{errs:?}");
}

#[test]
fn unparseable_hash_is_rejected_without_echoing_it() {
    let errs = load_err("[[users]]\nname = \"alice\"\nhash = \"$argon2id$nope\"\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("3:8: hash is not an argon2 PHC string"),
        "{errs:?}"
    );
    assert!(!errs[0].contains("nope"));
}

#[test]
fn hash_in_the_wrong_field_is_not_echoed() {
    let errs = load_err(&format!(
        "[[users]]\nname = \"alice\"\nhash = \"x\"\nroles = \"{PHC}\"\n"
    ));
    assert!(!errs.iter().any(|e| e.contains("c29tZXNhbHRz")), "{errs:?}");
}

#[test]
fn reserved_claims_are_rejected() {
    let errs = load_err(&format!(
        "[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\n[users.claims]\nsub = \"root\"\n"
    ));
    assert!(
        errs[0].contains("\"sub\" is set by the gateway"),
        "{errs:?}"
    );
}

#[test]
fn missing_file_is_an_empty_store_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    assert!(FileStore::load(&path, true).unwrap().is_empty());
    let err = FileStore::load(&path, false).unwrap_err().to_string();
    assert!(err.contains("cannot read users file"), "{err}");
}

#[tokio::test]
async fn inserted_user_is_found_after_reload_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    store.insert(entry("carol")).await.unwrap();
    assert!(store.get("carol").is_some());
    let again = FileStore::load(&path, false).unwrap();
    assert_eq!(again.get("carol"), Some(entry("carol")));
}

#[tokio::test]
async fn inserting_an_existing_name_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::load(&dir.path().join("users.toml"), true).unwrap();
    store.insert(entry("carol")).await.unwrap();
    assert!(matches!(
        store.insert(entry("carol")).await,
        Err(RegisterError::Taken)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_registrations_all_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    let hasher = Hasher::with_params(4, 64, 1024, 1, 1);
    let users = crate::users::UserStore::File(store.clone());
    let users = Arc::new(users);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (users, hasher) = (Arc::clone(&users), hasher.clone());
        set.spawn(async move {
            let name = format!("user{i}");
            users
                .register(&hasher, &name, "a long enough password", vec![])
                .await
        });
    }
    for result in set.join_all().await {
        result.unwrap();
    }
    assert_eq!(store.len(), 50);
    let reloaded = FileStore::load(&path, false).unwrap();
    assert_eq!(reloaded.len(), 50);
}

#[tokio::test]
async fn failed_write_leaves_memory_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // The users file is a directory: reading it fails, so nothing can be written.
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    fs::create_dir(&path).unwrap();
    let result = store.insert(entry("dave")).await;
    assert!(
        matches!(result, Err(RegisterError::Unavailable(_))),
        "{result:?}"
    );
    assert!(store.get("dave").is_none());
}

#[tokio::test]
async fn invalid_file_on_disk_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    fs::write(&path, "[[users]]\nbroken =").unwrap();
    assert!(matches!(
        store.insert(entry("erin")).await,
        Err(RegisterError::Unavailable(_))
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "[[users]]\nbroken =");
}

#[tokio::test]
async fn set_hash_replaces_only_the_expected_old_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    store.insert(entry("frank")).await.unwrap();
    let newer = Hasher::with_params(1, 1, 2048, 1, 1)
        .hash("x")
        .await
        .unwrap();
    store
        .set_hash("frank", "stale", newer.clone())
        .await
        .unwrap();
    assert_eq!(store.get("frank").unwrap().phc(), PHC);
    store.set_hash("frank", PHC, newer.clone()).await.unwrap();
    let reloaded = FileStore::load(&path, false).unwrap();
    assert_eq!(reloaded.get("frank").unwrap().phc(), newer);
}

#[tokio::test]
async fn cli_addition_is_kept_by_the_running_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    store.insert(entry("gina")).await.unwrap();
    add(&path, "Hank", PHC, vec!["ops".into()]).unwrap();
    store.insert(entry("ivan")).await.unwrap();
    let names: Vec<_> = FileStore::load(&path, false)
        .unwrap()
        .inner
        .users
        .load()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, vec!["gina", "hank", "ivan"]);
}

#[test]
fn cli_add_keeps_existing_users_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\nroles = [\"admin\"]\n\
         [users.claims]\ntenant = \"acme\"\n"
    );
    let path = write(&dir, &text);
    add(&path, "bob", PHC, vec!["user".into()]).unwrap();
    let store = FileStore::load(&path, false).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(store.get("alice").unwrap().user.claims["tenant"], "acme");
    assert_eq!(store.get("bob").unwrap().user.roles, vec!["user"]);
    assert!(matches!(
        add(&path, "ALICE", PHC, vec![]),
        Err(ChangeError::Taken)
    ));
    assert!(matches!(
        add(&path, "carl", "plain", vec![]),
        Err(ChangeError::Invalid(_))
    ));
}

#[tokio::test]
async fn reload_picks_up_edits_and_keeps_users_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = FileStore::load(&path, true).unwrap();
    add(&path, "jill", PHC, vec![]).unwrap();
    store.reload().await.unwrap();
    assert!(store.get("jill").is_some());
    fs::write(&path, "nonsense").unwrap();
    assert!(store.reload().await.is_err());
    assert!(store.get("jill").is_some());
}

#[test]
fn debug_never_prints_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        &format!("[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\n"),
    );
    let store = FileStore::load(&path, false).unwrap();
    let entry = store.get("alice").unwrap();
    for dbg in [format!("{store:?}"), format!("{entry:?}")] {
        assert!(!dbg.contains("argon2"), "{dbg}");
    }
    assert!(format!("{entry:?}").contains("alice"));
}
