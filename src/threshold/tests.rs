use super::*;

fn parsed(text: &str) -> Threshold {
    match Threshold::parse(text) {
        Ok(threshold) => threshold,
        Err(error) => panic!("{text:?} should parse: {error}"),
    }
}

#[test]
fn good_expressions() {
    use Metric::*;
    let table: &[(&str, Metric, Op, f64)] = &[
        ("p(99) < 50ms", LatencyPercentile(99.0), Op::Lt, 50_000.0),
        ("p(99)<50ms", LatencyPercentile(99.0), Op::Lt, 50_000.0),
        (
            "  p( 99 ) <  50ms ",
            LatencyPercentile(99.0),
            Op::Lt,
            50_000.0,
        ),
        (
            "p (99.9) <= 1.5s",
            LatencyPercentile(99.9),
            Op::Le,
            1_500_000.0,
        ),
        (
            "p(100) < 2m",
            LatencyPercentile(100.0),
            Op::Lt,
            120_000_000.0,
        ),
        ("p(0.1) > 250us", LatencyPercentile(0.1), Op::Gt, 250.0),
        ("p(50) >= 10µs", LatencyPercentile(50.0), Op::Ge, 10.0),
        (
            "service_p(95) < 20ms",
            ServicePercentile(95.0),
            Op::Lt,
            20_000.0,
        ),
        ("avg < 50 ms", Avg, Op::Lt, 50_000.0),
        ("min >= 0us", Min, Op::Ge, 0.0),
        ("max < .5s", Max, Op::Lt, 500_000.0),
        ("med == 3ms", Med, Op::Eq, 3_000.0),
        ("error_rate < 1%", ErrorRate, Op::Lt, 0.01),
        ("error_rate < 0.01", ErrorRate, Op::Lt, 0.01),
        ("error_rate == 0", ErrorRate, Op::Eq, 0.0),
        ("error_rate <= 100%", ErrorRate, Op::Le, 1.0),
        ("dropped_rate<0.5%", DroppedRate, Op::Lt, 0.005),
        ("achieved_rate >= 99%", AchievedRate, Op::Ge, 0.99),
        ("achieved_rate <= 110%", AchievedRate, Op::Le, 1.1),
        ("achieved_rate > 1", AchievedRate, Op::Gt, 1.0),
        ("rps >= 1000", Rps, Op::Ge, 1000.0),
        ("rps > 99.5", Rps, Op::Gt, 99.5),
        // As in k6, a latency without a unit is in milliseconds.
        ("p(95)<200", LatencyPercentile(95.0), Op::Lt, 200_000.0),
        (
            "service_p(99) <= 1.5",
            ServicePercentile(99.0),
            Op::Le,
            1_500.0,
        ),
        ("avg < 0.25", Avg, Op::Lt, 250.0),
        (
            "traces.visible_p99 < 5000",
            TracesVisible(99.0),
            Op::Lt,
            5e6,
        ),
    ];
    for (text, metric, op, bound) in table {
        let threshold = parsed(text);
        assert_eq!(threshold.metric, *metric, "{text}");
        assert_eq!(threshold.op, *op, "{text}");
        assert_eq!(threshold.bound, *bound, "{text}");
        if threshold.expression != text.trim() {
            // Only an implied unit rewrites the expression: it names the unit, and means the same.
            assert!(threshold.expression.ends_with("ms"), "{text}");
            assert_eq!(parsed(&threshold.expression), threshold, "{text}");
        }
        assert_eq!(text.parse::<Threshold>().as_ref(), Ok(&threshold));
    }
}

#[test]
fn bad_expressions_say_what_is_wrong() {
    let expected = "expected one of p(N), service_p(N), avg, min, max, med, error_rate, \
                    dropped_rate, achieved_rate, rps, traces.complete, traces.passed, \
                    traces.visible_pN, metrics.reconciled, stream.p(N), stream.first_message.p(N), stream.lost_rate, \
         stream.sequence_error_rate, stream.connect_error_rate, stream.traces.passed, pii.clean, memory.growth, \
         memory.growth(PROCESS)";
    let table: &[(&str, String)] = &[
        (
            "",
            r#""": empty threshold; expected METRIC OP VALUE, e.g. p(99) < 50ms"#.into(),
        ),
        (
            "p99 < 50ms",
            format!(r#""p99 < 50ms": unknown metric "p99"; {expected}"#),
        ),
        (
            "latency(99) < 50ms",
            format!(r#""latency(99) < 50ms": unknown metric "latency(99)"; {expected}"#),
        ),
        (
            "< 50ms",
            format!(r#""< 50ms": missing metric before the operator; {expected}"#),
        ),
        (
            "p < 50ms",
            r#""p < 50ms": p needs a percentile in parentheses, e.g. p(99)"#.into(),
        ),
        (
            "service_p(99 < 50ms",
            r#""service_p(99 < 50ms": unclosed parenthesis after service_p; expected service_p(N)"#
                .into(),
        ),
        (
            "avg(99) < 50ms",
            r#""avg(99) < 50ms": avg takes no argument; only p(N) and service_p(N) do"#.into(),
        ),
        (
            "p(0) < 50ms",
            r#""p(0) < 50ms": percentile 0 is out of range; expected 0 < N <= 100"#.into(),
        ),
        (
            "p(100.5) < 50ms",
            r#""p(100.5) < 50ms": percentile 100.5 is out of range; expected 0 < N <= 100"#
                .into(),
        ),
        (
            "p(-5) < 50ms",
            r#""p(-5) < 50ms": percentile -5 is out of range; expected 0 < N <= 100"#.into(),
        ),
        (
            "p(x) < 50ms",
            r#""p(x) < 50ms": percentile "x" is not a number; expected 0 < N <= 100"#.into(),
        ),
        (
            "p() < 50ms",
            r#""p() < 50ms": percentile "" is not a number; expected 0 < N <= 100"#.into(),
        ),
        (
            "p(99)",
            r#""p(99)": missing operator; expected METRIC OP VALUE with OP one of <, <=, >, >=, =="#
                .into(),
        ),
        (
            "p(99) 50ms",
            r#""p(99) 50ms": expected an operator (<, <=, >, >=, ==) after p(99), found "50ms""#
                .into(),
        ),
        (
            "p(99) = 50ms",
            r#""p(99) = 50ms": unknown operator "="; expected one of <, <=, >, >=, =="#.into(),
        ),
        (
            "p(99) => 50ms",
            r#""p(99) => 50ms": unknown operator "=>"; expected one of <, <=, >, >=, =="#.into(),
        ),
        (
            "p(99) <",
            r#""p(99) <": missing value after "<"; expected a duration such as 50ms"#.into(),
        ),
        (
            "error_rate <=",
            r#""error_rate <=": missing value after "<="; expected a percentage such as 1% or a ratio such as 0.01"#
                .into(),
        ),
        (
            "p(99) < fast",
            r#""p(99) < fast": value "fast" is not a number; expected a duration such as 50ms"#
                .into(),
        ),
        (
            "rps > 1.2.3",
            r#""rps > 1.2.3": value "1.2.3" is not a number; expected a number of requests per second such as 100"#
                .into(),
        ),
        (
            "p(99) < -5ms",
            r#""p(99) < -5ms": value "-5ms" is negative; no metric goes below 0"#.into(),
        ),
        (
            "rps > NaN",
            r#""rps > NaN": value "NaN" is not a finite number"#.into(),
        ),
        (
            "error_rate < inf",
            r#""error_rate < inf": value "inf" is not a finite number"#.into(),
        ),
        (
            "p(99) < 50%",
            r#""p(99) < 50%": p(99) is a latency and takes a duration (e.g. 50ms), not a percentage"#
                .into(),
        ),
        (
            "p(99) < 5h",
            r#""p(99) < 5h": unknown unit "h"; expected us, ms, s or m"#.into(),
        ),
        (
            "p(99) < 5e3ms",
            r#""p(99) < 5e3ms": unknown unit "e3ms"; expected us, ms, s or m"#.into(),
        ),
        (
            "error_rate < 50ms",
            r#""error_rate < 50ms": error_rate is a rate and takes a percentage (1%) or a ratio (0.01), not a duration"#
                .into(),
        ),
        (
            "dropped_rate < 1pct",
            r#""dropped_rate < 1pct": unknown unit "pct"; dropped_rate takes a percentage (1%) or a ratio (0.01)"#
                .into(),
        ),
        (
            "error_rate < 5",
            r#""error_rate < 5": ratio 5 is above 1; write 5% for a percentage"#.into(),
        ),
        (
            "error_rate < 150%",
            r#""error_rate < 150%": error_rate cannot exceed 100%, got 150%"#.into(),
        ),
        (
            "rps > 100ms",
            r#""rps > 100ms": rps takes a plain number of requests per second, not "ms""#.into(),
        ),
        (
            "p(99) < 50ms and avg < 10ms",
            r#""p(99) < 50ms and avg < 10ms": unexpected "and avg < 10ms" after the value; a threshold is a single METRIC OP VALUE"#
                .into(),
        ),
        (
            "p(99) < 50ms)",
            r#""p(99) < 50ms)": unexpected ")" after the value; a threshold is a single METRIC OP VALUE"#
                .into(),
        ),
        (
            "rps > 1e999",
            r#""rps > 1e999": rps takes a plain number of requests per second, not "e999""#.into(),
        ),
    ];
    assert!(table.len() >= 15);
    for (text, message) in table {
        match Threshold::parse(text) {
            Ok(threshold) => panic!("{text:?} should not parse, got {threshold:?}"),
            Err(error) => {
                let shown = error.to_string();
                assert!(
                    shown == *message || shown.ends_with(&format!(": {message}")),
                    "{text:?}\n  got:      {shown}\n  expected: {message}"
                );
            }
        }
    }
}

#[test]
fn errors_carry_the_problem_for_callers() {
    let error = Threshold::parse(" p(99) < 50h ").unwrap_err();
    assert_eq!(error.expression, "p(99) < 50h");
    assert_eq!(
        error.problem,
        Problem::UnknownDurationUnit {
            unit: "h".to_owned()
        }
    );

    // Too large to be a float at all, and large enough to overflow once scaled to µs.
    let huge = "9".repeat(400);
    let error = Threshold::parse(&format!("rps < {huge}")).unwrap_err();
    assert_eq!(error.problem, Problem::TooLarge { text: huge });
    let error = Threshold::parse(&format!("p(99) < 1{}m", "0".repeat(305))).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            r#""p(99) < 1{0}m": value "1{0}m" is too large"#,
            "0".repeat(305)
        )
    );
}

#[test]
fn boundary_equality_per_operator() {
    let bound_ms = 50.0;
    for (op, below, equal, above) in [
        ("<", true, false, false),
        ("<=", true, true, false),
        (">", false, false, true),
        (">=", false, true, true),
        ("==", false, true, false),
    ] {
        let threshold = parsed(&format!("p(99) {op} {bound_ms}ms"));
        for (measured, expected) in [(49_999.0, below), (50_000.0, equal), (50_001.0, above)] {
            assert_eq!(
                threshold.evaluate(Some(measured)).passed,
                Some(expected),
                "{measured} {op} 50ms"
            );
        }
    }
    // Rates compare as ratios: exactly 1% against "< 1%" fails, against "<= 0.01" passes.
    assert_eq!(
        parsed("error_rate < 1%").evaluate(Some(0.01)).passed,
        Some(false)
    );
    assert_eq!(
        parsed("error_rate <= 0.01").evaluate(Some(0.01)).passed,
        Some(true)
    );
    assert_eq!(
        parsed("error_rate == 0").evaluate(Some(0.0)).passed,
        Some(true)
    );
}

#[test]
fn nothing_measured_cannot_pass() {
    let threshold = parsed("p(99) < 50ms");
    for measured in [None, Some(f64::NAN)] {
        let evaluation = threshold.evaluate(measured);
        assert_eq!(evaluation.measured, None);
        assert_eq!(evaluation.passed, None);
        assert!(!evaluation.is_pass());
        assert_eq!(evaluation.to_string(), "p(99) < 50ms: no data ✗");
    }
}

#[test]
fn evaluation_display_uses_natural_units() {
    let cases: &[(&str, f64, &str)] = &[
        ("p(99) < 50ms", 43_200.0, "p(99) < 50ms: 43.2ms ✓"),
        ("p(99) < 50ms", 1_250_000.0, "p(99) < 50ms: 1.25s ✗"),
        ("service_p(50) < 1ms", 830.0, "service_p(50) < 1ms: 830us ✓"),
        ("avg < 1ms", 0.0, "avg < 1ms: 0us ✓"),
        ("error_rate < 1%", 0.0235, "error_rate < 1%: 2.35% ✗"),
        ("error_rate == 0", 0.000001, "error_rate == 0: 0.0001% ✗"),
        (
            "achieved_rate >= 99%",
            0.99712,
            "achieved_rate >= 99%: 99.71% ✓",
        ),
        ("rps >= 1000", 987.456, "rps >= 1000: 987.46 ✗"),
    ];
    for (text, measured, shown) in cases {
        assert_eq!(parsed(text).evaluate(Some(*measured)).to_string(), *shown);
    }
}

#[test]
fn a_failure_message_sets_the_measurement_beside_the_bound() {
    let cases: &[(&str, Option<f64>, &str)] = &[
        (
            "p(99) < 100ms",
            Some(1_520_000.0),
            "p(99) = 1.52s, bound < 100ms",
        ),
        (
            "error_rate<1%",
            Some(0.0235),
            "error_rate = 2.35%, bound < 1%",
        ),
        ("rps >= 1000", Some(987.456), "rps = 987.46, bound >= 1000"),
        (
            "metrics.reconciled",
            Some(0.0),
            "metrics.reconciled = false, bound == true",
        ),
        ("p(50) < 1us", None, "p(50): no data, bound < 1us"),
    ];
    for (text, measured, message) in cases {
        assert_eq!(against_bound(&parsed(text).evaluate(*measured)), *message);
    }
    // A result written by another version may hold an expression this one cannot parse.
    let foreign = Evaluation {
        expression: "p99.9 < 5ms".to_owned(),
        measured: Some(7_000.0),
        bound: 5_000.0,
        unit: Unit::Micros,
        passed: Some(false),
    };
    assert_eq!(against_bound(&foreign), "p99.9 < 5ms: measured 7ms");
}

#[test]
fn evaluation_serializes_for_result_json() {
    let passed = parsed("p(99) < 50ms").evaluate(Some(43_200.0));
    assert_eq!(
        serde_json::to_value(&passed).ok(),
        Some(serde_json::json!({
            "expression": "p(99) < 50ms", "measured": 43200.0, "bound": 50000.0,
            "unit": "us", "passed": true
        }))
    );
    let unknown = parsed("error_rate < 1%").evaluate(None);
    assert_eq!(
        serde_json::to_value(&unknown).ok(),
        Some(serde_json::json!({
            "expression": "error_rate < 1%", "measured": null, "bound": 0.01,
            "unit": "ratio", "passed": null
        }))
    );
}

#[test]
fn thresholds_deserialize_from_strings() {
    let list: Vec<Threshold> =
        serde_json::from_str(r#"["p(99) < 100ms", "error_rate < 1%"]"#).unwrap();
    assert_eq!(list, [parsed("p(99) < 0.1s"), parsed("error_rate < 0.01")]);
    assert_eq!(
        serde_json::to_string(&list).ok().as_deref(),
        Some(r#"["p(99) < 100ms","error_rate < 1%"]"#)
    );
    let error = serde_json::from_str::<Threshold>(r#""p99 < 1ms""#).unwrap_err();
    assert!(
        error.to_string().contains(r#"unknown metric "p99""#),
        "{error}"
    );
}

#[test]
fn canonical_form() {
    for (text, canonical) in [
        ("  p( 99 ) <  50ms ", "p(99) < 50ms"),
        ("p(99.9)<=1.5s", "p(99.9) <= 1.5s"),
        ("max < 2m", "max < 120s"),
        ("avg < 0.25ms", "avg < 250us"),
        ("med < 1.0005s", "med < 1.0005s"),
        ("med < 1000.5ms", "med < 1.0005s"),
        ("error_rate < 0.01", "error_rate < 1%"),
        ("dropped_rate<0.5%", "dropped_rate < 0.5%"),
        ("achieved_rate >= 99%", "achieved_rate >= 99%"),
        ("rps>=1000", "rps >= 1000"),
    ] {
        assert_eq!(parsed(text).to_string(), canonical);
        assert_eq!(
            parsed(text).metric.to_string(),
            parsed(canonical).metric.to_string()
        );
    }
}

/// A small deterministic generator, so failures reproduce without a seed in the output.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn round_trips(threshold: &Threshold) {
    let canonical = threshold.to_string();
    let again = Threshold::parse(&canonical)
        .unwrap_or_else(|error| panic!("{canonical:?} from {threshold:?}: {error}"));
    assert_eq!(&again, threshold, "{canonical}");
    assert_eq!(again.to_string(), canonical);
}

#[test]
fn display_round_trips() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let metrics = [
        "p(99)",
        "p(99.9)",
        "p(0.001)",
        "p(100)",
        "service_p(50)",
        "avg",
        "min",
        "max",
        "med",
        "error_rate",
        "dropped_rate",
        "achieved_rate",
        "rps",
    ];
    let ops = ["<", "<=", ">", ">=", "=="];
    let mut checked = 0;
    for _ in 0..20_000 {
        let metric = random.pick(&metrics);
        let op = random.pick(&ops);
        // Random digits with a random decimal point: the values people write, and worse.
        let digits: String = (0..1 + random.below(12))
            .map(|_| char::from(b'0' + random.below(10) as u8))
            .collect();
        let point = random.below(digits.len() + 1);
        let number = format!("{}.{}", &digits[..point], &digits[point..]);
        let unit = match metric {
            "rps" => "",
            "error_rate" | "dropped_rate" | "achieved_rate" => random.pick(&["", "%"]),
            _ => random.pick(&["", "us", "µs", "ms", "s", "m"]),
        };
        if let Ok(threshold) = Threshold::parse(&format!("{metric} {op} {number}{unit}")) {
            round_trips(&threshold);
            checked += 1;
        }
    }
    assert!(checked > 10_000, "only {checked} random thresholds parsed");
    // Ratios that only a bare ratio or a neighbouring percentage can express exactly.
    for bits in 0..20_000u64 {
        let ratio = f64::from_bits(0x3f50_0000_0000_0000 + bits * 0x0000_0123_4567_89ab);
        if ratio <= 1.0 {
            let threshold = parsed(&format!("error_rate < {ratio}"));
            round_trips(&threshold);
        }
        let percent = ratio * 100.0;
        if percent.is_finite() {
            round_trips(&parsed(&format!("achieved_rate > {percent}%")));
        }
    }
}

#[test]
fn parse_never_panics() {
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let pieces = [
        "p",
        "service_p",
        "avg",
        "error_rate",
        "rps",
        "(",
        ")",
        "<",
        ">",
        "=",
        "!",
        " ",
        "  ",
        "99",
        ".",
        "-",
        "+",
        "%",
        "ms",
        "us",
        "µs",
        "s",
        "m",
        "e",
        "NaN",
        "inf",
        "0",
        "1",
        "é",
        "💥",
        "\t",
        "\n",
        "\u{0}",
        "\"",
        "\\",
        ",",
        "9999999999999999999999999",
    ];
    for _ in 0..50_000 {
        let text: String = (0..random.below(10))
            .map(|_| random.pick(&pieces))
            .collect();
        if let Ok(threshold) = Threshold::parse(&text) {
            round_trips(&threshold);
            let _ = threshold.evaluate(Some(random.next() as f64)).to_string();
        }
    }
    for _ in 0..20_000 {
        let text: String = (0..random.below(16))
            .filter_map(|_| char::from_u32(random.below(0x11_0000) as u32))
            .collect();
        let _ = Threshold::parse(&text);
    }
}

#[test]
fn verification_metrics_parse_and_evaluate() {
    let complete = Threshold::parse("traces.complete >= 100%").expect("parses");
    assert_eq!(
        (complete.metric.clone(), complete.op, complete.bound),
        (Metric::TracesComplete, Op::Ge, 1.0)
    );
    assert!(complete.evaluate(Some(1.0)).is_pass());
    assert!(!complete.evaluate(Some(0.98)).is_pass());
    let visible = Threshold::parse("traces.visible_p99 < 5s").expect("parses");
    assert_eq!(visible.metric, Metric::TracesVisible(99.0));
    assert_eq!(visible.bound, 5e6);
    assert_eq!(visible.to_string(), "traces.visible_p99 < 5s");
    for (text, bound) in [
        ("metrics.reconciled", 1.0),
        ("metrics.reconciled == true", 1.0),
        ("metrics.reconciled==false", 0.0),
    ] {
        let t = Threshold::parse(text).expect("parses");
        assert_eq!(
            (t.metric.clone(), t.op, t.bound),
            (Metric::MetricsReconciled, Op::Eq, bound)
        );
        assert_eq!(Threshold::parse(&t.to_string()).expect("round trip"), t);
    }
    let reconciled = Threshold::parse("metrics.reconciled").expect("parses");
    assert!(reconciled.evaluate(Some(1.0)).is_pass());
    assert!(!reconciled.evaluate(Some(0.0)).is_pass());
    assert!(
        !reconciled.evaluate(None).is_pass(),
        "no metrics checked is not a pass"
    );
    assert_eq!(
        reconciled.evaluate(Some(0.0)).to_string(),
        "metrics.reconciled: false ✗"
    );
    for bad in [
        "metrics.reconciled < 1",
        "metrics.reconciled == yes",
        "traces.visible_p < 1s",
        "traces.visible_p101 < 1s",
        "traces.complete < 5s",
    ] {
        assert!(Threshold::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Threshold::parse("metrics.reconciled == 1")
            .expect_err("not a bool")
            .to_string(),
        "\"metrics.reconciled == 1\": metrics.reconciled and pii.clean are true or false: write one alone, or == true, or == false"
    );
}

#[test]
fn a_latency_without_a_unit_is_milliseconds_and_prints_with_its_unit() {
    let bare = parsed("p(95)<200");
    assert_eq!(bare, parsed("p(95) < 200ms"));
    assert_eq!(bare.bound, 200_000.0);
    // Every printer reads the expression: it names the unit the bound was taken in.
    assert_eq!(bare.expression, "p(95) < 200ms");
    assert_eq!(
        bare.evaluate(Some(250_000.0)).to_string(),
        "p(95) < 200ms: 250ms ✗"
    );
    assert_eq!(
        against_bound(&bare.evaluate(Some(150_000.0))),
        "p(95) = 150ms, bound < 200ms"
    );
    assert_eq!(parsed("max < 1.5").expression, "max < 1.5ms");
    // The number as written, not rescaled.
    assert_eq!(parsed("p(99) < 0.25").expression, "p(99) < 0.25ms");
    assert_eq!(parsed(" p(99)<=2000 ").expression, "p(99) <= 2000ms");
    assert_eq!(parsed("p(99) <= 2000").to_string(), "p(99) <= 2s");
    // Whatever is written, the expression parses back to the same threshold.
    let mut random = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..5_000 {
        let digits: String = (0..1 + random.below(10))
            .map(|_| char::from(b'0' + random.below(10) as u8))
            .collect();
        let point = random.below(digits.len() + 1);
        let text = format!("avg < {}.{}", &digits[..point], &digits[point..]);
        if let Ok(threshold) = Threshold::parse(&text) {
            assert_eq!(parsed(&threshold.expression), threshold, "{text}");
        }
    }
    // A bound written with its unit keeps the user's spelling.
    assert_eq!(parsed("p(95)<200ms").expression, "p(95)<200ms");
    assert_eq!(parsed("p(95)<0.2s").expression, "p(95)<0.2s");
}

#[test]
fn a_bare_number_on_a_rate_or_rps_keeps_its_meaning() {
    // Not milliseconds: a ratio, and requests per second.
    let rate = parsed("error_rate < 0.01");
    assert_eq!(
        (rate.bound, rate.expression.as_str()),
        (0.01, "error_rate < 0.01")
    );
    let achieved = parsed("achieved_rate >= 0.99");
    assert_eq!(achieved.bound, 0.99);
    let rps = parsed("rps > 200");
    assert_eq!((rps.bound, rps.expression.as_str()), (200.0, "rps > 200"));
    // A rate above 1 without % is still refused, not read as a count of something.
    assert!(Threshold::parse("error_rate < 200").is_err());
}

/// A valid scenario with thresholds on lines 14 (the kind's) and 15 (the run's).
const SCENARIO: &str = "\
name: base
system:
  managed: {}
load:
  protocol: http
  phases:
    - constant: {rate: 50, duration: 2s}
requests:
  - name: quote
    weight: 1
    body: {symbols: [AAPL], source_id: yahoo_finance}
    expect: {status: 200}
    thresholds:
      - KIND
thresholds: [\"error_rate < 1%\", RUN]
";

fn scenario_errors(kind: &str, run: &str, overrides: &[&str]) -> Result<usize, String> {
    let text = SCENARIO.replace("KIND", kind).replace("RUN", run);
    let overrides: Vec<crate::scenario::Override> = overrides
        .iter()
        .map(|o| o.parse().expect("override parses"))
        .collect();
    let scenario = crate::scenario::parse("x.yaml", &text, &overrides).expect("scenario reads");
    parse_all(&scenario)
        .map(|parsed| parsed.len())
        .map_err(|e| e.to_string())
}

#[test]
fn threshold_errors_name_the_file_line_column_and_key() {
    // No false alarm: good thresholds, including a unit-less latency, all parse.
    assert_eq!(scenario_errors("p(99) < 50", "\"p(95)<200\"", &[]), Ok(3));
    let message = scenario_errors("\"p(99) < 5h\"", "\"p99 < 5ms\"", &[]).expect_err("bad");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "every bad threshold is reported: {message}");
    assert_eq!(
        lines[0],
        "x.yaml:15:33: thresholds[1]: \"p99 < 5ms\": unknown metric \"p99\"; expected one of \
         p(N), service_p(N), avg, min, max, med, error_rate, dropped_rate, achieved_rate, rps, \
         traces.complete, traces.passed, traces.visible_pN, metrics.reconciled, stream.p(N), stream.first_message.p(N), stream.lost_rate, \
         stream.sequence_error_rate, stream.connect_error_rate, stream.traces.passed, pii.clean, memory.growth, \
         memory.growth(PROCESS)"
    );
    assert_eq!(
        lines[1],
        "x.yaml:14:9: requests[0].thresholds[0]: \"p(99) < 5h\": unknown unit \"h\"; expected \
         us, ms, s or m"
    );
    let message = scenario_errors("rps > 10", "\"rps > 1\"", &[]).expect_err("whole run");
    assert_eq!(
        message,
        "x.yaml:14:9: requests[0].thresholds[0]: rps is a property of the whole run; declare it \
         under thresholds"
    );
}

#[test]
fn a_threshold_from_a_set_is_reported_at_the_set() {
    let message = scenario_errors(
        "p(99) < 50ms",
        "\"rps > 1\"",
        &["thresholds.1=p(99) < fast"],
    )
    .expect_err("bad value from --set");
    assert_eq!(
        message,
        "--set thresholds.1: thresholds[1]: \"p(99) < fast\": value \"fast\" is not a number; \
         expected a duration such as 50ms"
    );
    assert_eq!(
        scenario_errors("p(99) < 50ms", "\"rps > 1\"", &["thresholds.1=p(99) < 1s"]),
        Ok(3)
    );
}

mod properties {
    //! Arbitrary expressions: a threshold or an error naming the expression, never a panic; and
    //! whatever parses round-trips through its canonical form.

    use proptest::prelude::*;

    use super::*;

    /// Pieces an expression is made of, so that most cases reach past the metric's name.
    const PIECES: &[&str] = &[
        "p(",
        "service_p(",
        ")",
        "avg",
        "med",
        "min",
        "max",
        "error_rate",
        "dropped_rate",
        "achieved_rate",
        "rps",
        "traces_complete",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "!=",
        "=",
        "%",
        "ms",
        "us",
        "µs",
        "s",
        "m",
        "e",
        "E",
        "-",
        "+",
        ".",
        " ",
        "true",
        "false",
        "nan",
        "inf",
        "0",
        "1",
        "99",
        "99.9",
        "1e308",
        "1e-320",
        "18446744073709551616",
    ];

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 2_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,40}") {
            match Threshold::parse(&text) {
                Ok(threshold) => round_trips(&threshold),
                Err(error) => prop_assert!(error.to_string().starts_with('"')),
            }
        }

        #[test]
        fn any_sequence_of_pieces_parses_or_is_refused(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 0..8)
        ) {
            if let Ok(threshold) = Threshold::parse(&pieces.concat()) {
                round_trips(&threshold);
            }
        }
    }
}
