//! An answer of the Prometheus HTTP API: a query's or the target list.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::prometheus(data);
});
