//! Fuzz target `headers`: the property checks live in `portcullis::fuzzing::headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::headers(data));
