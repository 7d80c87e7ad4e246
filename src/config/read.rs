//! Reading configuration files and recording what is wrong with them: every error is
//! collected against its file and span, so the operator fixes everything in one pass.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::diag::ConfigError;
use super::Source;

/// Collects errors against one file.
pub(crate) struct Diag<'a> {
    pub(crate) file: &'a Path,
    pub(crate) source: &'a str,
    pub(crate) errors: &'a mut Vec<ConfigError>,
}

impl Diag<'_> {
    /// Records an error at a span; an empty span (a default value) points at the file.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let err = if span.is_empty() && span.start == 0 {
            ConfigError::file(self.file, message)
        } else {
            ConfigError::at(self.file, self.source, span, message)
        };
        self.errors.push(err);
    }

    /// A (line, col) for warnings.
    pub(crate) fn position(&self, span: Range<usize>) -> String {
        let (line, col) = super::diag::line_col(self.source, span.start);
        format!("{}:{line}:{col}", self.file.display())
    }
}

/// Reads and parses one TOML file, or records why not.
pub(crate) fn parse_file<T: DeserializeOwned>(
    source: &Source,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, T)> {
    let text = match source.read(path) {
        Ok(text) => text,
        Err(err) => {
            errors.push(ConfigError::file(path, format!("cannot read file: {err}")));
            return None;
        }
    };
    match toml::from_str::<T>(&text) {
        Ok(value) => Some((text, value)),
        Err(err) => {
            errors.push(ConfigError::from_toml(path, &text, &err));
            None
        }
    }
}

/// Resolves a configured path against the config directory, folding `..` lexically
/// so that the embedded default works where no `config/` directory exists.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in base.join(path).components() {
        match part {
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn read_bytes(
    diag: &mut Diag<'_>,
    base: &Path,
    path: &Spanned<String>,
    what: &str,
) -> Option<Vec<u8>> {
    let full = resolve(base, path.get_ref());
    match super::read_limited(&full) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            diag.at(
                path.span(),
                format!("cannot read {what} {}: {err}", full.display()),
            );
            None
        }
    }
}
