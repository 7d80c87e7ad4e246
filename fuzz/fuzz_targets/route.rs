//! Fuzz target `route`: the property checks live in `portcullis::fuzzing::route`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::route(data));
