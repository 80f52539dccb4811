//! A threshold expression (src/threshold/parse.rs); what parses round-trips through its canonical form.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::threshold(data);
});
