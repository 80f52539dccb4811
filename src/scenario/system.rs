//! The `system:` section: the services the harness launches (`managed`), with their arguments and
//! environment, or the URLs of ones already running (`external`).

use std::collections::BTreeMap;

use hyper::Uri;

use super::model::{Managed, Protocol, ServiceSpec, System};
use super::read::{Cx, boolean, join, mapping, strings, text};
use super::tree::{Node, Value};

pub(super) fn system(cx: &mut Cx, node: &Node, protocol: Option<Protocol>) -> Option<System> {
    let fields = mapping(cx, node, "system", Some(&["managed", "external"]))?;
    match (fields.has("managed"), fields.has("external")) {
        (true, false) => {
            let node = fields.entries.iter().find(|e| e.1 == "managed")?.2;
            managed(cx, node).map(System::Managed)
        }
        (false, true) => {
            let node = fields.entries.iter().find(|e| e.1 == "external")?.2;
            external(cx, node, protocol)
        }
        (both, _) => {
            let got = if both { "both" } else { "neither" };
            cx.err(
                node.origin,
                "system",
                format!("expected exactly one of managed, external, got {got}"),
            );
            None
        }
    }
}

fn managed(cx: &mut Cx, node: &Node) -> Option<Managed> {
    let fields = mapping(
        cx,
        node,
        "system.managed",
        Some(&["tracing", "engine", "gateway"]),
    )?;
    let tracing = match fields.get("tracing") {
        Some(node) => boolean(cx, node, &fields.path("tracing")),
        None => Some(true),
    };
    let engine = service(cx, fields.get("engine"), &fields.path("engine"));
    let gateway = service(cx, fields.get("gateway"), &fields.path("gateway"));
    Some(Managed {
        tracing: tracing?,
        engine: engine?,
        gateway: gateway?,
    })
}

pub(super) fn service(cx: &mut Cx, node: Option<&Node>, path: &str) -> Option<ServiceSpec> {
    let Some(node) = node else {
        return Some(ServiceSpec::default());
    };
    let fields = mapping(cx, node, path, Some(&["args", "env"]))?;
    let before = cx.problems.len();
    let args = strings(cx, fields.get("args"), &fields.path("args"), true);
    let mut env = BTreeMap::new();
    if let Some(node) = fields.get("env") {
        let env_path = fields.path("env");
        if let Some(vars) = mapping(cx, node, &env_path, None) {
            for (_, key, value) in &vars.entries {
                if let Some(value) = text(cx, value, &join(&env_path, key)) {
                    env.insert((*key).to_owned(), value);
                }
            }
        }
    }
    (cx.problems.len() == before).then_some(ServiceSpec { args, env })
}

fn external(cx: &mut Cx, node: &Node, protocol: Option<Protocol>) -> Option<System> {
    let path = "system.external";
    let fields = mapping(cx, node, path, Some(&["gateway", "engine"]))?;
    let gateway = fields
        .get("gateway")
        .map(|n| url(cx, n, &fields.path("gateway")));
    let engine = fields
        .get("engine")
        .map(|n| url(cx, n, &fields.path("engine")));
    let needed = match protocol {
        Some(Protocol::Http) if gateway.is_none() => Some(("gateway", "http")),
        Some(Protocol::Grpc) if engine.is_none() => Some(("engine", "grpc")),
        _ => None,
    };
    if let Some((key, protocol)) = needed {
        cx.err(
            node.origin,
            &fields.path(key),
            format!("required when load.protocol is {protocol}"),
        );
        return None;
    }
    // Outer `Some`: written; inner `None`: invalid, already reported.
    let valid = |url: Option<Option<Uri>>| match url {
        Some(None) => Err(()),
        url => Ok(url.flatten()),
    };
    Some(System::External {
        gateway: valid(gateway).ok()?,
        engine: valid(engine).ok()?,
    })
}

/// An `http://host:port` base URL; TLS is not supported by the load path.
fn url(cx: &mut Cx, node: &Node, path: &str) -> Option<Uri> {
    if let Value::Str(s) = &node.value
        && let Ok(uri) = s.parse::<Uri>()
        && uri.scheme_str() == Some("http")
        && uri.authority().is_some()
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
    {
        return Some(uri);
    }
    cx.expected(node, path, "an http:// URL such as http://127.0.0.1:8080")
}
