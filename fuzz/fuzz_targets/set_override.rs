//! `--set KEY=VALUE` arguments, one a line, parsed and applied to scenarios/verify.yaml.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::overrides(data);
});
