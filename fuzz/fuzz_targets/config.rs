//! Fuzz target `config`: the property checks live in `fuzz/checks/config.rs`, shared with the
//! seed replay that `cargo test` runs.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config(data));
