//! `system.external`: where the load goes (`target`, or the bundled `gateway` and `engine`), the
//! TLS it trusts and presents, and the HTTP versions it speaks.

use super::*;
use crate::load::HttpVersion;
use crate::tls::{Identity, TlsSpec};

fn external(s: &Scenario) -> &External {
    match &s.system {
        System::External(external) => external,
        other => panic!("an external system expected, got {other:?}"),
    }
}

/// `BASE` against an external system written as `system` (one line under `system:`).
fn with_system(system: &str) -> String {
    edit(&[("  managed: {}", system)])
}

#[test]
fn external_reads_target_tls_and_http_version() {
    let text = with_system(
        "  external:
    target: https://quotes.example:8443/api/
    gateway: http://127.0.0.1:8080
    engine: http://127.0.0.1:50051
    tls: {ca: certs/ca.pem, cert: certs/client.pem, key: /keys/client.key, insecure: true}
    http_version: 1.1",
    );
    let s = parse("conf/x.yaml", &text, &[]).expect("valid");
    let system = external(&s);
    let target = system.target.as_ref().expect("a target");
    assert_eq!(target.to_string(), "https://quotes.example:8443/api/");
    assert_eq!(target.path(), "/api/", "a path prefix is kept");
    // The target comes first for both protocols.
    assert_eq!(system.base(Protocol::Http), Some(target));
    assert_eq!(system.base(Protocol::Grpc), Some(target));
    assert_eq!(
        system.tls,
        TlsSpec {
            // Relative to the scenario file; absolute paths stay as written.
            ca: Some("conf/certs/ca.pem".into()),
            identity: Some(Identity {
                cert: "conf/certs/client.pem".into(),
                key: "/keys/client.key".into(),
            }),
            insecure: true,
        }
    );
    assert_eq!(system.http, HttpVersion::Http1);
}

#[test]
fn external_defaults_and_named_urls() {
    let s = parse(
        "x.yaml",
        &with_system("  external: {gateway: http://127.0.0.1:8080, engine: http://h:50051}"),
        &[],
    )
    .expect("valid");
    let system = external(&s);
    assert_eq!(system.target, None);
    assert_eq!(
        system.base(Protocol::Http).map(|u| u.to_string()),
        Some("http://127.0.0.1:8080/".to_owned())
    );
    assert_eq!(
        system.base(Protocol::Grpc).map(|u| u.to_string()),
        Some("http://h:50051/".to_owned())
    );
    assert_eq!(system.tls, TlsSpec::default());
    assert_eq!(system.http, HttpVersion::Auto);

    for (written, version) in [
        ("auto", HttpVersion::Auto),
        ("1.1", HttpVersion::Http1),
        ("\"1.1\"", HttpVersion::Http1),
        ("2", HttpVersion::Http2),
        ("\"2\"", HttpVersion::Http2),
    ] {
        let text = with_system(&format!(
            "  external: {{target: http://h:1, http_version: {written}}}"
        ));
        let s = parse("x.yaml", &text, &[]).expect("valid");
        assert_eq!(external(&s).http, version, "{written}");
    }
    // A gRPC load needs the engine's URL or a target.
    let text = edit(&[
        ("  managed: {}", "  external: {engine: http://h:50051}"),
        ("protocol: http", "protocol: grpc"),
    ]);
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(external(&s).base(Protocol::Http), None);
}

#[test]
fn bad_external_systems_say_where_and_what() {
    let cases = [
        (
            "  external: {target: ftp://h:1}",
            "x.yaml:3:22: system.external.target: expected an http:// or https:// URL such as \
             https://127.0.0.1:8443 (a path prefix is allowed), got \"ftp://h:1\"",
        ),
        (
            "  external: {target: \"http://h:1/api?x=1\"}",
            "x.yaml:3:22: system.external.target: expected an http:// or https:// URL such as \
             https://127.0.0.1:8443 (a path prefix is allowed), got \"http://h:1/api?x=1\"",
        ),
        (
            "  external: {target: /api}",
            "x.yaml:3:22: system.external.target: expected an http:// or https:// URL such as \
             https://127.0.0.1:8443 (a path prefix is allowed), got \"/api\"",
        ),
        (
            "  external: {target: http://h:1, engine: http://h:2/api}",
            "x.yaml:3:42: system.external.engine: expected an http:// or https:// URL such as \
             http://127.0.0.1:50051, got \"http://h:2/api\"",
        ),
        (
            "  external: {target: http://h:1, tls: {cert: c.pem}}",
            "x.yaml:3:39: system.external.tls: a client certificate needs both cert and key",
        ),
        (
            "  external: {target: http://h:1, tls: {key: k.pem}}",
            "x.yaml:3:39: system.external.tls: a client certificate needs both cert and key",
        ),
        (
            "  external: {target: http://h:1, tls: {insecure: yes}}",
            "x.yaml:3:50: system.external.tls.insecure: expected true or false, got \"yes\"",
        ),
        (
            "  external: {target: http://h:1, tls: {ca: [a.pem]}}",
            "x.yaml:3:44: system.external.tls.ca: expected a string, got a sequence",
        ),
        (
            "  external: {target: http://h:1, tls: {cafile: a.pem}}",
            "x.yaml:3:40: system.external.tls.cafile: unknown key; expected one of: ca, cert, \
             key, insecure",
        ),
        (
            "  external: {target: http://h:1, http_version: 3}",
            "x.yaml:3:48: system.external.http_version: expected auto, 1.1 or 2, got 3",
        ),
        (
            "  external: {target: http://h:1, http_version: h2}",
            "x.yaml:3:48: system.external.http_version: expected auto, 1.1 or 2, got \"h2\"",
        ),
        (
            "  external: {target: http://h:1, alpn: h2}",
            "x.yaml:3:34: system.external.alpn: unknown key; expected one of: target, gateway, \
             engine, tls, http_version",
        ),
        (
            "  external: http://h:1",
            "x.yaml:3:13: system.external: expected a mapping, got \"http://h:1\"",
        ),
    ];
    assert_errors(
        cases
            .into_iter()
            .map(|(system, expected)| (with_system(system), expected)),
    );
    let grpc = edit(&[
        ("  managed: {}", "  external: {gateway: http://h:1}"),
        ("protocol: http", "protocol: grpc"),
    ]);
    assert_errors([(
        grpc,
        "x.yaml:3:13: system.external.target: required when load.protocol is grpc (or \
         system.external.engine)",
    )]);
}
