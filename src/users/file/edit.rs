//! Changing users.toml in place: a [`Change`] touches only its own user's `[[users]]` table,
//! and toml_edit keeps the rest of the text as written (comments, blank lines, order,
//! quoting), so an operator's notes survive `portcullis user ...` and every server write.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use super::format::Users;
use crate::users::{Change, ChangeError};

/// The reason given when the file's shape is one these edits do not handle.
const INLINE_USERS: &str =
    "users.toml lists users in an inline array; write them as [[users]] tables to edit them";

/// Applies `change` to the user named `name` (canonical) in `doc`, whose validated content
/// is `users`: `Taken` when adding a name that exists, `UnknownUser` for any other change
/// of a name that does not.
pub(super) fn apply(
    doc: &mut DocumentMut,
    users: &Users,
    name: &str,
    change: &Change,
) -> Result<(), ChangeError> {
    let exists = users.contains_key(name);
    match change {
        Change::Add { phc, roles } if !exists => return add(doc, name, phc, roles),
        Change::Add { .. } => return Err(ChangeError::Taken),
        _ if !exists => return Err(ChangeError::UnknownUser),
        _ => {}
    }
    let tables = user_tables(doc)?;
    let index = tables
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
        // The validated map and the document come from the same text.
        .ok_or(ChangeError::Unavailable(
            "users file changed while being read",
        ))?;
    if matches!(change, Change::Delete) {
        delete(doc, index);
        return Ok(());
    }
    let table = tables.get_mut(index).ok_or(ChangeError::Unavailable(
        "users file changed while being read",
    ))?;
    match change {
        Change::Password(phc) => set(table, "hash", Value::from(phc.as_str())),
        Change::Disabled(true) => set(table, "disabled", Value::from(true)),
        Change::Disabled(false) => {
            // Enabled is the default: the line goes rather than reading `disabled = false`.
            table.remove("disabled");
        }
        Change::Roles(roles) => set(table, "roles", Value::Array(roles_array(roles))),
        Change::Totp(Some(sealed)) => set(table, "totp", Value::from(sealed.as_str())),
        Change::Totp(None) => {
            table.remove("totp");
        }
        Change::Recovery(digests) if digests.is_empty() => {
            table.remove("recovery");
        }
        Change::Recovery(digests) => set(table, "recovery", Value::Array(roles_array(digests))),
        Change::Add { .. } | Change::Delete => {}
    }
    Ok(())
}

/// The `[[users]]` tables; `users` absent is an error here (callers checked the name exists).
fn user_tables(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, ChangeError> {
    doc.get_mut("users")
        .ok_or(ChangeError::Unavailable(
            "users file changed while being read",
        ))?
        .as_array_of_tables_mut()
        .ok_or(ChangeError::Unavailable(INLINE_USERS))
}

/// Replaces `key`'s value, keeping the spacing and any comment after the old one.
fn set(table: &mut Table, key: &str, mut value: Value) {
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table[key] = Item::Value(value);
}

fn roles_array(roles: &[String]) -> Array {
    roles.iter().map(String::as_str).collect()
}

/// Appends a `[[users]]` table at the end of the file, one blank line below what is there.
/// Comments that end the file (the sample's commented-out template) stay above it.
fn add(doc: &mut DocumentMut, name: &str, phc: &str, roles: &[String]) -> Result<(), ChangeError> {
    let mut table = Table::new();
    table.insert("name", toml_edit::value(name));
    table.insert("hash", toml_edit::value(phc));
    table.insert("roles", toml_edit::value(roles_array(roles)));
    let trailing = doc.trailing().as_str().unwrap_or_default().trim_end();
    let has_users = doc.get("users").is_some();
    let prefix = match (trailing.is_empty(), has_users) {
        (true, false) => String::new(),
        (true, true) => "\n".to_string(),
        (false, _) => format!("{trailing}\n\n"),
    };
    table.decor_mut().set_prefix(prefix);
    doc.set_trailing("");
    let item = doc
        .entry("users")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let tables = item
        .as_array_of_tables_mut()
        .ok_or(ChangeError::Unavailable(INLINE_USERS))?;
    tables.push(table);
    Ok(())
}

/// Removes table `index`. The comments directly above its header go with it; comments
/// separated from it by a blank line (a file header above the first user) are kept.
fn delete(doc: &mut DocumentMut, index: usize) {
    let Some(tables) = doc.get_mut("users").and_then(Item::as_array_of_tables_mut) else {
        return;
    };
    let removed = tables.remove(index);
    let kept = detached_comments(decor_prefix(removed.decor()));
    if let Some(next) = tables.get_mut(index) {
        let own = decor_prefix(next.decor()).to_string();
        let prefix = match (kept.is_empty(), index) {
            (true, 0) => own.trim_start_matches('\n').to_string(),
            (true, _) => own,
            (false, _) => format!("{kept}{}", own.trim_start_matches('\n')),
        };
        next.decor_mut().set_prefix(prefix);
    } else if !kept.is_empty() {
        let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
        doc.set_trailing(format!("{kept}{trailing}"));
    }
}

fn decor_prefix(decor: &toml_edit::Decor) -> &str {
    decor.prefix().and_then(|p| p.as_str()).unwrap_or_default()
}

/// The part of a table's prefix up to its last blank line, when it holds a comment.
fn detached_comments(prefix: &str) -> String {
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    let Some(last_blank) = lines.iter().rposition(|l| l.trim().is_empty()) else {
        return String::new();
    };
    let kept = lines[..=last_blank].concat();
    match kept.contains('#') {
        true => kept,
        false => String::new(),
    }
}

#[cfg(test)]
mod tests;
