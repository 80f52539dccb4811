//! An HTTP/1.1 answer, read by the HTTP driver's own reader in pieces of the size the first byte
//! gives.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::http1_answer(data);
});
