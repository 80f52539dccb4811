//! Pass/fail thresholds in k6 syntax (`p(99) < 50ms`, `error_rate < 1%`): parsed once when the
//! scenario is loaded, so a typo fails validation instead of a finished run, and evaluated against
//! the run's measurements for the report and `result.json`.
//!
//! Values are normalised to one unit per kind of metric, so evaluation is a plain comparison:
//! latencies in microseconds, rates as ratios (0.01 for 1%), `rps` in requests per second. As in
//! k6, a latency bound without a unit is in milliseconds (`p(95) < 200` is 200 ms); a bare number
//! on a rate is a ratio and on `rps` requests per second, as before.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) use crate::result::{Evaluation, Unit};

mod evaluate;
mod memory;
mod parse;

pub(crate) use evaluate::{Scoped, evaluate, evaluate_stored, implicit, parse_all};
use parse::{exact_duration, exact_percentage, parse_bound, parse_metric, parse_op, parse_truth};

/// The metrics, listed in every "unknown metric" error so the fix is in the message.
const METRICS: &str = "p(N), service_p(N), avg, min, max, med, error_rate, dropped_rate, \
     achieved_rate, rps, traces.complete, traces.passed, traces.visible_pN, metrics.reconciled, \
     stream.p(N), stream.first_message.p(N), stream.lost_rate, stream.sequence_error_rate, \
     stream.connect_error_rate, stream.traces.passed, pii.clean, \
     memory.growth, memory.growth(PROCESS)";
const OPERATORS: &str = "<, <=, >, >=, ==";

/// One parsed threshold: `METRIC OP VALUE`.
///
/// Equality is by meaning (metric, operator, bound), not by the source text, so `p(99)<50ms`
/// equals `p(99) < 0.05s`; this is what makes `parse(&t.to_string()) == t` hold.
#[derive(Debug, Clone)]
pub(crate) struct Threshold {
    /// The expression as written (trimmed): how the user recognises it in reports. A latency
    /// bound written without its unit gets it (`p(95)<200` becomes `p(95) < 200ms`), so that no
    /// report prints a bare number whose unit the reader must guess.
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
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Metric {
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
    /// `stream.p(N)`: percentile of a stream update's latency, from its event time to its receipt.
    StreamPercentile(f64),
    /// `stream.first_message.p(N)`: percentile of the time from a subscribe to its first update.
    StreamFirstMessage(f64),
    /// Updates missing from their connection's sequence / updates received and missing.
    StreamLostRate,
    /// Updates repeated or out of order / updates received.
    StreamSequenceErrorRate,
    /// Failed connects / connects attempted.
    StreamConnectErrorRate,
    /// Sampled traced updates traced end to end (`verify.streams`) / sampled traced updates.
    StreamTracesPassed,
    /// Whether the search for personal data found nothing that fails it: `pii.clean`.
    PiiClean,
    /// `memory.growth(PROCESS)`: resident memory growth in bytes per second over the steady part
    /// of the load, judged on its interval ([`memory`]); without a process, the fastest-growing
    /// service's.
    MemoryGrowth(Option<String>),
}

impl Metric {
    /// The unit of the metric's bound and measurement.
    pub(crate) fn unit(&self) -> Unit {
        match self {
            Metric::LatencyPercentile(_)
            | Metric::ServicePercentile(_)
            | Metric::Avg
            | Metric::Min
            | Metric::Max
            | Metric::Med
            | Metric::TracesVisible(_)
            | Metric::StreamPercentile(_)
            | Metric::StreamFirstMessage(_) => Unit::Micros,
            Metric::ErrorRate
            | Metric::DroppedRate
            | Metric::AchievedRate
            | Metric::TracesComplete
            | Metric::TracesPassed
            | Metric::StreamLostRate
            | Metric::StreamSequenceErrorRate
            | Metric::StreamConnectErrorRate
            | Metric::StreamTracesPassed => Unit::Ratio,
            Metric::Rps => Unit::PerSecond,
            Metric::MetricsReconciled | Metric::PiiClean => Unit::Bool,
            Metric::MemoryGrowth(_) => Unit::BytesPerSecond,
        }
    }

    /// Whether it measures a stream load's messages.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(
            self,
            Metric::StreamPercentile(_)
                | Metric::StreamFirstMessage(_)
                | Metric::StreamLostRate
                | Metric::StreamSequenceErrorRate
                | Metric::StreamConnectErrorRate
                | Metric::StreamTracesPassed
        )
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
            "stream.lost_rate" => Metric::StreamLostRate,
            "stream.sequence_error_rate" => Metric::StreamSequenceErrorRate,
            "stream.connect_error_rate" => Metric::StreamConnectErrorRate,
            "stream.traces.passed" => Metric::StreamTracesPassed,
            "pii.clean" => Metric::PiiClean,
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
            Metric::StreamPercentile(n) => write!(f, "stream.p({n})"),
            Metric::StreamFirstMessage(n) => write!(f, "stream.first_message.p({n})"),
            Metric::StreamLostRate => f.write_str("stream.lost_rate"),
            Metric::StreamSequenceErrorRate => f.write_str("stream.sequence_error_rate"),
            Metric::StreamConnectErrorRate => f.write_str("stream.connect_error_rate"),
            Metric::StreamTracesPassed => f.write_str("stream.traces.passed"),
            Metric::PiiClean => f.write_str("pii.clean"),
            Metric::MemoryGrowth(None) => f.write_str(memory::NAME),
            Metric::MemoryGrowth(Some(process)) => write!(f, "{}({process})", memory::NAME),
        }
    }
}

/// A comparison operator; the threshold passes when `measured OP bound` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    /// Exact float equality: meant for bounds like `error_rate == 0`.
    Eq,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    pub(crate) fn holds(self, measured: f64, bound: f64) -> bool {
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
pub(crate) struct ThresholdError {
    pub expression: String,
    pub problem: Problem,
}

/// What is wrong with a threshold expression, and what was expected instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Problem {
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
    #[error(
        "metrics.reconciled and pii.clean are true or false: write one alone, or == true, or == false"
    )]
    NotABool,
    #[error(
        "process name {text:?} is not valid; expected memory.growth(NAME) with a name such as \
         core-engine (letters, digits, -, _ and .)"
    )]
    BadProcessName { text: String },
    #[error(
        "memory.growth is measured with an interval and cannot be equal to a bound; use < or <="
    )]
    EqualityOnGrowth,
    #[error("missing unit; memory.growth takes a rate of memory such as 1MB/min")]
    MissingGrowthUnit,
    #[error(
        "unknown unit {unit:?}; memory.growth takes B, KB, MB, GB, KiB, MiB or GiB per s, min \
         or h, e.g. 1MB/min"
    )]
    UnknownGrowthUnit { unit: String },
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
    pub(crate) fn parse(text: &str) -> Result<Threshold, ThresholdError> {
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
        if matches!(metric, Metric::MemoryGrowth(_)) {
            memory::check_op(op).map_err(fail)?;
        }
        let (bound, unitless) = parse_bound(metric.clone(), op, rest).map_err(fail)?;
        let expression = match unitless {
            // The number as written, with the unit it was taken in: `p(95) < 2000ms`.
            Some(number) if metric.unit() == Unit::Micros => format!("{metric} {op} {number}ms"),
            _ => expression.to_owned(),
        };
        Ok(Threshold {
            expression,
            metric,
            op,
            bound,
        })
    }

    /// Compares a measurement, in the metric's unit, with the bound. `None` (nothing measured,
    /// e.g. no responses) yields `passed: None`: cannot tell, which is reported as not passed.
    pub(crate) fn evaluate(&self, measured: Option<f64>) -> Evaluation {
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
            Unit::BytesPerSecond => memory::bound_text(self.bound),
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

#[cfg(test)]
mod tests;

/// `p(99) = 1.52s, bound < 100ms`: the measurement beside the bound it was held to, for a
/// failure message. An expression this version cannot parse (a result written by another
/// one) is quoted whole.
pub(crate) fn against_bound(evaluation: &Evaluation) -> String {
    match Threshold::parse(&evaluation.expression) {
        Ok(t) if evaluation.measured.is_some() => format!(
            "{} = {}, bound {} {}",
            t.metric,
            evaluation.measured_text(),
            t.op,
            t.bound_text()
        ),
        Ok(t) => format!("{}: no data, bound {} {}", t.metric, t.op, t.bound_text()),
        Err(_) => format!(
            "{}: measured {}",
            evaluation.expression,
            evaluation.measured_text()
        ),
    }
}
