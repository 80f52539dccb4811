//! Where an axis puts its ticks and how it labels them: steps of 1, 2 or 5 times a power of ten,
//! decades on a log scale, and no more decimals than the step needs.

/// Heckbert's "nice numbers": 1, 2 or 5 times a power of ten. Rounded to the nearest one, or
/// (`round == false`) the smallest one at least `x`.
pub(super) fn nice_number(x: f64, round: bool) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    let fraction = x / power;
    let nice = if round {
        match fraction {
            f if f < 1.5 => 1.0,
            f if f < 3.0 => 2.0,
            f if f < 7.0 => 5.0,
            _ => 10.0,
        }
    } else {
        match fraction {
            f if f <= 1.0 => 1.0,
            f if f <= 2.0 => 2.0,
            f if f <= 5.0 => 5.0,
            _ => 10.0,
        }
    };
    nice * power
}

/// The most ticks an axis gets, whatever the values.
pub(super) const MAX_TICKS: usize = 20;

/// Evenly spaced ticks at nice numbers that cover `min..=max`, about `target` of them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LinearTicks {
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub values: Vec<f64>,
}

pub(super) fn linear_ticks(min: f64, max: f64, target: usize) -> LinearTicks {
    let (min, max) = match (min.is_finite(), max.is_finite()) {
        (true, true) if max > min => (min, max),
        (true, true) if min == 0.0 => (0.0, 1.0),
        (true, _) => (min, min + min.abs()),
        _ => (0.0, 1.0),
    };
    // A span too wide for a float (±1e308) is narrowed until it is one; nothing real is there.
    let (min, max) = if (max - min).is_finite() {
        (min, max)
    } else {
        (min.max(-f64::MAX / 4.0), max.min(f64::MAX / 4.0))
    };
    let target = target.clamp(2, MAX_TICKS);
    let step = nice_number((max - min) / (target - 1) as f64, true);
    let low = (min / step).floor() * step;
    let high = (max / step).ceil() * step;
    // Far from zero a step can be lost in rounding; the count is capped so that is never a
    // runaway.
    let count = ((high - low) / step).round().clamp(0.0, MAX_TICKS as f64) as usize;
    let high = low + count as f64 * step;
    let values = (0..=count).map(|i| low + i as f64 * step).collect();
    LinearTicks {
        min: low,
        max: high,
        step,
        values,
    }
}

/// Powers of ten covering `min..=max` (positive), with 2× and 5× between them when the range
/// spans two decades or less, so that a short log axis still has a few labels.
pub(super) fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let low = min.log10().floor() as i32;
    let mut high = max.log10().ceil() as i32;
    if high <= low {
        high = low + 1;
    }
    let mut ticks = Vec::new();
    for exponent in low..=high {
        let power = 10f64.powi(exponent);
        ticks.push(power);
        if high - low <= 2 && exponent < high {
            ticks.extend([2.0 * power, 5.0 * power]);
        }
    }
    ticks
}

/// A tick value written with as many decimals as the step between ticks needs: `0.5`, `250`.
pub(super) fn number_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    // `-0` and `-0.0` are zero.
    if text
        .trim_start_matches('-')
        .trim_matches(['0', '.'])
        .is_empty()
    {
        "0".to_owned()
    } else {
        text
    }
}
