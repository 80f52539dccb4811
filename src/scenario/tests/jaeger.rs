//! `system.managed.jaeger`: a Jaeger launched beside the services, the trace source by default,
//! of which only the query API may be chosen.

use super::*;

/// `BASE` with `jaeger:` (its value on line 4) under `system.managed` and the verify section given.
fn launched(jaeger: &str, verify: &str) -> String {
    edit(&[(
        "  managed: {}\n",
        &format!("  managed:\n    jaeger: {jaeger}\n"),
    )]) + verify
}

#[test]
fn a_launched_jaeger_is_the_trace_source_by_default() {
    for jaeger in ["{}", "", "{config: conf/jaeger.yaml}"] {
        let s = parse(
            "dir/x.yaml",
            &launched(jaeger, "verify: {traces: {}}\n"),
            &[],
        )
        .unwrap_or_else(|e| panic!("{jaeger:?}: {e}"));
        let System::Managed(managed) = &s.system else {
            panic!("managed")
        };
        let spec = managed.jaeger.as_ref().expect("jaeger");
        let config =
            (jaeger.contains("config")).then(|| Path::new("dir/conf/jaeger.yaml").to_owned());
        assert_eq!(spec.config, config, "relative to the scenario");
        let traces = s.verify.traces.expect("traces");
        assert_eq!(
            traces.source,
            TraceSourceSpec::ManagedJaeger {
                api: "auto".to_owned()
            }
        );
        // The bundled checks, logs included: the services are still the harness's.
        assert!(traces.logs && traces.chain.len() == 4, "{traces:?}");
    }
    let text = launched(
        "{}",
        "verify: {traces: {source: jaeger, jaeger: {api: v1}}}\n",
    );
    let traces = parse("x.yaml", &text, &[]).expect("valid").verify.traces;
    assert_eq!(
        traces.expect("traces").source,
        TraceSourceSpec::ManagedJaeger {
            api: "v1".to_owned()
        }
    );
    // Without it, nothing changes: the embedded receiver.
    let traces = parse("x.yaml", &(BASE.to_owned() + "verify: {traces: {}}\n"), &[])
        .expect("valid")
        .verify
        .traces
        .expect("traces");
    assert!(matches!(traces.source, TraceSourceSpec::Embedded { .. }));
}

#[test]
fn what_does_not_fit_a_launched_jaeger_is_named() {
    let traces = |section: &str| launched("{}", &format!("verify: {{traces: {section}}}\n"));
    assert_errors([
        (
            traces("{source: embedded}"),
            "x.yaml:15:27: verify.traces.source: the services export to the Jaeger the harness \
             launches (system.managed.jaeger); expected jaeger, or no source",
        ),
        (
            traces("{jaeger: {url: \"http://127.0.0.1:16686\"}}"),
            "x.yaml:15:28: verify.traces.jaeger.url: given, but the harness launches Jaeger \
             (system.managed.jaeger) and knows its loopback URL",
        ),
        (
            traces("{jaeger: {api: v2}}"),
            "x.yaml:15:33: verify.traces.jaeger.api: expected auto or v3 or v1, got \"v2\"",
        ),
        (
            traces("{receiver: {grpc: \"127.0.0.1:4317\"}}"),
            "x.yaml:15:29: verify.traces.receiver: given, but source is jaeger",
        ),
        (
            launched("{port: 1}", ""),
            "x.yaml:4:14: system.managed.jaeger.port: unknown key; expected one of: config",
        ),
        (
            launched("{config: 3}", ""),
            "x.yaml:4:22: system.managed.jaeger.config: expected a string, got 3",
        ),
        (
            edit(&[(
                "  managed: {}\n",
                "  managed:\n    tracing: false\n    jaeger: {}\n",
            )]),
            "x.yaml:5:5: system.managed.jaeger: needs tracing: the services would send it nothing",
        ),
        (
            launched("{}", "overhead: {}\n"),
            "x.yaml:15:11: system.managed.jaeger: does not apply to the overhead experiment: its \
             arms decide where spans go",
        ),
    ]);
}
