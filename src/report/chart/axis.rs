//! Axes: a scale that places values, the ticks drawn along it and a title that names the unit,
//! with constructors for each kind the report draws (linear, logarithmic, percentile,
//! categories).

use super::Scale;
use super::ticks::{linear_ticks, log_ticks, number_label};

/// How far apart the smallest and largest values must be for [`Axis::spread`] to choose a
/// logarithmic scale: beyond this, a linear one flattens everything but the largest values.
pub(super) const LOG_SPREAD: f64 = 50.0;

/// A labelled position on an axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    pub value: f64,
    pub label: String,
}

/// A scale, its ticks and its title (which names the unit).
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub scale: Scale,
    pub ticks: Vec<Tick>,
    pub title: String,
}

/// Where quantile `q` goes on a percentile axis: `log10(1 / (1 − q))`, so that 90%, 99%, 99.9%
/// are equally spaced, one unit apart, as in HdrHistogram's plots.
pub(crate) fn percentile_position(q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0 - 1e-12);
    -(1.0 - q).log10()
}

/// The percentile at `decade` on a percentile axis: `0%`, `90%`, `99%`, `99.9%`, ...
pub(super) fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

impl Axis {
    /// Linear, with nice ticks covering `min..=max`.
    pub(crate) fn linear(title: impl Into<String>, min: f64, max: f64) -> Axis {
        let ticks = linear_ticks(min, max, 6);
        Axis {
            scale: Scale::Linear {
                min: ticks.min,
                max: ticks.max,
            },
            ticks: ticks
                .values
                .iter()
                .map(|&value| Tick {
                    value,
                    label: number_label(value, ticks.step),
                })
                .collect(),
            title: title.into(),
        }
    }

    /// Linear over exactly `min..=max` (a time span that should end where the data ends), with
    /// nice ticks inside it.
    pub(crate) fn linear_exact(title: impl Into<String>, min: f64, max: f64) -> Axis {
        let ticks = linear_ticks(min, max, 6);
        Axis {
            scale: Scale::Linear { min, max },
            ticks: ticks
                .values
                .iter()
                .filter(|&&value| value >= min && value <= max)
                .map(|&value| Tick {
                    value,
                    label: number_label(value, ticks.step),
                })
                .collect(),
            title: title.into(),
        }
    }

    /// Logarithmic, from the power of ten at or below `min` to the one at or above `max`.
    pub(crate) fn log(title: impl Into<String>, min: f64, max: f64) -> Axis {
        let ticks = log_ticks(min, max);
        let (low, high) = (ticks[0], ticks[ticks.len() - 1]);
        Axis {
            scale: Scale::Log {
                min: low,
                max: high,
            },
            ticks: ticks
                .iter()
                .map(|&value| Tick {
                    value,
                    label: number_label(value, value),
                })
                .collect(),
            title: title.into(),
        }
    }

    /// For values that must show both their small and large end: logarithmic when they are all
    /// positive and spread over more than [`LOG_SPREAD`]×, else linear from zero.
    pub(crate) fn spread(title: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Axis {
        let (mut min, mut max) = (f64::INFINITY, 0.0f64);
        for value in values.into_iter().filter(|v| v.is_finite()) {
            min = min.min(value);
            max = max.max(value);
        }
        if min > 0.0 && max / min > LOG_SPREAD {
            Axis::log(title, min, max)
        } else {
            Axis::linear(title, 0.0, max)
        }
    }

    /// A percentile axis (see [`percentile_position`]) from 0% to `decades` nines, with a tick at
    /// the median too.
    pub(crate) fn percentile(title: impl Into<String>, decades: u32) -> Axis {
        let decades = decades.max(1);
        let mut ticks = vec![Tick {
            value: 0.0,
            label: percentile_label(0),
        }];
        ticks.push(Tick {
            value: percentile_position(0.5),
            label: "50%".to_owned(),
        });
        ticks.extend((1..=decades).map(|decade| Tick {
            value: f64::from(decade),
            label: percentile_label(decade),
        }));
        Axis {
            scale: Scale::Linear {
                min: 0.0,
                max: f64::from(decades),
            },
            ticks,
            title: title.into(),
        }
    }

    /// One slot per name, the n-th centred on `n + 0.5`.
    pub(crate) fn categories(title: impl Into<String>, names: Vec<String>) -> Axis {
        let slots = names.len().max(1) as f64;
        Axis {
            scale: Scale::Linear {
                min: 0.0,
                max: slots,
            },
            ticks: names
                .into_iter()
                .enumerate()
                .map(|(i, label)| Tick {
                    value: i as f64 + 0.5,
                    label,
                })
                .collect(),
            title: title.into(),
        }
    }

    /// Logarithmic, with ticks exactly at `values` (positive), labelled with `labels`: for a
    /// sweep whose settings are the interesting positions.
    pub(crate) fn log_at(title: impl Into<String>, values: &[(f64, String)]) -> Axis {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), (v, _)| {
                (lo.min(*v), hi.max(*v))
            });
        // A little room either side, so that the first and last marks are not on the frame.
        let pad = ((max / min).log10() * 0.06).max(0.05);
        Axis {
            scale: Scale::Log {
                min: min / 10f64.powf(pad),
                max: max * 10f64.powf(pad),
            },
            ticks: values
                .iter()
                .map(|(value, label)| Tick {
                    value: *value,
                    label: label.clone(),
                })
                .collect(),
            title: title.into(),
        }
    }
}
