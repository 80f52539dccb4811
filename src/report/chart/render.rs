//! The finished `<svg>`: grid and tick labels from the axes, the marks drawn so far, axis titles
//! and the legend.

use std::fmt::Write as _;

use super::{Chart, LEFT, Mark, RIGHT, TOP, WIDTH, escape};

impl Chart {
    /// The finished `<svg>` element.
    pub(crate) fn render(&self) -> String {
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
