//! A stored latency histogram (HdrHistogram V2, base64 in result.json).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::histogram(data);
});
