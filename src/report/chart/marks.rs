//! The marks a chart draws in its axes' coordinates: data series (lines, steps, dots, intervals)
//! and the decoration around them (links, rules, stall bands, hover columns, markers). A mark
//! that falls outside the axes is left out, never moved to an edge.

use std::fmt::Write as _;

use super::{Chart, Color, LEFT, Mark, RIGHT, TOP, WIDTH, escape};

/// A point with its hover text.
pub(crate) struct Dot {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

/// An estimate with its interval, at one position of the other axis.
pub(crate) struct Interval {
    pub at: f64,
    pub low: f64,
    pub estimate: f64,
    pub high: f64,
    pub title: String,
}

/// Which way intervals run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Along the y axis, at an x position.
    Vertical,
    /// Along the x axis, at a y position.
    Horizontal,
}

impl Chart {
    /// A line through the points in order; `None` (or a point the scale cannot place) breaks it,
    /// so a missing value shows as a gap rather than a fall to zero.
    pub(crate) fn line(&mut self, label: &str, color: Color, points: &[Option<(f64, f64)>]) {
        self.path(label, color, points, Mark::Line);
    }

    /// A dashed reference line (a target, a bound) through the points in order.
    pub(crate) fn dashed(&mut self, label: &str, color: Color, points: &[Option<(f64, f64)>]) {
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

    /// Values each held over an interval of the x axis, `(from, to, value)` in order (per-second
    /// counts, or buckets of seconds): each drawn as a level across its interval, joined to the
    /// next where they meet. `None` leaves its interval empty.
    pub(crate) fn steps(&mut self, label: &str, color: Color, levels: &[(f64, f64, Option<f64>)]) {
        let mut d = String::new();
        let mut open_to: Option<f64> = None;
        for &(from, to, value) in levels {
            let placed =
                value.and_then(|v| Some((self.plot_x(from)?, self.plot_x(to)?, self.plot_y(v)?)));
            match placed {
                Some((x0, x1, y)) => {
                    if open_to == Some(from) {
                        let _ = write!(d, "V{y:.1} H{x1:.1} ");
                    } else {
                        let _ = write!(d, "M{x0:.1} {y:.1} H{x1:.1} ");
                    }
                    open_to = Some(to);
                }
                None => open_to = None,
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
    pub(crate) fn dots(&mut self, label: &str, color: Color, dots: &[Dot]) {
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
    pub(crate) fn intervals(
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
    pub(crate) fn link(&mut self, from: (f64, f64), to: (f64, f64)) {
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
    pub(crate) fn vrule(&mut self, x: f64, class: &str, label: &str) {
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
    pub(crate) fn hrule(&mut self, y: f64, class: &str, label: &str) {
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
    pub(crate) fn stall(&mut self, x0: f64, x1: f64, label: &str, title: &str) {
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

    /// Invisible full-height columns over the intervals `(from, to, title)`: hovering anywhere
    /// over one shows its values, with no script.
    pub(crate) fn hover_columns(&mut self, columns: &[(f64, f64, String)]) {
        for (from, to, title) in columns {
            let (Some(a), Some(b)) = (self.plot_x(*from), self.plot_x(*to)) else {
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
    pub(crate) fn marker(&mut self, x: f64, y: f64, label: &str, title: &str) {
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
}
