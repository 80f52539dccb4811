//! Pass/fail thresholds in k6 syntax (`p(99) < 50ms`, `error_rate < 1%`): parsed once when the
//! scenario is loaded, so a typo fails validation instead of a finished run, and evaluated against
//! the run's measurements for the report and `result.json`.
//!
//! Values are normalised to one unit per kind of metric, so evaluation is a plain comparison:
//! latencies in microseconds, rates as ratios (0.01 for 1%), `rps` in requests per second.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The metrics, listed in every "unknown metric" error so the fix is in the message.
const METRICS: &str = "p(N), service_p(N), avg, min, max, med, error_rate, dropped_rate, \
     achieved_rate, rps, traces.complete, traces.passed, traces.visible_pN, metrics.reconciled";
const OPERATORS: &str = "<, <=, >, >=, ==";

/// One parsed threshold: `METRIC OP VALUE`.
///
/// Equality is by meaning (metric, operator, bound), not by the source text, so `p(99)<50ms`
/// equals `p(99) < 0.05s`; this is what makes `parse(&t.to_string()) == t` hold.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// The expression as written (trimmed): how the user recognises it in reports.
    pub expression: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: microseconds, a ratio, or requests per second.
    pub bound: f64,
}

impl PartialEq for Threshold {
    fn eq(&self, other: &Self) -> bool {
        self.metric == other.metric && self.op == other.op && self.bound == other.bound
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// `p(N)`: latency percentile from the intended send time (includes queueing delay, so
    /// coordinated omission cannot hide a stall).
    LatencyPercentile(f64),
    /// `service_p(N)`: percentile of the service time, from the actual send.
    ServicePercentile(f64),
    Avg,
    Min,
    Max,
    Med,
    /// Unexpected outcomes / requests sent.
    ErrorRate,
    /// Dropped sends / requests due.
    DroppedRate,
    /// Achieved rate / target rate.
    AchievedRate,
    /// Achieved requests per second.
    Rps,
    /// Sampled requests whose trace arrived complete / sampled requests.
    TracesComplete,
    /// Sampled requests whose trace passed every check / sampled requests.
    TracesPassed,
    /// `traces.visible_pN`: percentile of the time from sending a sampled request until its trace
    /// was complete in the trace source.
    TracesVisible(f64),
    /// Whether every metrics check held: `metrics.reconciled` alone, or `== true|false`.
    MetricsReconciled,
}

/// The unit a metric's bound and measurement are in; also written to `result.json` so a reader
/// knows what `measured` and `bound` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Unit {
    #[serde(rename = "us")]
    Micros,
    #[serde(rename = "ratio")]
    Ratio,
    #[serde(rename = "req/s")]
    PerSecond,
    /// 1 for true, 0 for false.
    #[serde(rename = "bool")]
    Bool,
}

impl Metric {
    /// The unit of the metric's bound and measurement.
    pub fn unit(&self) -> Unit {
        match self {
            Metric::LatencyPercentile(_)
            | Metric::ServicePercentile(_)
            | Metric::Avg
            | Metric::Min
            | Metric::Max
            | Metric::Med
            | Metric::TracesVisible(_) => Unit::Micros,
            Metric::ErrorRate
            | Metric::DroppedRate
            | Metric::AchievedRate
            | Metric::TracesComplete
            | Metric::TracesPassed => Unit::Ratio,
            Metric::Rps => Unit::PerSecond,
            Metric::MetricsReconciled => Unit::Bool,
        }
    }

    /// The metric in threshold syntax (`p(99)`, `error_rate`); the same as `Display`.
    pub fn describe(&self) -> String {
        self.to_string()
    }

    /// The metrics without an argument, by name.
    fn plain(name: &str) -> Option<Metric> {
        Some(match name {
            "avg" => Metric::Avg,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "med" => Metric::Med,
            "error_rate" => Metric::ErrorRate,
            "dropped_rate" => Metric::DroppedRate,
            "achieved_rate" => Metric::AchievedRate,
            "rps" => Metric::Rps,
            "traces.complete" => Metric::TracesComplete,
            "traces.passed" => Metric::TracesPassed,
            "metrics.reconciled" => Metric::MetricsReconciled,
            _ => return None,
        })
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::LatencyPercentile(n) => write!(f, "p({n})"),
            Metric::ServicePercentile(n) => write!(f, "service_p({n})"),
            Metric::Avg => f.write_str("avg"),
            Metric::Min => f.write_str("min"),
            Metric::Max => f.write_str("max"),
            Metric::Med => f.write_str("med"),
            Metric::ErrorRate => f.write_str("error_rate"),
            Metric::DroppedRate => f.write_str("dropped_rate"),
            Metric::AchievedRate => f.write_str("achieved_rate"),
            Metric::Rps => f.write_str("rps"),
            Metric::TracesComplete => f.write_str("traces.complete"),
            Metric::TracesPassed => f.write_str("traces.passed"),
            Metric::TracesVisible(n) => write!(f, "{VISIBLE}{n}"),
            Metric::MetricsReconciled => f.write_str("metrics.reconciled"),
        }
    }
}

/// A comparison operator; the threshold passes when `measured OP bound` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    /// Exact float equality: meant for bounds like `error_rate == 0`.
    Eq,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    pub fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Op::Lt => measured < bound,
            Op::Le => measured <= bound,
            Op::Gt => measured > bound,
            Op::Ge => measured >= bound,
            Op::Eq => measured == bound,
        }
    }

    fn from_symbol(symbol: &str) -> Option<Op> {
        Some(match symbol {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A threshold that does not parse: the expression, quoted, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{expression:?}: {problem}")]
pub struct ThresholdError {
    pub expression: String,
    pub problem: Problem,
}

/// What is wrong with a threshold expression, and what was expected instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("empty threshold; expected METRIC OP VALUE, e.g. p(99) < 50ms")]
    Empty,
    #[error("missing metric before the operator; expected one of {METRICS}")]
    MissingMetric,
    #[error("unknown metric {metric:?}; expected one of {METRICS}")]
    UnknownMetric { metric: String },
    #[error("{metric} needs a percentile in parentheses, e.g. {metric}(99)")]
    MissingPercentile { metric: &'static str },
    #[error("unclosed parenthesis after {metric}; expected {metric}(N)")]
    UnclosedParenthesis { metric: &'static str },
    #[error("{metric} takes no argument; only p(N) and service_p(N) do")]
    UnexpectedArgument { metric: &'static str },
    #[error("percentile {text:?} is not a number; expected 0 < N <= 100")]
    PercentileNotANumber { text: String },
    #[error("percentile {text} is out of range; expected 0 < N <= 100")]
    PercentileOutOfRange { text: String },
    #[error("missing operator; expected METRIC OP VALUE with OP one of {OPERATORS}")]
    MissingOperator,
    #[error("expected an operator ({OPERATORS}) after {metric}, found {found:?}")]
    ExpectedOperator { metric: String, found: String },
    #[error("unknown operator {op:?}; expected one of {OPERATORS}")]
    UnknownOperator { op: String },
    #[error("missing value after {op:?}; expected {expected}")]
    MissingValue {
        op: &'static str,
        expected: &'static str,
    },
    #[error("value {text:?} is not a number; expected {expected}")]
    NotANumber {
        text: String,
        expected: &'static str,
    },
    #[error("value {text:?} is not a finite number")]
    NotFinite { text: String },
    #[error("value {text:?} is negative; no metric goes below 0")]
    Negative { text: String },
    #[error("value {text:?} is too large")]
    TooLarge { text: String },
    #[error("the bound of a latency metric needs a unit (us, ms, s, m)")]
    LatencyNeedsUnit,
    #[error("{metric} is a latency and takes a duration (e.g. 50ms), not a percentage")]
    PercentageOnLatency { metric: String },
    #[error("unknown unit {unit:?}; expected us, ms, s or m")]
    UnknownDurationUnit { unit: String },
    #[error("{metric} is a rate and takes a percentage (1%) or a ratio (0.01), not a duration")]
    DurationOnRate { metric: String },
    #[error("unknown unit {unit:?}; {metric} takes a percentage (1%) or a ratio (0.01)")]
    UnknownRateUnit { metric: String, unit: String },
    #[error("ratio {text} is above 1; write {text}% for a percentage")]
    RatioAboveOne { text: String },
    #[error("{metric} cannot exceed 100%, got {text}%")]
    PercentageAbove100 { metric: String, text: String },
    #[error("rps takes a plain number of requests per second, not {unit:?}")]
    UnitOnRps { unit: String },
    #[error("unexpected {rest:?} after the value; a threshold is a single METRIC OP VALUE")]
    TrailingGarbage { rest: String },
    #[error("metrics.reconciled is true or false: write it alone, or == true, or == false")]
    NotABool,
}

/// The prefix of the trace visibility percentiles, `traces.visible_p99`.
const VISIBLE: &str = "traces.visible_p";

/// Microseconds per duration unit; the units `engine::duration::parse_duration` accepts. Parsed
/// here rather than through it so the bound stays exact (no rounding through `Duration`'s
/// nanoseconds) and errors can name the threshold.
fn micros_per(unit: &str) -> Option<f64> {
    match unit {
        "us" | "µs" => Some(1.0),
        "ms" => Some(1e3),
        "s" => Some(1e6),
        "m" => Some(6e7),
        _ => None,
    }
}

impl Threshold {
    /// Parses `METRIC OP VALUE`; whitespace around and inside the parts is ignored.
    pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
        let expression = text.trim();
        let fail = |problem| ThresholdError {
            expression: expression.to_owned(),
            problem,
        };
        let (metric, rest) = parse_metric(expression).map_err(fail)?;
        if metric.unit() == Unit::Bool {
            let (op, bound) = parse_truth(rest).map_err(fail)?;
            return Ok(Threshold {
                expression: expression.to_owned(),
                metric,
                op,
                bound,
            });
        }
        let (op, rest) = parse_op(&metric, rest).map_err(fail)?;
        let bound = parse_bound(metric, op, rest).map_err(fail)?;
        Ok(Threshold {
            expression: expression.to_owned(),
            metric,
            op,
            bound,
        })
    }

    /// Compares a measurement, in the metric's unit, with the bound. `None` (nothing measured,
    /// e.g. no responses) yields `passed: None`: cannot tell, which is reported as not passed.
    pub fn evaluate(&self, measured: Option<f64>) -> Evaluation {
        let measured = measured.filter(|value| !value.is_nan());
        Evaluation {
            expression: self.expression.clone(),
            measured,
            bound: self.bound,
            unit: self.metric.unit(),
            passed: measured.map(|value| self.op.holds(value, self.bound)),
        }
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Threshold::parse(text)
    }
}

/// The canonical form, e.g. `p(99) < 50ms`, `error_rate < 1%`; it parses back to an equal
/// threshold.
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op, self.bound_text())
    }
}

impl Threshold {
    /// The bound as it would be written in a scenario: `50ms`, `1%`, `true`.
    fn bound_text(&self) -> String {
        match self.metric.unit() {
            Unit::Micros => exact_duration(self.bound),
            Unit::Ratio => exact_percentage(self.bound),
            Unit::PerSecond => format!("{}", self.bound),
            Unit::Bool => (if self.bound == 1.0 { "true" } else { "false" }).to_owned(),
        }
    }
}

/// As the expression string, as it appears in scenario files.
impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expression)
    }
}

/// From the expression string, so a bad threshold fails while the scenario is read.
impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Threshold::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The outcome of one threshold, as reported and written to `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub expression: String,
    /// In `unit`; `None` when nothing was measured.
    pub measured: Option<f64>,
    /// In `unit`.
    pub bound: f64,
    pub unit: Unit,
    /// `None` when nothing was measured: cannot tell, never a silent pass.
    pub passed: Option<bool>,
}

impl Evaluation {
    /// Whether the threshold definitely passed; cannot-tell counts as a failure.
    pub fn is_pass(&self) -> bool {
        self.passed == Some(true)
    }

    /// The measurement for people (`43.2ms`, `2.35%`), or `no data`.
    pub fn measured_text(&self) -> String {
        match self.measured {
            Some(value) => match self.unit {
                Unit::Micros => readable_duration(value),
                Unit::Ratio => format!("{}%", readable(value * 100.0)),
                Unit::PerSecond => readable(value),
                Unit::Bool => (if value == 1.0 { "true" } else { "false" }).to_owned(),
            },
            None => "no data".to_owned(),
        }
    }

    /// `p(99) = 1.52s, bound < 100ms`: the measurement beside the bound it was held to, for a
    /// failure message. An expression this version cannot parse (a result written by another
    /// one) is quoted whole.
    pub fn against_bound(&self) -> String {
        match Threshold::parse(&self.expression) {
            Ok(t) if self.measured.is_some() => format!(
                "{} = {}, bound {} {}",
                t.metric,
                self.measured_text(),
                t.op,
                t.bound_text()
            ),
            Ok(t) => format!("{}: no data, bound {} {}", t.metric, t.op, t.bound_text()),
            Err(_) => format!("{}: measured {}", self.expression, self.measured_text()),
        }
    }
}

/// `p(99) < 50ms: 43.2ms ✓`, `error_rate < 1%: 2.35% ✗`, `p(99) < 50ms: no data ✗`.
impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.is_pass() { "✓" } else { "✗" };
        write!(f, "{}: {} {mark}", self.expression, self.measured_text())
    }
}

fn parse_metric(expression: &str) -> Result<(Metric, &str), Problem> {
    if expression.is_empty() {
        return Err(Problem::Empty);
    }
    let name_end = expression
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(expression.len());
    let (name, after_name) = expression.split_at(name_end);
    if let Some(percentile) = name.strip_prefix(VISIBLE) {
        return Ok((
            Metric::TracesVisible(parse_percentile(percentile)?),
            after_name,
        ));
    }
    if name.is_empty() {
        if expression.starts_with(is_op_char) {
            return Err(Problem::MissingMetric);
        }
        let token_end = expression
            .find(|c: char| c.is_whitespace() || is_op_char(c))
            .unwrap_or(expression.len());
        return Err(Problem::UnknownMetric {
            metric: expression[..token_end].to_owned(),
        });
    }

    // The argument, if any: `(`, anything but `)`, `)`.
    let after_space = after_name.trim_start();
    let (argument, rest) = match after_space.strip_prefix('(') {
        Some(inside) => match inside.split_once(')') {
            Some((argument, rest)) => (Some(argument), Some(rest)),
            None => (Some(inside), None),
        },
        None => (None, Some(after_name)),
    };

    let percentile = match name {
        "p" => Some("p"),
        "service_p" => Some("service_p"),
        _ => None,
    };
    let Some(plain) = Metric::plain(name) else {
        let Some(percentile) = percentile else {
            let metric = match (argument, rest) {
                (Some(argument), Some(_)) => format!("{name}({argument})"),
                _ => name.to_owned(),
            };
            return Err(Problem::UnknownMetric { metric });
        };
        let Some(argument) = argument else {
            return Err(Problem::MissingPercentile { metric: percentile });
        };
        let Some(rest) = rest else {
            return Err(Problem::UnclosedParenthesis { metric: percentile });
        };
        let n = parse_percentile(argument)?;
        let metric = if percentile == "p" {
            Metric::LatencyPercentile(n)
        } else {
            Metric::ServicePercentile(n)
        };
        return Ok((metric, rest));
    };
    match (argument, rest) {
        (None, Some(rest)) => Ok((plain, rest)),
        _ => Err(Problem::UnexpectedArgument {
            metric: static_name(plain),
        }),
    }
}

/// The name of an argument-less metric, for errors that hold `&'static str`.
fn static_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Avg => "avg",
        Metric::Min => "min",
        Metric::Max => "max",
        Metric::Med => "med",
        Metric::ErrorRate => "error_rate",
        Metric::DroppedRate => "dropped_rate",
        Metric::AchievedRate => "achieved_rate",
        Metric::Rps => "rps",
        Metric::LatencyPercentile(_) => "p",
        Metric::ServicePercentile(_) => "service_p",
        Metric::TracesComplete => "traces.complete",
        Metric::TracesPassed => "traces.passed",
        Metric::TracesVisible(_) => VISIBLE,
        Metric::MetricsReconciled => "metrics.reconciled",
    }
}

fn parse_percentile(argument: &str) -> Result<f64, Problem> {
    let text = argument.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain_decimal =
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
    let value = plain_decimal
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .ok_or_else(|| Problem::PercentileNotANumber {
            text: text.to_owned(),
        })?;
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(Problem::PercentileOutOfRange {
            text: text.to_owned(),
        })
    }
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '!')
}

/// The rest of a boolean threshold: nothing (`== true`), `== true` or `== false`.
fn parse_truth(rest: &str) -> Result<(Op, f64), Problem> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok((Op::Eq, 1.0));
    }
    match rest.strip_prefix("==").map(str::trim) {
        Some("true") => Ok((Op::Eq, 1.0)),
        Some("false") => Ok((Op::Eq, 0.0)),
        _ => Err(Problem::NotABool),
    }
}

fn parse_op<'a>(metric: &Metric, rest: &'a str) -> Result<(Op, &'a str), Problem> {
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err(Problem::MissingOperator);
    }
    let op_end = rest.find(|c: char| !is_op_char(c)).unwrap_or(rest.len());
    let (symbol, rest) = rest.split_at(op_end);
    if symbol.is_empty() {
        return Err(Problem::ExpectedOperator {
            metric: metric.to_string(),
            found: rest.to_owned(),
        });
    }
    let op = Op::from_symbol(symbol).ok_or_else(|| Problem::UnknownOperator {
        op: symbol.to_owned(),
    })?;
    Ok((op, rest))
}

fn parse_bound(metric: Metric, op: Op, rest: &str) -> Result<f64, Problem> {
    let unit_kind = metric.unit();
    let expected = match unit_kind {
        Unit::Micros => "a duration such as 50ms",
        Unit::Ratio => "a percentage such as 1% or a ratio such as 0.01",
        Unit::PerSecond => "a number of requests per second such as 100",
        Unit::Bool => "true or false",
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(Problem::MissingValue {
            op: op.symbol(),
            expected,
        });
    }
    let token = |text: &str| {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        text[..end].to_owned()
    };

    // The number: plain decimal digits, as in durations elsewhere (no sign, no exponent).
    let unsigned = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    let word = token(unsigned).to_ascii_lowercase();
    if matches!(word.as_str(), "nan" | "inf" | "infinity") {
        return Err(Problem::NotFinite { text: token(rest) });
    }
    if rest.starts_with('-') && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(Problem::Negative { text: token(rest) });
    }
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, after_number) = rest.split_at(number_end);
    let value: f64 = match number.parse() {
        Ok(value) if !number.is_empty() => value,
        _ => {
            let text = if number.is_empty() {
                token(rest)
            } else {
                number.to_owned()
            };
            return Err(Problem::NotANumber { text, expected });
        }
    };
    if !value.is_finite() {
        return Err(Problem::TooLarge {
            text: number.to_owned(),
        });
    }

    // The unit: letters or `%`, possibly after a space; anything after it is garbage.
    let after_number = after_number.trim_start();
    let unit_end = after_number
        .find(|c: char| !(c.is_alphabetic() || c == '%'))
        .unwrap_or(after_number.len());
    let (unit, trailing) = after_number.split_at(unit_end);
    let unit_token = token(after_number);
    let metric_name = metric.to_string();

    let bound = match unit_kind {
        Unit::Micros => match unit {
            "" => return Err(Problem::LatencyNeedsUnit),
            "%" => {
                return Err(Problem::PercentageOnLatency {
                    metric: metric_name,
                });
            }
            _ => {
                let scale =
                    micros_per(unit).ok_or(Problem::UnknownDurationUnit { unit: unit_token })?;
                value * scale
            }
        },
        Unit::Ratio => match unit {
            "" if value > 1.0 => {
                return Err(Problem::RatioAboveOne {
                    text: number.to_owned(),
                });
            }
            "" => value,
            "%" if value > 100.0 && metric != Metric::AchievedRate => {
                return Err(Problem::PercentageAbove100 {
                    metric: metric_name,
                    text: number.to_owned(),
                });
            }
            "%" => value / 100.0,
            _ if micros_per(unit).is_some() => {
                return Err(Problem::DurationOnRate {
                    metric: metric_name,
                });
            }
            _ => {
                return Err(Problem::UnknownRateUnit {
                    metric: metric_name,
                    unit: unit_token,
                });
            }
        },
        Unit::PerSecond => match unit {
            "" => value,
            _ => return Err(Problem::UnitOnRps { unit: unit_token }),
        },
        // Parsed by `parse_truth`, never here.
        Unit::Bool => return Err(Problem::NotABool),
    };
    if !bound.is_finite() {
        return Err(Problem::TooLarge { text: token(rest) });
    }
    let trailing = trailing.trim();
    if !trailing.is_empty() {
        return Err(Problem::TrailingGarbage {
            rest: trailing.to_owned(),
        });
    }
    Ok(bound)
}

/// A latency bound in the largest unit that parses back to exactly the same microseconds.
fn exact_duration(micros: f64) -> String {
    for (unit, scale) in [("s", 1e6), ("ms", 1e3)] {
        let value = micros / scale;
        if micros >= scale && value * scale == micros {
            return format!("{value}{unit}");
        }
    }
    format!("{micros}us")
}

/// A ratio as a percentage that parses back (`/ 100`) to exactly the same ratio; the float
/// product can be an ulp off, so its neighbours are tried too, then the bare ratio.
fn exact_percentage(ratio: f64) -> String {
    let percent = ratio * 100.0;
    let candidates = [
        percent,
        percent.next_up(),
        percent.next_down(),
        percent.next_up().next_up(),
        percent.next_down().next_down(),
    ];
    candidates
        .into_iter()
        .find(|candidate| candidate / 100.0 == ratio)
        .map_or_else(|| format!("{ratio}"), |candidate| format!("{candidate}%"))
}

/// A measured latency for people: `43.2ms`, `1.25s`, `830us`.
fn readable_duration(micros: f64) -> String {
    if micros.abs() >= 1e6 {
        format!("{}s", readable(micros / 1e6))
    } else if micros.abs() >= 1e3 {
        format!("{}ms", readable(micros / 1e3))
    } else {
        format!("{}us", readable(micros))
    }
}

/// At least two decimals and three significant digits, trailing zeros dropped: enough to see
/// why a threshold failed, without float noise.
fn readable(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(2, 9) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
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
        ];
        for (text, metric, op, bound) in table {
            let threshold = parsed(text);
            assert_eq!(threshold.metric, *metric, "{text}");
            assert_eq!(threshold.op, *op, "{text}");
            assert_eq!(threshold.bound, *bound, "{text}");
            assert_eq!(threshold.expression, text.trim(), "{text}");
            assert_eq!(text.parse::<Threshold>().as_ref(), Ok(&threshold));
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let expected = "expected one of p(N), service_p(N), avg, min, max, med, error_rate, \
                        dropped_rate, achieved_rate, rps, traces.complete, traces.passed, \
                        traces.visible_pN, metrics.reconciled";
        let table: &[(&str, String)] = &[
            (
                "",
                r#""": empty threshold; expected METRIC OP VALUE, e.g. p(99) < 50ms"#.into(),
            ),
            (
                "p(99) < 50",
                r#""p(99) < 50": the bound of a latency metric needs a unit (us, ms, s, m)"#.into(),
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
        let error = Threshold::parse(" p(99) < 50 ").unwrap_err();
        assert_eq!(error.expression, "p(99) < 50");
        assert_eq!(error.problem, Problem::LatencyNeedsUnit);

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
            assert_eq!(parsed(text).evaluate(*measured).against_bound(), *message);
        }
        // A result written by another version may hold an expression this one cannot parse.
        let foreign = Evaluation {
            expression: "p99.9 < 5ms".to_owned(),
            measured: Some(7_000.0),
            bound: 5_000.0,
            unit: Unit::Micros,
            passed: Some(false),
        };
        assert_eq!(foreign.against_bound(), "p99.9 < 5ms: measured 7ms");
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
                parsed(text).metric.describe(),
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
                _ => random.pick(&["us", "µs", "ms", "s", "m"]),
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
            (complete.metric, complete.op, complete.bound),
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
                (t.metric, t.op, t.bound),
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
            "\"metrics.reconciled == 1\": metrics.reconciled is true or false: write it alone, or == true, or == false"
        );
    }
}
