use std::path::Path;

use super::*;
use crate::users::file::format;

const PHC: &str = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$PpH7+QVcxn3lvXqljq6L1A0m7Hm1Y7hTtIZ2Y6kAmmA";
const NEW: &str =
    "$argon2id$v=19$m=1024,t=1,p=1$b3RoZXJzYWx0b3RoZXI$PpH7+QVcxn3lvXqljq6L1A0m7Hm1Y7hTtIZ2Y6kAmmA";

/// Applies `change` to `name` in `text`; the result must still load.
fn edit(text: &str, name: &str, change: Change) -> Result<String, ChangeError> {
    let path = Path::new("users.toml");
    let users = format::parse(path, text).expect("input loads");
    let mut doc: DocumentMut = text.parse().expect("input parses");
    apply(&mut doc, &users, name, &change)?;
    let out = doc.to_string();
    format::parse(path, &out).unwrap_or_else(|e| panic!("output does not load: {e:?}\n{out}"));
    Ok(out)
}

fn user(name: &str) -> String {
    format!("[[users]]\nname = \"{name}\"\nhash = \"{PHC}\"\nroles = [\"user\"]\n")
}

const HEADER: &str = "# The users of the staging gateway.\n# Ask ops before adding one.\n\n";

#[test]
fn adding_to_the_commented_sample_keeps_every_comment_above_the_new_user() {
    let sample = include_str!("../../../../config/users.toml");
    let out = edit(
        sample,
        "alice",
        Change::Add {
            phc: PHC.into(),
            roles: vec!["admin".into()],
        },
    )
    .unwrap();
    let expected = format!(
        "{}\n\n[[users]]\nname = \"alice\"\nhash = \"{PHC}\"\nroles = [\"admin\"]\n",
        sample.trim_end()
    );
    assert_eq!(out, expected);
}

#[test]
fn adding_to_an_empty_file_writes_just_the_user() {
    let add = Change::Add {
        phc: PHC.into(),
        roles: vec![],
    };
    let out = edit("", "bob", add).unwrap();
    assert_eq!(
        out,
        format!("[[users]]\nname = \"bob\"\nhash = \"{PHC}\"\nroles = []\n")
    );
}

#[test]
fn adding_appends_after_one_blank_line_and_leaves_the_rest_byte_for_byte() {
    let text = format!(
        "{HEADER}{}# bob is on leave\n{}",
        user("alice"),
        user("bob")
    );
    let add = Change::Add {
        phc: PHC.into(),
        roles: vec!["user".into()],
    };
    let out = edit(&text, "carol", add).unwrap();
    assert_eq!(out, format!("{text}\n{}", user("carol")));
}

#[test]
fn adding_an_existing_name_is_taken_and_changing_a_missing_one_is_unknown() {
    let text = user("alice");
    let add = Change::Add {
        phc: PHC.into(),
        roles: vec![],
    };
    assert!(matches!(edit(&text, "alice", add), Err(ChangeError::Taken)));
    for change in [
        Change::Delete,
        Change::Disabled(true),
        Change::Roles(vec![]),
    ] {
        assert!(matches!(
            edit(&text, "nobody", change),
            Err(ChangeError::UnknownUser)
        ));
    }
}

#[test]
fn password_roles_and_disabled_change_only_their_own_line() {
    let text = format!(
        "{HEADER}[[users]]\nname = \"alice\"\nhash = \"{PHC}\"   # set 2024-05\nroles = [\"user\"]\n\n[users.claims]\ntenant = \"acme\"\n\n{}",
        user("bob")
    );
    let out = edit(&text, "alice", Change::Password(NEW.into())).unwrap();
    assert_eq!(out, text.replacen(PHC, NEW, 1));
    let out = edit(
        &out,
        "alice",
        Change::Roles(vec!["admin".into(), "ops".into()]),
    )
    .unwrap();
    assert!(
        out.contains("roles = [\"admin\", \"ops\"]\n\n[users.claims]"),
        "{out}"
    );
    assert!(out.contains("   # set 2024-05\n"), "{out}");
    let disabled = edit(&out, "alice", Change::Disabled(true)).unwrap();
    assert!(
        disabled.contains("roles = [\"admin\", \"ops\"]\ndisabled = true\n\n[users.claims]"),
        "{disabled}"
    );
    let enabled = edit(&disabled, "alice", Change::Disabled(false)).unwrap();
    assert_eq!(enabled, out);
    assert!(enabled.ends_with(&user("bob")));
}

#[test]
fn deleting_the_first_user_keeps_the_file_header_but_not_its_own_comment() {
    let text = format!(
        "{HEADER}# alice runs the builds\n{}\n{}",
        user("alice"),
        user("bob")
    );
    let out = edit(&text, "alice", Change::Delete).unwrap();
    assert_eq!(out, format!("{HEADER}{}", user("bob")));
}

#[test]
fn deleting_a_middle_or_last_user_leaves_no_stray_blank_lines() {
    let text = format!("{}\n{}\n{}", user("alice"), user("bob"), user("carol"));
    let out = edit(&text, "bob", Change::Delete).unwrap();
    assert_eq!(out, format!("{}\n{}", user("alice"), user("carol")));
    let out = edit(&out, "carol", Change::Delete).unwrap();
    assert_eq!(out, user("alice"));
    let out = edit(&out, "alice", Change::Delete).unwrap();
    assert_eq!(out, "");
}

#[test]
fn deleting_the_only_user_keeps_the_header_comment() {
    let text = format!("{HEADER}{}", user("alice"));
    let out = edit(&text, "alice", Change::Delete).unwrap();
    assert_eq!(out, HEADER);
}

#[test]
fn a_user_with_claims_is_deleted_whole() {
    let text = format!(
        "{}\n[users.claims]\ntenant = \"acme\"\n\n{}",
        user("alice"),
        user("bob")
    );
    let out = edit(&text, "alice", Change::Delete).unwrap();
    assert_eq!(out, user("bob"));
}

#[test]
fn an_inline_users_array_is_refused_with_a_reason() {
    let text = format!("users = [{{ name = \"alice\", hash = \"{PHC}\" }}]\n");
    let err = edit(&text, "alice", Change::Disabled(true)).unwrap_err();
    assert!(err.to_string().contains("[[users]]"), "{err}");
}
