//! The `overhead:` section.

use std::time::Duration;

use stats::paired::MIN_PAIRS;

use super::model::{
    Arm, Claim, ClaimMetric, Execution, Instructions, Overhead, Relaunch, ServiceSpec, Step, Sweep,
};
use super::read::{
    Cx, Fields, boolean, duration, http_url, index, integer, list, mapping, rate, sequence, string,
    text, word,
};
use super::system::service;
use super::tree::{Node, Value};

const DEFAULT_TRIALS: usize = 10;
/// Longer than the 200 ms to 1 s batch delays scenarios use; see [`Overhead::settle`].
const DEFAULT_SETTLE: Duration = Duration::from_secs(1);
const DEFAULT_CLAIM: Claim = Claim {
    metric: ClaimMetric::Cpu,
    bound: 0.01,
};
/// Upper limit on trials per arm: a bound on the run's length, not a statistical one.
const MAX_TRIALS: i128 = 500;
const DEFAULT_INSTRUCTIONS: Instructions = Instructions {
    requests: 400,
    rate: 20.0,
    repeats: 3,
};
/// Under valgrind a request costs tens of times its native CPU: keep counting runs short.
const MAX_INSTRUCTION_REQUESTS: i128 = 100_000;
const MAX_INSTRUCTION_RATE: f64 = 1_000.0;
const MAX_INSTRUCTION_REPEATS: i128 = 20;
/// Arms between control and treatment: each is one more system under the same load at once.
const MAX_STEPS: usize = 6;
/// The keys a sweep may vary: every point launches its arms from the base scenario's system
/// settings, so those cannot vary.
const SWEEPABLE: &[&str] = &["requests.", "load."];

pub(super) fn overhead(cx: &mut Cx, node: &Node) -> Option<Overhead> {
    const KEYS: &[&str] = &[
        "trials",
        "execution",
        "relaunch",
        "settle",
        "claim",
        "control",
        "treatment",
        "export",
        "sweep",
        "instructions",
        "steps",
    ];
    let fields = mapping(cx, node, "overhead", Some(KEYS))?;
    let before = cx.problems.len();
    let trials = fields.read_or(cx, "trials", DEFAULT_TRIALS, |cx, node, path| {
        integer(cx, node, path, MIN_PAIRS as i128, MAX_TRIALS).and_then(|n| usize::try_from(n).ok())
    });
    let execution = fields.read_or(cx, "execution", Execution::Duet, |cx, node, path| {
        let words = [
            ("duet", Execution::Duet),
            ("alternating", Execution::Alternating),
        ];
        word(cx, node, path, &words)
    });
    let relaunch = fields.read_or(cx, "relaunch", Relaunch::EveryPair, |cx, node, path| {
        let words = [
            ("every_pair", Relaunch::EveryPair),
            ("never", Relaunch::Never),
        ];
        word(cx, node, path, &words)
    });
    let settle = fields.read_or(cx, "settle", DEFAULT_SETTLE, |cx, node, path| {
        duration(cx, node, path, false)
    });
    let claim = fields.read_or(cx, "claim", DEFAULT_CLAIM, claim);
    let control = arm(cx, fields.get("control"), &fields.path("control"), false);
    let treatment = arm(cx, fields.get("treatment"), &fields.path("treatment"), true);
    let export = fields
        .get("export")
        .map(|node| http_url(cx, node, &fields.path("export")));
    let sweep = fields
        .get("sweep")
        .map(|node| sweep(cx, node, &fields.path("sweep")));
    let instructions = fields
        .get("instructions")
        .map(|node| instructions(cx, node, &fields.path("instructions")));
    let steps = match fields.get("steps") {
        Some(node) => {
            let steps = steps(cx, node, &fields.path("steps"));
            if execution == Some(Execution::Alternating)
                && steps.as_ref().is_some_and(|s| !s.is_empty())
            {
                cx.err(
                    node.origin,
                    &fields.path("steps"),
                    "steps need execution: duet (every arm under the same requests at once)",
                );
            }
            steps
        }
        None => Some(Vec::new()),
    };
    if cx.problems.len() != before {
        return None;
    }
    Some(Overhead {
        trials: trials?,
        execution: execution?,
        relaunch: relaunch?,
        settle: settle?,
        claim: claim?,
        control: control?,
        treatment: treatment?,
        steps: steps?,
        export: export.flatten(),
        sweep: sweep.flatten(),
        instructions: instructions.flatten(),
    })
}

/// `instructions: {requests, rate, repeats}`, each optional; `instructions: true` for the
/// defaults.
fn instructions(cx: &mut Cx, node: &Node, path: &str) -> Option<Instructions> {
    match node.value {
        Value::Bool(true) => return Some(DEFAULT_INSTRUCTIONS),
        Value::Bool(false) => return None,
        Value::Map(_) | Value::Null => {}
        _ => {
            return cx.expected(
                node,
                path,
                "true, false, or a mapping of requests, rate, repeats",
            );
        }
    }
    let fields = mapping(cx, node, path, Some(&["requests", "rate", "repeats"]))?;
    let requests = fields.read_or(
        cx,
        "requests",
        DEFAULT_INSTRUCTIONS.requests,
        |cx, node, path| {
            integer(cx, node, path, MIN_PAIRS as i128, MAX_INSTRUCTION_REQUESTS)
                .and_then(|n| u64::try_from(n).ok())
        },
    );
    let rate = fields.read_or(cx, "rate", DEFAULT_INSTRUCTIONS.rate, |cx, node, path| {
        let r = rate(cx, node, path)?;
        if r <= MAX_INSTRUCTION_RATE {
            Some(r)
        } else {
            cx.expected(node, path, "at most 1000 requests per second")
        }
    });
    let repeats = fields.read_or(
        cx,
        "repeats",
        DEFAULT_INSTRUCTIONS.repeats,
        |cx, node, path| {
            integer(cx, node, path, 1, MAX_INSTRUCTION_REPEATS)
                .and_then(|n| usize::try_from(n).ok())
        },
    );
    Some(Instructions {
        requests: requests?,
        rate: rate?,
        repeats: repeats?,
    })
}

fn claim(cx: &mut Cx, node: &Node, path: &str) -> Option<Claim> {
    let fields = mapping(cx, node, path, Some(&["metric", "bound"]))?;
    let metric = fields.read_or(cx, "metric", DEFAULT_CLAIM.metric, |cx, node, path| {
        word(cx, node, path, ClaimMetric::NAMES)
    });
    let bound = fields.read_or(cx, "bound", DEFAULT_CLAIM.bound, ratio);
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
    let Some(node) = node else {
        return Some(Arm {
            tracing,
            engine: ServiceSpec::default(),
            gateway: ServiceSpec::default(),
        });
    };
    let fields = mapping(cx, node, path, Some(&["tracing", "engine", "gateway"]))?;
    arm_fields(cx, &fields, tracing)
}

fn arm_fields(cx: &mut Cx, fields: &Fields<'_>, tracing: bool) -> Option<Arm> {
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

/// `steps:`, each `{name, tracing, engine, gateway}` with tracing on unless it says otherwise.
fn steps(cx: &mut Cx, node: &Node, path: &str) -> Option<Vec<Step>> {
    let items = sequence(cx, node, path)?;
    if items.len() > MAX_STEPS {
        cx.err(
            node.origin,
            path,
            format!("at most {MAX_STEPS} steps: each is one more copy of the system under load"),
        );
        return None;
    }
    let mut steps: Vec<Step> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = index(path, i);
        let Some(fields) = mapping(
            cx,
            item,
            &item_path,
            Some(&["name", "tracing", "engine", "gateway"]),
        ) else {
            continue;
        };
        let name_path = fields.path("name");
        let name = fields
            .required(cx, "name")
            .and_then(|node| string(cx, node, &name_path).map(|name| (node, name)));
        let arm = arm_fields(cx, &fields, true);
        let Some((name_node, name)) = name else {
            continue;
        };
        let clash = if ["control", "treatment"].contains(&name.as_str()) {
            Some("names an arm of its own".to_owned())
        } else if name.trim().is_empty() {
            Some("is empty".to_owned())
        } else {
            steps
                .iter()
                .position(|s| s.name == name)
                .map(|first| format!("repeats the name of {}", index(path, first)))
        };
        if let Some(clash) = clash {
            cx.err(name_node.origin, &name_path, format!("{name:?} {clash}"));
            continue;
        }
        if let Some(arm) = arm {
            steps.push(Step { name, arm });
        }
    }
    (steps.len() == items.len()).then_some(steps)
}

fn sweep(cx: &mut Cx, node: &Node, path: &str) -> Option<Sweep> {
    let fields = mapping(cx, node, path, Some(&["set", "values"]))?;
    let key_path = fields.path("set");
    let key = fields
        .required(cx, "set")
        .and_then(|node| string(cx, node, &key_path).map(|key| (node, key)));
    let values_path = fields.path("values");
    let values = fields.required(cx, "values").map(|node| {
        let values = list(cx, Some(node), &values_path, |cx, item, at| {
            text(cx, item, at).map(|value| (item.origin, cx.located(item, at, value)))
        });
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
    let mut valid = true;
    for (origin, value) in values.iter().flatten() {
        let setting = format!("{key}={}", value.value);
        if let Err(error) = setting.parse::<super::Override>() {
            let why = match error {
                super::ScenarioError::Invalid(problems) => problems
                    .into_iter()
                    .map(|problem| problem.message)
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            cx.err(*origin, &value.key, format!("{setting}: {why}"));
            valid = false;
        }
    }
    if !valid {
        return None;
    }
    let values = values.map(|values| values.into_iter().map(|(_, value)| value).collect());
    Some(Sweep {
        key,
        values: values?,
    })
}
