//! Charts as inline SVG, drawn by hand: no script and no network when the report is opened, and
//! colours that follow the page. Every mark carries a CSS class (`series s1`, `grid`, `stall`), and
//! the page's stylesheet maps the classes to its colour variables, so dark mode and print restyle
//! the charts as they restyle the text. Chart libraries that write colours into the SVG cannot.
//!
//! A chart is two axes and the marks drawn in their coordinates. Data series get the class
//! `series`; everything else (grid, rules, bands, legend swatches) gets its own, so a reader of
//! the file can tell data from decoration.

use std::fmt::Write as _;

use minijinja::HtmlEscape;

/// The viewBox's width; CSS scales the chart to the page's width.
const WIDTH: f64 = 760.0;
/// The viewBox's height unless [`Chart::with_rows`] sizes it.
const HEIGHT: f64 = 300.0;
/// Height per row of a chart whose y axis is categories ([`Chart::with_rows`]).
const ROW_HEIGHT: f64 = 44.0;
/// Room around the plot area for tick labels, axis titles and the legend.
const LEFT: f64 = 66.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;

/// How far apart the smallest and largest values must be for [`Axis::spread`] to choose a
/// logarithmic scale: beyond this, a linear one flattens everything but the largest values.
pub const LOG_SPREAD: f64 = 50.0;

/// Where values fall along an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear {
        min: f64,
        max: f64,
    },
    /// Base ten, over positive values.
    Log {
        min: f64,
        max: f64,
    },
}

impl Scale {
    /// Where `value` lies along the axis: 0 at `min`, 1 at `max`. `None` for a value a log
    /// scale cannot place (zero, negative, not a number).
    pub fn fraction(&self, value: f64) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        match *self {
            Scale::Linear { min, max } if max > min => Some((value - min) / (max - min)),
            Scale::Linear { .. } => Some(0.5),
            Scale::Log { min, max } if value > 0.0 && min > 0.0 && max > min => {
                Some((value.log10() - min.log10()) / (max.log10() - min.log10()))
            }
            Scale::Log { .. } => None,
        }
    }
}

/// A labelled position on an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// A scale, its ticks and its title (which names the unit).
#[derive(Debug, Clone)]
pub struct Axis {
    pub scale: Scale,
    pub ticks: Vec<Tick>,
    pub title: String,
}

/// Heckbert's "nice numbers": 1, 2 or 5 times a power of ten. Rounded to the nearest one, or
/// (`round == false`) the smallest one at least `x`.
pub fn nice_number(x: f64, round: bool) -> f64 {
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
const MAX_TICKS: usize = 20;

/// Evenly spaced ticks at nice numbers that cover `min..=max`, about `target` of them.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearTicks {
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub values: Vec<f64>,
}

pub fn linear_ticks(min: f64, max: f64, target: usize) -> LinearTicks {
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
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
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
pub fn number_label(value: f64, step: f64) -> String {
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

/// Where quantile `q` goes on a percentile axis: `log10(1 / (1 − q))`, so that 90%, 99%, 99.9%
/// are equally spaced, one unit apart, as in HdrHistogram's plots.
pub fn percentile_position(q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0 - 1e-12);
    -(1.0 - q).log10()
}

/// The percentile at `decade` on a percentile axis: `0%`, `90%`, `99%`, `99.9%`, ...
pub fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

impl Axis {
    /// Linear, with nice ticks covering `min..=max`.
    pub fn linear(title: impl Into<String>, min: f64, max: f64) -> Axis {
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
    pub fn linear_exact(title: impl Into<String>, min: f64, max: f64) -> Axis {
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
    pub fn log(title: impl Into<String>, min: f64, max: f64) -> Axis {
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
    pub fn spread(title: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Axis {
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
    pub fn percentile(title: impl Into<String>, decades: u32) -> Axis {
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
    pub fn categories(title: impl Into<String>, names: Vec<String>) -> Axis {
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
    pub fn log_at(title: impl Into<String>, values: &[(f64, String)]) -> Axis {
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

/// A colour of the page's palette, by CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    S1,
    S2,
    S3,
    S4,
    /// The foreground's muted colour: reference lines such as a target rate.
    Muted,
}

impl Color {
    fn class(self) -> &'static str {
        match self {
            Color::S1 => "s1",
            Color::S2 => "s2",
            Color::S3 => "s3",
            Color::S4 => "s4",
            Color::Muted => "muted",
        }
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Line,
    Dashed,
    Dot,
    Interval,
    Stall,
}

/// A point with its hover text.
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

/// An estimate with its interval, at one position of the other axis.
pub struct Interval {
    pub at: f64,
    pub low: f64,
    pub estimate: f64,
    pub high: f64,
    pub title: String,
}

/// Which way intervals run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Along the y axis, at an x position.
    Vertical,
    /// Along the x axis, at a y position.
    Horizontal,
}

/// One chart: its axes and the marks drawn so far.
pub struct Chart {
    title: String,
    height: f64,
    x: Axis,
    y: Axis,
    /// Drawn first: bands and hover columns, under the data.
    under: String,
    body: String,
    legend: Vec<(String, Color, Mark)>,
}

/// A fraction of an axis if it lies on the axis, allowing for rounding at its ends.
fn inside(fraction: f64) -> Option<f64> {
    const SLACK: f64 = 1e-9;
    (-SLACK..=1.0 + SLACK)
        .contains(&fraction)
        .then(|| fraction.clamp(0.0, 1.0))
}

/// Text for SVG content and attributes.
fn escape(text: &str) -> String {
    HtmlEscape(text).to_string()
}

impl Chart {
    /// `title` is the chart's accessible name and tooltip.
    pub fn new(title: impl Into<String>, x: Axis, y: Axis) -> Chart {
        Chart {
            title: title.into(),
            height: HEIGHT,
            x,
            y,
            under: String::new(),
            body: String::new(),
            legend: Vec::new(),
        }
    }

    /// As tall as `rows` rows of categories need (at least two), instead of the usual height.
    pub fn with_rows(mut self, rows: usize) -> Chart {
        self.height = TOP + BOTTOM + ROW_HEIGHT * rows.max(2) as f64;
        self
    }

    fn bottom(&self) -> f64 {
        self.height - BOTTOM
    }

    /// Where `value` falls along the x axis, or `None` beyond its ends: a mark outside the axis
    /// is left out rather than moved to the edge, where it would claim a value it does not have.
    fn plot_x(&self, value: f64) -> Option<f64> {
        let fraction = inside(self.x.scale.fraction(value)?)?;
        Some(LEFT + fraction * (WIDTH - LEFT - RIGHT))
    }

    /// As [`Chart::plot_x`], for the y axis.
    fn plot_y(&self, value: f64) -> Option<f64> {
        let fraction = inside(self.y.scale.fraction(value)?)?;
        Some(TOP + (1.0 - fraction) * (self.bottom() - TOP))
    }

    fn point(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        Some((self.plot_x(x)?, self.plot_y(y)?))
    }

    fn add_legend(&mut self, label: &str, color: Color, mark: Mark) {
        if !self.legend.iter().any(|(l, _, _)| l == label) {
            self.legend.push((label.to_owned(), color, mark));
        }
    }

    /// A line through the points in order; `None` (or a point the scale cannot place) breaks it,
    /// so a missing value shows as a gap rather than a fall to zero.
    pub fn line(&mut self, label: &str, color: Color, points: &[Option<(f64, f64)>]) {
        self.path(label, color, points, Mark::Line);
    }

    /// A dashed reference line (a target, a bound) through the points in order.
    pub fn dashed(&mut self, label: &str, color: Color, points: &[Option<(f64, f64)>]) {
        self.path(label, color, points, Mark::Dashed);
    }

    fn path(&mut self, label: &str, color: Color, points: &[Option<(f64, f64)>], mark: Mark) {
        let mut d = String::new();
        let mut run = 0;
        for point in points {
            match point.and_then(|(x, y)| self.point(x, y)) {
                Some((x, y)) => {
                    let _ = write!(d, "{}{x:.1} {y:.1} ", if run == 0 { 'M' } else { 'L' });
                    run += 1;
                }
                None => run = 0,
            }
        }
        if d.is_empty() {
            return;
        }
        let dashed = if mark == Mark::Dashed { " dashed" } else { "" };
        let _ = writeln!(
            self.body,
            r#"<path class="series {}{dashed}" d="{}"><title>{}</title></path>"#,
            color.class(),
            d.trim_end(),
            escape(label)
        );
        self.add_legend(label, color, mark);
    }

    /// One value per interval of `width` from `start` (per-second counts): each drawn as a level
    /// across its interval. `None` leaves its interval empty.
    pub fn steps(
        &mut self,
        label: &str,
        color: Color,
        start: f64,
        width: f64,
        values: &[Option<f64>],
    ) {
        let mut d = String::new();
        let mut open = false;
        for (i, value) in values.iter().enumerate() {
            let from = start + i as f64 * width;
            let placed = value.and_then(|v| {
                Some((
                    self.plot_x(from)?,
                    self.plot_x(from + width)?,
                    self.plot_y(v)?,
                ))
            });
            match placed {
                Some((x0, x1, y)) => {
                    if open {
                        let _ = write!(d, "V{y:.1} H{x1:.1} ");
                    } else {
                        let _ = write!(d, "M{x0:.1} {y:.1} H{x1:.1} ");
                    }
                    open = true;
                }
                None => open = false,
            }
        }
        if d.is_empty() {
            return;
        }
        let _ = writeln!(
            self.body,
            r#"<path class="series {}" d="{}"><title>{}</title></path>"#,
            color.class(),
            d.trim_end(),
            escape(label)
        );
        self.add_legend(label, color, Mark::Line);
    }

    /// Points, each with its own hover text.
    pub fn dots(&mut self, label: &str, color: Color, dots: &[Dot]) {
        let mut drawn = false;
        for dot in dots {
            if let Some((x, y)) = self.point(dot.x, dot.y) {
                let _ = writeln!(
                    self.body,
                    r#"<circle class="series {}" cx="{x:.1}" cy="{y:.1}" r="4"><title>{}</title></circle>"#,
                    color.class(),
                    escape(&dot.title)
                );
                drawn = true;
            }
        }
        if drawn {
            self.add_legend(label, color, Mark::Dot);
        }
    }

    /// Estimates with their intervals: a whisker from low to high and a dot at the estimate.
    pub fn intervals(
        &mut self,
        label: &str,
        color: Color,
        direction: Direction,
        intervals: &[Interval],
    ) {
        let mut drawn = false;
        for interval in intervals {
            let place = |along: f64| match direction {
                Direction::Vertical => self.point(interval.at, along),
                Direction::Horizontal => self.point(along, interval.at),
            };
            let (Some(low), Some(mid), Some(high)) = (
                place(interval.low),
                place(interval.estimate),
                place(interval.high),
            ) else {
                continue;
            };
            let (cap_x, cap_y) = match direction {
                Direction::Vertical => (5.0, 0.0),
                Direction::Horizontal => (0.0, 5.0),
            };
            let class = color.class();
            let title = escape(&interval.title);
            let _ = write!(
                self.body,
                r#"<g><title>{title}</title><line class="series {class}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
                low.0, low.1, high.0, high.1
            );
            for end in [low, high] {
                let _ = write!(
                    self.body,
                    r#"<line class="cap {class}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
                    end.0 - cap_x,
                    end.1 - cap_y,
                    end.0 + cap_x,
                    end.1 + cap_y
                );
            }
            let _ = writeln!(
                self.body,
                r#"<circle class="series {class}" cx="{:.1}" cy="{:.1}" r="4.5"/></g>"#,
                mid.0, mid.1
            );
            drawn = true;
        }
        if drawn {
            self.add_legend(label, color, Mark::Interval);
        }
    }

    /// A thin line between two points that belong together (the two trials of a pair, the
    /// estimates of a sweep): not data itself, so not a series.
    pub fn link(&mut self, from: (f64, f64), to: (f64, f64)) {
        if let (Some(a), Some(b)) = (self.point(from.0, from.1), self.point(to.0, to.1)) {
            let _ = writeln!(
                self.under,
                r#"<line class="link" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
                a.0, a.1, b.0, b.1
            );
        }
    }

    /// A vertical reference line at `x` across the plot, labelled at its top unless `label` is
    /// empty.
    pub fn vrule(&mut self, x: f64, class: &str, label: &str) {
        let Some(px) = self.plot_x(x) else { return };
        let _ = write!(
            self.body,
            r#"<line class="rule {class}" x1="{px:.1}" y1="{TOP:.1}" x2="{px:.1}" y2="{:.1}"/>"#,
            self.bottom(),
        );
        if !label.is_empty() {
            let _ = write!(
                self.body,
                r#"<text class="rule-label" x="{:.1}" y="{:.1}">{}</text>"#,
                px + 3.0,
                TOP + 11.0,
                escape(label)
            );
        }
        self.body.push('\n');
    }

    /// A horizontal reference line at `y` across the plot, labelled at its right end unless
    /// `label` is empty.
    pub fn hrule(&mut self, y: f64, class: &str, label: &str) {
        let Some(py) = self.plot_y(y) else { return };
        let _ = write!(
            self.body,
            r#"<line class="rule {class}" x1="{LEFT:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}"/>"#,
            WIDTH - RIGHT,
        );
        if !label.is_empty() {
            let _ = write!(
                self.body,
                r#"<text class="rule-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                WIDTH - RIGHT - 3.0,
                py - 4.0,
                escape(label)
            );
        }
        self.body.push('\n');
    }

    /// A shaded band over `x0..x1`, the plot's full height: a stall, which the reader must not
    /// miss and which a line cannot show (it has no value). `label` goes in the legend, `title`
    /// on hover.
    pub fn stall(&mut self, x0: f64, x1: f64, label: &str, title: &str) {
        let (Some(a), Some(b)) = (self.plot_x(x0), self.plot_x(x1)) else {
            return;
        };
        let _ = writeln!(
            self.under,
            r#"<rect class="band stall" x="{a:.1}" y="{TOP:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            (b - a).max(1.0),
            self.bottom() - TOP,
            escape(title)
        );
        self.add_legend(label, Color::Muted, Mark::Stall);
    }

    /// Invisible full-height columns of `width` from `start`, one per title: hovering anywhere
    /// over an interval shows its values, with no script.
    pub fn hover_columns(&mut self, start: f64, width: f64, titles: &[String]) {
        for (i, title) in titles.iter().enumerate() {
            let from = start + i as f64 * width;
            let (Some(a), Some(b)) = (self.plot_x(from), self.plot_x(from + width)) else {
                continue;
            };
            let _ = writeln!(
                self.under,
                r#"<rect class="hover" x="{a:.1}" y="{TOP:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                (b - a).max(0.5),
                self.bottom() - TOP,
                escape(title)
            );
        }
    }

    /// A ring at a point worth pointing out (a named percentile), with its hover text.
    pub fn marker(&mut self, x: f64, y: f64, label: &str, title: &str) {
        let Some((px, py)) = self.point(x, y) else {
            return;
        };
        let _ = writeln!(
            self.body,
            r#"<g class="marker"><title>{}</title><circle cx="{px:.1}" cy="{py:.1}" r="4"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            escape(title),
            px - 3.0,
            py - 8.0,
            escape(label)
        );
    }

    /// The finished `<svg>` element.
    pub fn render(&self) -> String {
        let mut svg = String::with_capacity(self.under.len() + self.body.len() + 4096);
        let title = escape(&self.title);
        let _ = writeln!(
            svg,
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {}" role="img" aria-label="{title}"><title>{title}</title>"#,
            self.height
        );
        let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, self.bottom());
        for tick in &self.y.ticks {
            if let Some(y) = self.plot_y(tick.value) {
                let _ = writeln!(
                    svg,
                    r#"<line class="grid" x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    left - 6.0,
                    y + 4.0,
                    escape(&tick.label)
                );
            }
        }
        for tick in &self.x.ticks {
            if let Some(x) = self.plot_x(tick.value) {
                let _ = writeln!(
                    svg,
                    r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"/><line class="axis" x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    bottom + 4.0,
                    bottom + 16.0,
                    escape(&tick.label)
                );
            }
        }
        svg.push_str(&self.under);
        svg.push_str(&self.body);
        let _ = writeln!(
            svg,
            r#"<line class="axis" x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{bottom:.1}"/><line class="axis" x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (left + right) / 2.0,
            self.height - 8.0,
            escape(&self.x.title)
        );
        let _ = writeln!(
            svg,
            r#"<text class="axis-title" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (top + bottom) / 2.0,
            escape(&self.y.title)
        );
        self.render_legend(&mut svg);
        svg.push_str("</svg>");
        svg
    }

    fn render_legend(&self, svg: &mut String) {
        let y = 16.0;
        let mut x = LEFT;
        svg.push_str(r#"<g class="legend">"#);
        for (label, color, mark) in &self.legend {
            let class = color.class();
            let _ = match mark {
                Mark::Line | Mark::Dashed => write!(
                    svg,
                    r#"<line class="swatch {class}{}" x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                    if *mark == Mark::Dashed { " dashed" } else { "" },
                    x + 18.0
                ),
                Mark::Dot => write!(
                    svg,
                    r#"<circle class="swatch {class}" cx="{:.1}" cy="{y:.1}" r="4"/>"#,
                    x + 9.0
                ),
                Mark::Interval => write!(
                    svg,
                    r#"<line class="swatch {class}" x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><circle class="swatch {class}" cx="{:.1}" cy="{y:.1}" r="4"/>"#,
                    x + 18.0,
                    x + 9.0
                ),
                Mark::Stall => write!(
                    svg,
                    r#"<rect class="band stall" x="{x:.1}" y="{:.1}" width="18" height="10"/>"#,
                    y - 5.0
                ),
            };
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x + 23.0,
                y + 4.0,
                escape(label)
            );
            // No text metrics without a browser: an average glyph width is close enough.
            x += 36.0 + 6.2 * label.chars().count() as f64;
        }
        svg.push_str("</g>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn nice_numbers_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_number(0.7, false), 1.0);
        assert_eq!(nice_number(1.0, false), 1.0);
        assert_eq!(nice_number(1.2, false), 2.0);
        assert_eq!(nice_number(3.1, false), 5.0);
        assert_eq!(nice_number(7.0, false), 10.0);
        assert_eq!(nice_number(1.4, true), 1.0);
        assert_eq!(nice_number(2.5, true), 2.0);
        assert_eq!(nice_number(4.0, true), 5.0);
        assert_eq!(nice_number(8.0, true), 10.0);
        assert!(close(nice_number(0.034, true), 0.05));
        assert_eq!(nice_number(2_300.0, false), 5_000.0);
        // Nothing to scale: a unit step rather than a NaN.
        assert_eq!(nice_number(0.0, true), 1.0);
    }

    #[test]
    fn linear_ticks_cover_the_range_at_nice_steps() {
        let ticks = linear_ticks(0.0, 9.7, 6);
        assert_eq!(ticks.step, 2.0);
        assert_eq!(ticks.values, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let ticks = linear_ticks(1_768.0, 2_160.0, 6);
        assert_eq!(ticks.step, 100.0);
        assert_eq!((ticks.min, ticks.max), (1_700.0, 2_200.0));
        let ticks = linear_ticks(-4.4, 35.3, 6);
        assert!(ticks.min <= -4.4 && ticks.max >= 35.3);
        assert!(ticks.values.contains(&0.0), "{:?}", ticks.values);
        // A single value, or none, still gives an axis.
        assert_eq!(linear_ticks(0.0, 0.0, 6).values.last(), Some(&1.0));
        assert!(linear_ticks(5.0, 5.0, 6).max >= 5.0);
        assert!(linear_ticks(f64::NAN, f64::INFINITY, 6).max > 0.0);
    }

    #[test]
    fn a_span_too_wide_for_a_float_still_gives_a_few_ticks() {
        for (min, max) in [(-1e306, 1e306), (-1e308, 1e308), (-f64::MAX, f64::MAX)] {
            let ticks = linear_ticks(min, max, 6);
            assert!(ticks.min.is_finite() && ticks.max.is_finite(), "{ticks:?}");
            assert!(ticks.min < 0.0 && ticks.max > 0.0, "{ticks:?}");
            assert!(
                (2..=MAX_TICKS + 1).contains(&ticks.values.len()),
                "{ticks:?}"
            );
            let axis = Axis::linear("change (%)", min, max);
            assert!(axis.scale.fraction(0.0).is_some());
        }
        // Steps too fine to survive rounding this far from zero, or asked for in their millions.
        let ticks = linear_ticks(1e20, 1e20 + 1.0, 6);
        assert!(ticks.values.len() <= MAX_TICKS + 1, "{ticks:?}");
        assert!(linear_ticks(0.0, 1.0, usize::MAX).values.len() <= MAX_TICKS + 1);
    }

    #[test]
    fn tick_labels_carry_the_decimals_their_step_needs() {
        assert_eq!(number_label(0.5, 0.1), "0.5");
        assert_eq!(number_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(number_label(250.0, 50.0), "250");
        assert_eq!(number_label(0.01, 0.01), "0.01");
        assert_eq!(number_label(-0.0, 1.0), "0");
    }

    #[test]
    fn log_ticks_are_decades_with_steps_between_on_short_ranges() {
        assert_eq!(log_ticks(2.5, 997.0), vec![1.0, 10.0, 100.0, 1_000.0]);
        assert_eq!(
            log_ticks(2.0, 40.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(log_ticks(10.0, 10.0), vec![10.0, 20.0, 50.0, 100.0]);
        let axis = Axis::log("latency (ms)", 2.5, 997.0);
        assert_eq!(
            axis.scale,
            Scale::Log {
                min: 1.0,
                max: 1_000.0
            }
        );
        assert!(close(axis.scale.fraction(10.0).expect("placed"), 1.0 / 3.0));
        assert_eq!(axis.scale.fraction(0.0), None);
        assert_eq!(axis.ticks[0].label, "1");
    }

    #[test]
    fn the_percentile_axis_spaces_the_nines_evenly() {
        assert!(close(percentile_position(0.0), 0.0));
        assert!(close(percentile_position(0.9), 1.0));
        assert!(close(percentile_position(0.99), 2.0));
        assert!((percentile_position(0.999) - 3.0).abs() < 1e-6);
        assert!(close(percentile_position(0.5), 2f64.log10()));
        // The maximum has no finite position; it is held at the far end of a long axis.
        assert!(percentile_position(1.0) > 11.0);
        let labels: Vec<String> = (0..=4).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        let axis = Axis::percentile("percentile", 3);
        let ticks: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(ticks, ["0%", "50%", "90%", "99%", "99.9%"]);
        assert_eq!(axis.scale.fraction(3.0), Some(1.0));
    }

    #[test]
    fn widely_spread_values_get_a_log_axis() {
        let stall = Axis::spread("ms", [2.5, 3.1, 997.0]);
        assert!(matches!(stall.scale, Scale::Log { .. }));
        let steady = Axis::spread("ms", [2.5, 3.1, 5.7]);
        assert_eq!(steady.scale, Scale::Linear { min: 0.0, max: 6.0 });
        // Zero cannot go on a log axis.
        let with_zero = Axis::spread("ms", [0.0, 997.0]);
        assert!(matches!(with_zero.scale, Scale::Linear { .. }));
    }

    /// The `d` attribute of every series path in `svg`.
    fn series_paths(svg: &str) -> Vec<&str> {
        svg.split("<path class=\"series")
            .skip(1)
            .filter_map(|rest| rest.split(" d=\"").nth(1)?.split('"').next())
            .collect()
    }

    #[test]
    fn a_missing_value_breaks_the_line_instead_of_falling_to_zero() {
        let mut chart = Chart::new(
            "p50",
            Axis::linear("s", 0.0, 4.0),
            Axis::linear("ms", 0.0, 10.0),
        );
        chart.steps(
            "p50",
            Color::S1,
            0.0,
            1.0,
            &[Some(2.0), Some(3.0), None, Some(4.0)],
        );
        let svg = chart.render();
        let paths = series_paths(&svg);
        assert_eq!(paths.len(), 1, "{svg}");
        let path = paths[0];
        // Two runs: seconds 0-1, then second 3 alone; nothing drawn at second 2, and no point
        // at y = 0 (the bottom of the plot).
        assert_eq!(path.matches('M').count(), 2, "{path}");
        let bottom = format!(" {:.1}", HEIGHT - BOTTOM);
        assert!(!path.contains(&bottom), "{path}");
        let x2 = LEFT + 0.5 * (WIDTH - LEFT - RIGHT);
        let x3 = LEFT + 0.75 * (WIDTH - LEFT - RIGHT);
        assert!(path.contains(&format!("H{x2:.1} M{x3:.1}")), "{path}");

        let mut line = Chart::new(
            "l",
            Axis::linear("x", 0.0, 3.0),
            Axis::linear("y", 0.0, 3.0),
        );
        let points = [
            Some((0.0, 1.0)),
            Some((1.0, 1.0)),
            None,
            Some((2.0, 2.0)),
            Some((3.0, 2.0)),
        ];
        line.line("l", Color::S2, &points);
        let svg = line.render();
        let paths = series_paths(&svg);
        assert_eq!(paths.len(), 1, "{svg}");
        assert_eq!(paths[0].matches('M').count(), 2, "{}", paths[0]);
        assert_eq!(paths[0].matches('L').count(), 2, "{}", paths[0]);
    }

    #[test]
    fn text_is_escaped_and_nothing_links_out() {
        let mut chart = Chart::new(
            "<script>alert(1)</script>",
            Axis::categories("kind", vec!["<b>".to_owned()]),
            Axis::linear("ms", 0.0, 1.0),
        );
        chart.dots(
            "a & b",
            Color::S1,
            &[Dot {
                x: 0.5,
                y: 0.5,
                title: "\"quoted\"".to_owned(),
            }],
        );
        let svg = chart.render();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a &amp; b"));
        assert!(!svg.contains("\"quoted\""));
        assert!(!svg.contains("http"), "no namespace or other URL: {svg}");
    }

    #[test]
    fn every_chart_has_a_title_an_accessible_name_and_a_legend() {
        let mut chart = Chart::new(
            "Latency",
            Axis::linear("time (s)", 0.0, 2.0),
            Axis::linear("latency (ms)", 0.0, 5.0),
        );
        chart.steps("p99", Color::S2, 0.0, 1.0, &[Some(4.0), Some(4.5)]);
        let svg = chart.render();
        assert!(svg.starts_with(r#"<svg class="chart""#));
        assert!(svg.contains(r#"aria-label="Latency""#));
        assert!(svg.contains("<title>Latency</title>"));
        assert!(svg.contains(r#"class="legend""#) && svg.contains(">p99</text>"));
        assert!(svg.contains(">time (s)</text>") && svg.contains(">latency (ms)</text>"));
    }

    #[test]
    fn marks_beyond_the_axes_are_left_out_not_moved_to_the_edge() {
        let mut chart = Chart::new(
            "c",
            Axis::linear("x", 0.0, 1.0),
            Axis::linear("y", 0.0, 1.0),
        );
        // The line breaks where it leaves the axes; nothing is drawn at the edge for x = 9.
        chart.line(
            "far",
            Color::S1,
            &[
                Some((-5.0, 0.5)),
                Some((0.0, 0.5)),
                Some((1.0, 1.0)),
                Some((9.0, 0.5)),
                Some((0.5, 7.0)),
            ],
        );
        chart.dots(
            "dots",
            Color::S2,
            &[Dot {
                x: 3.0,
                y: 0.5,
                title: String::new(),
            }],
        );
        chart.vrule(2.0, "phase", "beyond");
        chart.stall(4.0, 5.0, "stall", "beyond");
        let svg = chart.render();
        let paths = series_paths(&svg);
        assert_eq!(
            paths,
            [format!(
                "M{LEFT:.1} {:.1} L{:.1} {TOP:.1}",
                (TOP + HEIGHT - BOTTOM) / 2.0,
                WIDTH - RIGHT
            )],
            "{svg}"
        );
        assert!(!svg.contains("<circle"), "{svg}");
        assert!(
            !svg.contains("beyond") && !svg.contains("band stall"),
            "{svg}"
        );
        // The ends themselves are on the axis.
        assert_eq!(inside(1.0 + 1e-12), Some(1.0));
        assert_eq!(inside(-0.01), None);
    }
}
