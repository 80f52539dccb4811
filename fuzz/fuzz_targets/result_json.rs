//! A stored result.json, read, rendered and compared as `harness report` and `harness compare` do.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::stored_result(data);
});
