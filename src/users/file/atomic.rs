//! Replacing a file so a reader or a crash sees the old content or the new, never half.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `contents` to a temp file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory so the rename itself survives a power cut. The file keeps the mode
/// (and, when allowed, the owner and group) of the one it replaces: an operator who made
/// users.toml group-readable for the gateway's account keeps it so. A new file is 0600.
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // A unique name, so two processes (the server and `user add`) never share a temp file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = write_and_rename(&tmp, path, contents);
    if result.is_err() {
        // Best effort: the temp file is garbage whatever happened; the target is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(&dir)?.sync_all()
}

fn write_and_rename(tmp: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = private_create(tmp)?;
    file.write_all(contents)?;
    match fs::metadata(path) {
        Ok(old) => keep_access(&file, &old)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)
}

#[cfg(unix)]
fn private_create(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created 0600 from the start: chmod after writing would leave a readable window.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Gives `file` the permissions, owner and group of `old`. The owner and group only change
/// when allowed (root, or a group the writer is in); otherwise they stay the writer's, which
/// is all an unprivileged writer can do.
#[cfg(unix)]
fn keep_access(file: &File, old: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let Err(err) = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())) {
        tracing::debug!(error = %err, "users file owner not kept");
    }
    file.set_permissions(old.permissions())
}

#[cfg(not(unix))]
fn keep_access(file: &File, old: &fs::Metadata) -> io::Result<()> {
    file.set_permissions(old.permissions())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
    }
}
