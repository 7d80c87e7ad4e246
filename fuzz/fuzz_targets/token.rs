//! Fuzz target `token`: the property checks live in `portcullis::fuzzing::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::token(data));
