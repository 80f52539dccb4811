//! What an HTTP/2 server sends the gRPC driver's own client on a connection with calls in flight.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::http2_server(data);
});
