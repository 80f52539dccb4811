//! Arbitrary scenario text and `--set` overrides: a scenario or problems, never a panic; and a
//! scenario read is within the limits the load core relies on.

use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The scalars of `load:` and of a kind that `--set` most often changes.
const KEYS: &[&str] = &[
    "load.phases.0.constant.rate",
    "load.phases.0.constant.duration",
    "load.phases.1.ramp.from",
    "load.warmup",
    "load.timeout",
    "load.connections",
    "load.max_in_flight",
    "load.seed",
    "load.arrivals",
    "requests.0.weight",
    "requests.0.body.window",
    "requests.1.weight",
    "name",
    "thresholds.0",
];

/// Values that sit on or across the limits, as numbers, durations and odd YAML.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:e}")),
        (
            any::<u32>(),
            prop::sample::select(&["us", "ms", "s", "m", "h", ""][..])
        )
            .prop_map(|(n, unit)| format!("{n}{unit}")),
        Just("18446744073709551616".to_owned()),
        Just("1e308".to_owned()),
        Just(".nan".to_owned()),
        Just("~".to_owned()),
        "\\PC{0,16}",
    ]
}

/// What a scenario that was read promises the load core.
fn within_limits(s: &Scenario) {
    assert!((1..=10_000).contains(&s.load.connections));
    assert!((1..=1_000_000).contains(&s.load.max_in_flight));
    let day = Duration::from_secs(24 * 3600);
    assert!(s.load.warmup <= day && s.load.timeout <= day);
    let rate = |r: f64| r > 0.0 && r <= 1e6;
    for phase in &s.load.phases {
        match *phase {
            Phase::Constant { rate: r, duration } => assert!(rate(r) && duration <= day),
            Phase::Ramp { from, to, duration } => {
                assert!(rate(from) && rate(to) && duration <= day);
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_read_or_refused(text in "\\PC{0,120}") {
        if let Ok(scenario) = parse("x.yaml", &text, &[]) {
            within_limits(&scenario);
        }
    }

    #[test]
    fn a_valid_file_edited_anywhere_is_read_or_refused(
        at in 0..BASE.len(),
        cut in 0usize..12,
        insert in "[ -~\n]{0,12}",
    ) {
        let mut text = BASE.to_owned();
        text.replace_range(at..(at + cut).min(BASE.len()), &insert);
        if let Ok(scenario) = parse("x.yaml", &text, &[]) {
            within_limits(&scenario);
        }
    }

    #[test]
    fn any_set_text_parses_or_is_refused(text in "\\PC{0,60}") {
        if let Ok(o) = text.parse::<Override>()
            && let Ok(scenario) = parse("x.yaml", BASE, &[o])
        {
            within_limits(&scenario);
        }
    }

    #[test]
    fn sets_of_known_keys_are_applied_or_refused(
        sets in prop::collection::vec((prop::sample::select(KEYS), value()), 1..4)
    ) {
        let overrides: Vec<Override> = sets
            .iter()
            .filter_map(|(key, value)| format!("{key}={value}").parse().ok())
            .collect();
        match parse("x.yaml", BASE, &overrides) {
            Ok(scenario) => within_limits(&scenario),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}
