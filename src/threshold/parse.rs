//! The threshold language's grammar: `METRIC OP VALUE`, each part with the error that says what
//! was expected, and the exact forms a bound prints back in.

use super::{Metric, Op, Problem, Unit, VISIBLE, micros_per};

/// Microseconds in the unit a latency bound written without one is in: milliseconds, as in k6
/// (`p(95) < 200` is 200 ms).
pub(super) const IMPLIED_MICROS: f64 = 1e3;

pub(super) fn parse_metric(expression: &str) -> Result<(Metric, &str), Problem> {
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

    if name == super::memory::NAME {
        let Some(rest) = rest else {
            return Err(Problem::UnclosedParenthesis {
                metric: super::memory::NAME,
            });
        };
        return Ok((
            Metric::MemoryGrowth(super::memory::process(argument)?),
            rest,
        ));
    }
    let percentile = match name {
        "p" => Some("p"),
        "service_p" => Some("service_p"),
        "stream.p" => Some("stream.p"),
        "stream.first_message.p" => Some("stream.first_message.p"),
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
        let metric = match percentile {
            "p" => Metric::LatencyPercentile(n),
            "stream.p" => Metric::StreamPercentile(n),
            "stream.first_message.p" => Metric::StreamFirstMessage(n),
            _ => Metric::ServicePercentile(n),
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
        Metric::StreamPercentile(_) => "stream.p",
        Metric::StreamFirstMessage(_) => "stream.first_message.p",
        Metric::StreamLostRate => "stream.lost_rate",
        Metric::StreamSequenceErrorRate => "stream.sequence_error_rate",
        Metric::StreamConnectErrorRate => "stream.connect_error_rate",
        Metric::StreamTracesPassed => "stream.traces.passed",
        Metric::PiiClean => "pii.clean",
        Metric::MemoryGrowth(_) => super::memory::NAME,
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
pub(super) fn parse_truth(rest: &str) -> Result<(Op, f64), Problem> {
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

pub(super) fn parse_op<'a>(metric: &Metric, rest: &'a str) -> Result<(Op, &'a str), Problem> {
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

/// The bound in the metric's unit and, when it was written without a unit, the number as written.
pub(super) fn parse_bound(
    metric: Metric,
    op: Op,
    rest: &str,
) -> Result<(f64, Option<f64>), Problem> {
    let unit_kind = metric.unit();
    let expected = match unit_kind {
        Unit::Micros => "a duration such as 50ms",
        Unit::Ratio => "a percentage such as 1% or a ratio such as 0.01",
        Unit::PerSecond => "a number of requests per second such as 100",
        Unit::Bool => "true or false",
        Unit::BytesPerSecond => "a rate of memory such as 1MB/min",
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
    if unit_kind == Unit::BytesPerSecond {
        return super::memory::bound(value, after_number).map(|bound| (bound, None));
    }
    let (unit, trailing) = after_number.split_at(unit_end);
    let unit_token = token(after_number);
    let metric_name = metric.to_string();

    let bound = match unit_kind {
        Unit::Micros => match unit {
            // As in k6: a bare number on a latency is milliseconds.
            "" => value * IMPLIED_MICROS,
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
        // Parsed by `parse_truth` and `memory::bound`, never here.
        Unit::Bool => return Err(Problem::NotABool),
        Unit::BytesPerSecond => return Err(Problem::MissingGrowthUnit),
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
    Ok((bound, unit.is_empty().then_some(value)))
}

/// A latency bound in the largest unit that parses back to exactly the same microseconds.
pub(super) fn exact_duration(micros: f64) -> String {
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
pub(super) fn exact_percentage(ratio: f64) -> String {
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
