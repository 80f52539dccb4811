//! The `overhead:` section.

use std::time::Duration;

use super::model::{Arm, Claim, ClaimMetric, Overhead, Relaunch, ServiceSpec, Sweep};
use super::tree::{Node, Value};
use super::validate::{Cx, boolean, duration, integer, list, mapping, service, string, text, word};
use super::verify::http_url;
use crate::overhead::MIN_PAIRS;

const DEFAULT_TRIALS: usize = 10;
/// Longer than the 200 ms to 1 s batch delays scenarios use; see [`Overhead::settle`].
const DEFAULT_SETTLE: Duration = Duration::from_secs(1);
const DEFAULT_CLAIM: Claim = Claim {
    metric: ClaimMetric::Cpu,
    bound: 0.01,
};
/// Upper limit on trials per arm: a bound on the run's length, not a statistical one.
const MAX_TRIALS: i128 = 500;
/// The keys a sweep may vary: every point launches its arms from the base scenario's system
/// settings, so those cannot vary.
const SWEEPABLE: &[&str] = &["requests.", "load."];

pub(super) fn overhead(cx: &mut Cx, node: &Node) -> Option<Overhead> {
    const KEYS: &[&str] = &[
        "trials",
        "relaunch",
        "settle",
        "claim",
        "control",
        "treatment",
        "export",
        "sweep",
    ];
    let fields = mapping(cx, node, "overhead", Some(KEYS))?;
    let before = cx.problems.len();
    let trials = match fields.get("trials") {
        Some(node) => integer(
            cx,
            node,
            &fields.path("trials"),
            MIN_PAIRS as i128,
            MAX_TRIALS,
        )
        .and_then(|n| usize::try_from(n).ok()),
        None => Some(DEFAULT_TRIALS),
    };
    let relaunch = match fields.get("relaunch") {
        Some(node) => word(
            cx,
            node,
            &fields.path("relaunch"),
            &[
                ("every_pair", Relaunch::EveryPair),
                ("never", Relaunch::Never),
            ],
        ),
        None => Some(Relaunch::EveryPair),
    };
    let settle = match fields.get("settle") {
        Some(node) => duration(cx, node, &fields.path("settle"), false),
        None => Some(DEFAULT_SETTLE),
    };
    let claim = match fields.get("claim") {
        Some(node) => claim(cx, node, &fields.path("claim")),
        None => Some(DEFAULT_CLAIM),
    };
    let control = arm(cx, fields.get("control"), &fields.path("control"), false);
    let treatment = arm(cx, fields.get("treatment"), &fields.path("treatment"), true);
    let export = fields
        .get("export")
        .map(|node| http_url(cx, node, &fields.path("export")));
    let sweep = fields
        .get("sweep")
        .map(|node| sweep(cx, node, &fields.path("sweep")));
    if cx.problems.len() != before {
        return None;
    }
    Some(Overhead {
        trials: trials?,
        relaunch: relaunch?,
        settle: settle?,
        claim: claim?,
        control: control?,
        treatment: treatment?,
        export: export.flatten(),
        sweep: sweep.flatten(),
    })
}

fn claim(cx: &mut Cx, node: &Node, path: &str) -> Option<Claim> {
    let fields = mapping(cx, node, path, Some(&["metric", "bound"]))?;
    let metric = match fields.get("metric") {
        Some(node) => word(cx, node, &fields.path("metric"), ClaimMetric::NAMES),
        None => Some(DEFAULT_CLAIM.metric),
    };
    let bound = match fields.get("bound") {
        Some(node) => ratio(cx, node, &fields.path("bound")),
        None => Some(DEFAULT_CLAIM.bound),
    };
    Some(Claim {
        metric: metric?,
        bound: bound?,
    })
}

/// A positive relative bound: `1%` or `0.01`. A bare number of 1 or more is refused: `bound: 1`
/// more likely means 1% than 100%.
fn ratio(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    const WHAT: &str = "a share > 0 such as 1% or 0.01 (write 100% or more with %)";
    let value = match &node.value {
        Value::Float(x) if *x < 1.0 => Some(*x),
        Value::Str(s) => s
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map(|percent| percent / 100.0),
        _ => None,
    };
    match value {
        Some(x) if x.is_finite() && x > 0.0 => Some(x),
        _ => cx.expected(node, path, WHAT),
    }
}

fn arm(cx: &mut Cx, node: Option<&Node>, path: &str, tracing: bool) -> Option<Arm> {
    let default = Arm {
        tracing,
        engine: ServiceSpec::default(),
        gateway: ServiceSpec::default(),
    };
    let Some(node) = node else {
        return Some(default);
    };
    let fields = mapping(cx, node, path, Some(&["tracing", "engine", "gateway"]))?;
    let tracing = match fields.get("tracing") {
        Some(node) => boolean(cx, node, &fields.path("tracing")),
        None => Some(tracing),
    };
    let engine = service(cx, fields.get("engine"), &fields.path("engine"));
    let gateway = service(cx, fields.get("gateway"), &fields.path("gateway"));
    Some(Arm {
        tracing: tracing?,
        engine: engine?,
        gateway: gateway?,
    })
}

fn sweep(cx: &mut Cx, node: &Node, path: &str) -> Option<Sweep> {
    let fields = mapping(cx, node, path, Some(&["set", "values"]))?;
    let key_path = fields.path("set");
    let key = fields
        .required(cx, "set")
        .and_then(|node| string(cx, node, &key_path).map(|key| (node, key)));
    let values_path = fields.path("values");
    let values = fields.required(cx, "values").map(|node| {
        let values = list(cx, Some(node), &values_path, text);
        if values.is_empty() && matches!(node.value, Value::Seq(_)) {
            cx.err(node.origin, &values_path, "expected at least one value");
        }
        values
    });
    let (node, key) = key?;
    if !SWEEPABLE.iter().any(|prefix| key.starts_with(prefix)) || key == "load.protocol" {
        cx.err(
            node.origin,
            &key_path,
            format!(
                "{key:?} cannot be swept: the arms are launched from the scenario's system \
                 settings, so only keys under {} (but not load.protocol) may vary",
                SWEEPABLE.join(" or ")
            ),
        );
        return None;
    }
    for value in values.iter().flatten() {
        if let Err(error) = format!("{key}={value}").parse::<super::Override>() {
            cx.err(node.origin, &key_path, error.to_string());
            return None;
        }
    }
    Some(Sweep {
        key,
        values: values?,
    })
}
