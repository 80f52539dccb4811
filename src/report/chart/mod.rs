//! Charts as inline SVG, drawn by hand: no script and no network when the report is opened, and
//! colours that follow the page. Every mark carries a CSS class (`series s1`, `grid`, `stall`), and
//! the page's stylesheet maps the classes to its colour variables, so dark mode and print restyle
//! the charts as they restyle the text. Chart libraries that write colours into the SVG cannot.
//!
//! A chart is two axes and the marks drawn in their coordinates. Data series get the class
//! `series`; everything else (grid, rules, bands, legend swatches) gets its own, so a reader of
//! the file can tell data from decoration.
//!
//! This module holds the chart, its palette and how values map to the plot; `axis` and `ticks`
//! build the axes, `marks` draws into the chart and `render` writes the finished SVG.

mod axis;
mod marks;
mod render;
mod ticks;

use minijinja::HtmlEscape;

pub(crate) use axis::{Axis, percentile_position};
pub(crate) use marks::{Direction, Dot, Interval};

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

/// Where values fall along an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
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
    pub(crate) fn fraction(&self, value: f64) -> Option<f64> {
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

/// A colour of the page's palette, by CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
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

/// One chart: its axes and the marks drawn so far.
pub(crate) struct Chart {
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
    pub(crate) fn new(title: impl Into<String>, x: Axis, y: Axis) -> Chart {
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
    pub(crate) fn with_rows(mut self, rows: usize) -> Chart {
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
}

#[cfg(test)]
mod tests;
