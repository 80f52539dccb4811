//! Durations on the command line and in the environment: `250ms`, `1.5s`, `500us`, `2m`.

use std::time::Duration;

/// Parses a non-negative decimal number followed by a unit (`us`, `ms`, `s` or `m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit; write e.g. 250ms, 1.5s, 500us or 2m"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => {
            return Err(format!(
                "{text:?} has unknown unit {unit:?}; use us, ms, s or m"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{text:?} is out of range"))
}

/// A [`parse_duration`] that must be more than zero, for deadlines: a zero one expires at once,
/// or not, depending on how the clock ticks.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} must be longer than zero")),
        d => Ok(d),
    }
}

/// The longest timeout [`parse_timeout`] takes: a day is "never" for a read, and a far enough
/// deadline would overflow the clock when added to it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A [`parse_positive_duration`] of at most [`MAX_TIMEOUT`], for timeouts turned into deadlines.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_positive_duration(text)? {
        d if d > MAX_TIMEOUT => Err(format!("{text:?} is longer than a day")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            parse_duration("250"),
            Err("\"250\" has no unit; write e.g. 250ms, 1.5s, 500us or 2m".into())
        );
        assert_eq!(
            parse_duration("5h"),
            Err("\"5h\" has unknown unit \"h\"; use us, ms, s or m".into())
        );
        assert_eq!(
            parse_duration("ms"),
            Err("\"ms\" does not start with a number".into())
        );
        assert!(parse_duration("-1s").is_err());
        assert_eq!(
            parse_positive_duration("0s"),
            Err("\"0s\" must be longer than zero".into())
        );
        assert_eq!(parse_positive_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_timeout("1440m"), Ok(MAX_TIMEOUT));
        assert_eq!(
            parse_timeout("300000000000000000m"),
            Err("\"300000000000000000m\" is longer than a day".into())
        );
        assert!(parse_timeout("0s").is_err());
    }
}
