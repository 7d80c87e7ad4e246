//! Property checks over raw bytes, shared by the cargo-fuzz targets in `fuzz/` and by the
//! seed replay (`tests/it/fuzz_seeds.rs`) that runs under a stable `cargo test`.
//!
//! Included by path into both, so they need only the library's public API; never compiled
//! into the binary. Each target uses one check, so the others are dead code there.
//!
//! Each check turns bytes into an input, runs the real code and asserts what must hold for
//! every input, not only that nothing panics. A failed assertion is a finding.

#![allow(dead_code)]

pub(crate) mod config;
pub(crate) mod headers;
mod input;
pub(crate) mod path;
pub(crate) mod route;
pub(crate) mod token;

pub use config::config;
pub use headers::headers;
pub use path::path;
pub use route::route;
pub use token::token;

/// A property check over one fuzz input; panics on a finding.
pub type Check = fn(&[u8]);

/// Every target by name, as `fuzz/run.sh` and the corpus replay know them.
pub const TARGETS: [(&str, Check); 5] = [
    ("path", path),
    ("route", route),
    ("token", token),
    ("headers", headers),
    ("config", config),
];
