//! Numbers as people read them, in one place: durations, percentages, counts and times.
//!
//! Two styles serve two readers. Reports (HTML) use units with a space and three significant
//! digits (`1.21 ms`, `18.2%`), so that a table can be read without counting zeros and two reports
//! of the same system compare at a glance. Terminal lines (the summary, progress, JUnit messages,
//! `harness compare`) are terser and keep a fixed number of decimals (`1.21ms`, `18.21%`), so that
//! columns of them line up.

/// A duration in microseconds, in the largest unit that keeps it readable: `850 µs`, `1.21 ms`,
/// `1.52 s`.
pub(crate) fn duration_us(us: f64) -> String {
    if !us.is_finite() {
        return "n/a".to_owned();
    }
    let (value, unit) = if us.abs() >= 1e6 {
        (us / 1e6, "s")
    } else if us.abs() >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    format!("{} {unit}", significant(value, 3))
}

/// The unit of a latency axis whose values reach `max_us`: milliseconds, or seconds from ten
/// seconds up, so that tick labels stay short enough to leave the axis title clear. As
/// (microseconds per unit, name).
pub(crate) fn latency_axis_unit(max_us: f64) -> (f64, &'static str) {
    if max_us >= 1e7 {
        (1e6, "s")
    } else {
        (1e3, "ms")
    }
}

/// A ratio as a percentage: `18.2%`, `0.52%`, `100%`.
pub(crate) fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".to_owned();
    }
    format!("{}%", significant(ratio * 100.0, 3))
}

/// A relative change with its sign: `+18.2%`, `-0.52%`.
pub(crate) fn signed_percent(ratio: f64) -> String {
    let text = percent(ratio);
    if ratio > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// A count with thousands separated: `3,200`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Requests per second: `200.5 req/s`.
pub(crate) fn rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return "n/a".to_owned();
    }
    format!("{per_second:.1} req/s")
}

/// Bytes in binary units: `18.8 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{} {}", significant(value, 3), units[unit])
    }
}

/// `value` to `digits` significant digits, without an exponent; whole numbers too large for
/// that many digits keep all of theirs (`1234` stays `1234`).
pub(crate) fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    // Rounding can carry into a new digit (9.996 -> 10.00): one decimal too many then.
    let rounded = text.parse::<f64>().unwrap_or(value);
    if decimals > 0 && rounded.abs().log10().floor() as i32 > magnitude {
        format!("{value:.*}", decimals - 1)
    } else {
        text
    }
}

/// A Unix time in milliseconds as a UTC date and time: `2026-11-25 02:04:06 UTC`.
pub(crate) fn utc(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{unix_ms} ms after 1970"),
            |time| time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// A latency in whole microseconds, tersely, for terminal lines: `850µs`, `12.35ms`, `1.52s`.
pub(crate) fn duration_terse(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// CPU time in microseconds, tersely: `41.7µs`, `1.25ms`.
pub(crate) fn cpu_time(us: f64) -> String {
    if us >= 1_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{us:.1}µs")
    }
}

/// A measured value in ASCII units with no float noise (`43.2ms`, `1.25s`, `830us`), for
/// messages that sit beside thresholds written in the same units.
pub(crate) fn duration_ascii(us: f64) -> String {
    if us.abs() >= 1e6 {
        format!("{}s", decimals(us / 1e6))
    } else if us.abs() >= 1e3 {
        format!("{}ms", decimals(us / 1e3))
    } else {
        format!("{}us", decimals(us))
    }
}

/// At least two decimals and three significant digits, trailing zeros dropped: enough to see
/// why a threshold failed, without float noise.
pub(crate) fn decimals(value: f64) -> String {
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

/// A ratio as a percentage with fixed decimals, for terminal columns: `12.3%`, `0.52%`.
pub(crate) fn percent_fixed(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p.abs() >= 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// A relative change with its sign and fixed decimals: `+12.3%`, `-4.76%`, `+0.52%`.
pub(crate) fn signed_percent_fixed(ratio: f64) -> String {
    signed(percent_fixed(ratio))
}

/// A formatted number with a `+` in front unless it already has a `-`.
pub(crate) fn signed(text: String) -> String {
    if text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_unit_that_keeps_them_readable() {
        assert_eq!(duration_us(0.0), "0 µs");
        assert_eq!(duration_us(850.0), "850 µs");
        assert_eq!(duration_us(12.34), "12.3 µs");
        assert_eq!(duration_us(1_214.0), "1.21 ms");
        assert_eq!(duration_us(969_727.0), "970 ms");
        assert_eq!(duration_us(1_524_000.0), "1.52 s");
        assert_eq!(duration_us(f64::NAN), "n/a");
    }

    #[test]
    fn long_latencies_are_charted_in_seconds() {
        assert_eq!(latency_axis_unit(0.0), (1e3, "ms"));
        assert_eq!(latency_axis_unit(9_999_999.0), (1e3, "ms"));
        assert_eq!(latency_axis_unit(1e7), (1e6, "s"));
        assert_eq!(latency_axis_unit(3.6e9), (1e6, "s"));
    }

    #[test]
    fn significant_digits_survive_rounding_up() {
        assert_eq!(significant(9.996, 3), "10.0");
        assert_eq!(significant(99.96, 3), "100");
        assert_eq!(significant(0.005_234, 3), "0.00523");
        assert_eq!(significant(-18.216, 3), "-18.2");
        assert_eq!(significant(123_456.0, 3), "123456");
    }

    #[test]
    fn percentages_and_counts() {
        assert_eq!(percent(0.182_154), "18.2%");
        assert_eq!(percent(0.0052), "0.520%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(signed_percent(0.01), "+1.00%");
        assert_eq!(signed_percent(-0.044), "-4.40%");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(3_200), "3,200");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(rate(200.451), "200.5 req/s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(18_800_640), "17.9 MiB");
    }

    #[test]
    fn utc_dates_follow_the_calendar() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(utc(951_827_696_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(1_795_572_246_913), "2026-11-25 02:04:06 UTC");
    }

    #[test]
    fn terminal_styles_keep_fixed_decimals() {
        assert_eq!(duration_terse(850), "850µs");
        assert_eq!(signed("1.5%".to_owned()), "+1.5%");
        assert_eq!(duration_terse(12_345), "12.35ms");
        assert_eq!(duration_terse(1_520_000), "1.52s");
        assert_eq!(cpu_time(41.66), "41.7µs");
        assert_eq!(cpu_time(1_250.0), "1.25ms");
        assert_eq!(percent_fixed(0.1234), "12.3%");
        assert_eq!(percent_fixed(0.0052), "0.52%");
        assert_eq!(signed_percent_fixed(0.0052), "+0.52%");
        assert_eq!(signed_percent_fixed(-0.0476), "-4.76%");
        assert_eq!(signed_percent_fixed(0.0), "+0.00%");
        assert_eq!(duration_ascii(43_210.0), "43.21ms");
        assert_eq!(duration_ascii(830.0), "830us");
        assert_eq!(decimals(0.104_999), "0.105");
    }
}
