//! Fuzz target `path`: the property checks live in `portcullis::fuzzing::path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::path(data));
