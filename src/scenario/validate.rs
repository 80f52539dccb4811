//! The typed pass: from the position-carrying YAML tree to a [`Scenario`], checking types, ranges
//! and cross-field rules in one walk so that every problem is reported where its value came from.
//! It collects all problems instead of stopping at the first, so `harness validate` shows them all.
//!
//! This module reads the top level and the rules that span sections; each section has a module of
//! its own, and all of them read values through [`super::read`].

use super::model::{Call, GrpcMethod, Scenario, System, Verify};
use super::read::{Cx, mapping, name, string, thresholds};
use super::tree::{Node, Value};
use super::{checks, load, overhead, requests, system};

/// The whole document.
pub(super) fn scenario(cx: &mut Cx, root: &Node) -> Option<Scenario> {
    const KEYS: &[&str] = &[
        "name",
        "description",
        "system",
        "load",
        "requests",
        "thresholds",
        "verify",
        "overhead",
    ];
    if !matches!(root.value, Value::Map(_)) {
        return cx.expected(root, "", "a mapping at the top level");
    }
    let fields = mapping(cx, root, "", Some(KEYS))?;
    let name = fields
        .required(cx, "name")
        .and_then(|n| name(cx, n, "name", b"-"));
    let description = match fields.get("description") {
        Some(node) => string(cx, node, "description"),
        None => Some(String::new()),
    };
    let requests = fields
        .required(cx, "requests")
        .and_then(|n| requests::requests(cx, n));
    // Explicit request kinds say the protocol; the bundled shorthand needs `load.protocol`.
    let implied = requests
        .iter()
        .flatten()
        .find_map(|kind| kind.call.protocol());
    let load = fields
        .required(cx, "load")
        .and_then(|n| load::load(cx, n, implied, requests.is_some()));
    let system = fields
        .required(cx, "system")
        .and_then(|n| system::system(cx, n, load.as_ref().map(|l| l.protocol)));
    let thresholds = thresholds(cx, fields.get("thresholds"), "thresholds");
    // The defaults of the checks depend on the protocol and the kind of system.
    let verify = match (fields.get("verify"), &load, &system) {
        (Some(node), Some(load), Some(system)) => {
            let kinds: Vec<String> = requests.iter().flatten().map(|k| k.name.clone()).collect();
            let declared = checks::Declared {
                managed: matches!(system, System::Managed(_)),
                jaeger: matches!(system, System::Managed(m) if m.jaeger.is_some()),
                // The bundled API's shorthand, or its stream route (whose metrics rules the
                // bundled system has too).
                bundled: requests.iter().flatten().all(|kind| {
                    kind.call.protocol().is_none()
                        || matches!(&kind.call, crate::scenario::Call::WebSocket(call)
                            if call.url.text == engine::gateway::STREAM_ROUTE)
                }),
                kinds: &kinds,
            };
            checks::verify(cx, node, load.protocol, declared)
        }
        (Some(_), _, _) => None,
        (None, _, _) => Some(Verify::default()),
    };
    let traced = matches!(
        &verify,
        Some(Verify {
            traces: Some(_),
            ..
        })
    );
    // A subscription's updates are traces of their own, not one per request: the trace checks
    // of request kinds do not describe them.
    if let (true, Some(load)) = (traced, &load)
        && load.protocol == crate::scenario::Protocol::WebSocket
    {
        cx.err(
            root.origin,
            "verify.traces",
            "does not apply to websocket: kinds; their updates are traces of their own, \
             checked by verify.streams",
        );
    }
    if let (false, Some(kinds)) = (traced, &requests) {
        for (i, kind) in kinds.iter().enumerate() {
            if kind.trace_sample.is_some() {
                cx.err(
                    root.origin,
                    &format!("requests[{i}].trace_sample"),
                    "given, but there is no verify.traces section",
                );
            }
        }
    }
    let overhead = fields.get("overhead").and_then(|node| {
        if let Some(load) = &load
            && load.protocol == crate::scenario::Protocol::WebSocket
        {
            cx.err(
                node.origin,
                "overhead",
                "does not apply to websocket: kinds: its trials are request loads",
            );
        }
        let managed = matches!(system, Some(System::Managed(_)));
        if !managed && system.is_some() {
            cx.err(
                node.origin,
                "overhead",
                "needs system.managed: the harness launches both arms itself",
            );
        }
        // Tracing, its sampler and its destination are what the arms decide.
        if let Some(System::Managed(m)) = &system
            && m.jaeger.is_some()
        {
            cx.err(
                node.origin,
                "system.managed.jaeger",
                "does not apply to the overhead experiment: its arms decide where spans go",
            );
        }
        if let Some(System::Managed(m)) = &system
            && m.metrics_auth
        {
            cx.err(
                node.origin,
                "system.managed.metrics_auth",
                "does not apply to the overhead experiment: it reads no metrics endpoint",
            );
        }
        if let Some(System::Managed(m)) = &system {
            for (service, spec) in [("engine", &m.engine), ("gateway", &m.gateway)] {
                let decided = |key: &&String| {
                    *key == "OTEL_SDK_DISABLED"
                        || key.starts_with("OTEL_TRACES_SAMPLER")
                        || key.starts_with("OTEL_EXPORTER_OTLP")
                        || *key == "OTEL_TRACES_EXPORTER"
                };
                for key in spec.env.keys().filter(decided) {
                    cx.err(
                        node.origin,
                        &format!("system.managed.{service}.env.{key}"),
                        "decided by the overhead arms; set it under overhead.control, \
                         overhead.treatment or overhead.steps",
                    );
                }
            }
        }
        if fields.has("verify") {
            cx.err(
                node.origin,
                "overhead",
                "cannot be combined with verify: sampled requests would add work to one arm \
                     only; verify tracing in a scenario of its own",
            );
        }
        // Its arms are launched after the requests are rendered, and describe no methods.
        for name in requests
            .iter()
            .flatten()
            .filter_map(|kind| match &kind.call {
                Call::Grpc(call) => match &call.method {
                    GrpcMethod::Reflection(name) => Some(name),
                    GrpcMethod::Resolved(_) => None,
                },
                _ => None,
            })
        {
            cx.problems.push(name.problem(
                "reflection: true does not apply to the overhead experiment: give the \
                 method's proto",
            ));
        }
        overhead::overhead(cx, node)
    });
    Some(Scenario {
        name: name?,
        description: description?,
        system: system?,
        load: load?,
        requests: requests?,
        thresholds,
        verify: verify?,
        overhead,
    })
}
