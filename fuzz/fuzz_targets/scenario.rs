//! A scenario file: YAML text to a validated scenario (src/scenario/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::scenario(data);
});
