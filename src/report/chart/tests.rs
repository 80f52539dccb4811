use super::axis::percentile_label;
use super::ticks::{MAX_TICKS, linear_ticks, log_ticks, nice_number, number_label};
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
        &[
            (0.0, 1.0, Some(2.0)),
            (1.0, 2.0, Some(3.0)),
            (2.0, 3.0, None),
            (3.0, 4.0, Some(4.0)),
        ],
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
fn levels_of_unequal_widths_join_where_they_meet() {
    let mut chart = Chart::new(
        "sent",
        Axis::linear("s", 0.0, 5.0),
        Axis::linear("/s", 0.0, 10.0),
    );
    // Two buckets of two seconds and a last one of one; then a level that does not meet the one
    // before it starts a new run.
    chart.steps(
        "sent",
        Color::S1,
        &[
            (0.0, 2.0, Some(2.0)),
            (2.0, 4.0, Some(3.0)),
            (4.0, 5.0, Some(4.0)),
        ],
    );
    chart.steps(
        "gap",
        Color::S2,
        &[(0.0, 1.0, Some(2.0)), (3.0, 4.0, Some(3.0))],
    );
    let svg = chart.render();
    let paths = series_paths(&svg);
    assert_eq!(paths.len(), 2, "{svg}");
    assert_eq!(paths[0].matches('M').count(), 1, "{}", paths[0]);
    assert_eq!(paths[0].matches('H').count(), 3, "{}", paths[0]);
    assert!(
        paths[0].ends_with(&format!("H{:.1}", WIDTH - RIGHT)),
        "{}",
        paths[0]
    );
    assert_eq!(paths[1].matches('M').count(), 2, "{}", paths[1]);
}

#[test]
fn every_chart_has_a_title_an_accessible_name_and_a_legend() {
    let mut chart = Chart::new(
        "Latency",
        Axis::linear("time (s)", 0.0, 2.0),
        Axis::linear("latency (ms)", 0.0, 5.0),
    );
    chart.steps(
        "p99",
        Color::S2,
        &[(0.0, 1.0, Some(4.0)), (1.0, 2.0, Some(4.5))],
    );
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
