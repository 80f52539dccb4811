//! Numbers as the HTML report shows them: with units, to three significant digits, so that a
//! table can be read without counting zeros and two reports of the same system compare at a glance.

/// A duration in microseconds, in the largest unit that keeps it readable: `850 µs`, `1.21 ms`,
/// `1.52 s`.
pub fn duration_us(us: f64) -> String {
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
pub fn latency_axis_unit(max_us: f64) -> (f64, &'static str) {
    if max_us >= 1e7 {
        (1e6, "s")
    } else {
        (1e3, "ms")
    }
}

/// A ratio as a percentage: `18.2%`, `0.52%`, `100%`.
pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".to_owned();
    }
    format!("{}%", significant(ratio * 100.0, 3))
}

/// A relative change with its sign: `+18.2%`, `-0.52%`.
pub fn signed_percent(ratio: f64) -> String {
    let text = percent(ratio);
    if ratio > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// A count with thousands separated: `3,200`.
pub fn count(n: u64) -> String {
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
pub fn rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return "n/a".to_owned();
    }
    format!("{per_second:.1} req/s")
}

/// Bytes in binary units: `18.8 MiB`.
pub fn bytes(n: u64) -> String {
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
pub fn significant(value: f64, digits: i32) -> String {
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
pub fn utc(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
}
