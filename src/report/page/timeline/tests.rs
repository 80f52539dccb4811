//! The timeline's figures: stalls, phases and the target rate, and the buckets of a long run.

use super::*;
use crate::report::page::samples::{charts, element, escaped, html, sample};
use crate::result::RunResult;

#[test]
fn a_second_in_which_nothing_completed_is_a_gap_not_a_zero() {
    let page = html(&sample("stall"));
    let figure = element(&page, "timeline-latency");
    // Four stalls (seconds 3, 8, 13, 18) split each latency line into five runs.
    let chart = charts(figure)[0];
    let p50 = chart
        .split("<path class=\"series s1\" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a p50 line");
    assert_eq!(p50.matches('M').count(), 5, "{p50}");
    assert_eq!(
        chart.matches("class=\"band stall\"").count(),
        4 + 1,
        "4 + legend"
    );
    assert!(figure.contains("second 3: no request completed"));
    // The data table says so instead of giving a number.
    assert_eq!(figure.matches("nothing completed</td>").count(), 4);
    assert!(element(&page, "timeline").contains("3, 8, 13, 18"));

    let steady = html(&sample("smoke"));
    let chart = charts(element(&steady, "timeline-latency"))[0];
    assert!(!chart.contains("band stall"), "no stall, no band");
}

#[test]
fn phases_and_the_target_rate_are_drawn_when_there_are_several() {
    let mut result = sample("stall");
    result.phases = vec![
        PhaseResult {
            start_s: 0.0,
            duration_s: 10.0,
            from_rate: 50.0,
            to_rate: 150.0,
        },
        PhaseResult {
            start_s: 10.0,
            duration_s: 10.0,
            from_rate: 100.0,
            to_rate: 100.0,
        },
    ];
    let page = html(&result);
    let throughput = element(&page, "timeline-throughput");
    assert!(
        throughput.contains(&escaped("phase 1: 50→150/s")),
        "{throughput}"
    );
    assert!(throughput.contains(&escaped("phase 2: 100/s")));
    assert!(throughput.contains("series muted dashed"));
    assert_eq!(throughput.matches("class=\"rule phase\"").count(), 2);
}

/// The `d` attribute of the dashed target line, and the y axis's largest tick label.
fn target_path_and_top(figure: &str) -> (&str, &str) {
    let chart = charts(figure)[0];
    let path = chart
        .split("<path class=\"series muted dashed\" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a target line");
    let top = chart
        .split("text-anchor=\"end\">")
        .filter_map(|rest| rest.split('<').next())
        .last()
        .expect("y ticks");
    (path, top)
}

#[test]
fn a_ramp_cut_short_is_drawn_only_as_far_as_it_ran() {
    // A 60 s ramp from 100/s to 1000/s, stopped after 20 s: the target had reached 400/s.
    let mut result = sample("stall");
    result.phases = vec![PhaseResult {
        start_s: 0.0,
        duration_s: 60.0,
        from_rate: 100.0,
        to_rate: 1_000.0,
    }];
    result.status = crate::result::RunStatus::Interrupted {
        reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
    };
    let page = html(&result);
    let figure = element(&page, "timeline-throughput");
    let (path, top) = target_path_and_top(figure);
    // From the left edge at 100/s to the right edge at 400/s, on an axis that ends at 500/s,
    // not 1000/s at the right edge.
    assert_eq!(top, "500", "{figure}");
    let points: Vec<&str> = path
        .split(['M', 'L'])
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(points.len(), 2, "{path}");
    assert!(points[1].trim().starts_with("730.0 "), "{path}");
    let y = |p: &str| -> f64 {
        p.trim()
            .split(' ')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("y")
    };
    // y runs down: 400/s is four times as far above the bottom as 100/s.
    let bottom = 300.0 - 46.0;
    assert!(
        ((bottom - y(points[1])) / (bottom - y(points[0])) - 4.0).abs() < 0.01,
        "{path}"
    );
    assert!(
        figure.contains("<td>19</td><td class=\"num\">392.5</td>"),
        "{figure}"
    );

    // A second phase that never started has no boundary on the chart.
    result.phases.push(PhaseResult {
        start_s: 60.0,
        duration_s: 10.0,
        from_rate: 5_000.0,
        to_rate: 5_000.0,
    });
    let page = html(&result);
    let figure = element(&page, "timeline-throughput");
    assert!(!figure.contains("phase 2"), "{figure}");
    assert_eq!(figure.matches("class=\"rule phase\"").count(), 1);
    assert_eq!(target_path_and_top(figure).1, "500");
}

#[test]
fn stall_bands_sit_in_the_gaps_of_the_lines() {
    // Seconds numbered from 100: bands and lines are both placed by position on the axis.
    let mut result = sample("stall");
    for s in &mut result.timeline {
        s.second += 100;
    }
    let page = html(&result);
    let figure = element(&page, "timeline-latency");
    let chart = charts(figure)[0];
    // Four stalls, plus the legend's swatch, and the hover names the second as recorded.
    assert_eq!(
        chart.matches("class=\"band stall\"").count(),
        4 + 1,
        "{chart}"
    );
    assert!(chart.contains("second 103: no request completed"));
    // The band over the fourth second starts where the p50 line breaks.
    let width = 760.0 - 66.0 - 30.0;
    let x3 = 66.0 + width * 3.0 / 20.0;
    assert!(
        chart.contains(&format!("class=\"band stall\" x=\"{x3:.1}\"")),
        "{chart}"
    );
    assert!(chart.contains(&format!("H{x3:.1} M")), "{chart}");
}

#[test]
fn latencies_of_many_seconds_are_charted_in_seconds() {
    let mut result = sample("stall");
    for s in &mut result.timeline {
        s.p50_us = s.p50_us.map(|_| 3_600_000_000);
        s.p99_us = s.p99_us.map(|_| 3_600_000_000);
    }
    let page = html(&result);
    let chart = charts(element(&page, "timeline-latency"))[0];
    assert!(chart.contains(">latency (s)</text>"), "{chart}");
    assert!(!chart.contains("000000<"), "no seven-digit labels: {chart}");
    let steady = html(&sample("stall"));
    assert!(charts(element(&steady, "timeline-latency"))[0].contains(">latency (ms)</text>"));
}

/// A steady run of `seconds` seconds at 1,000/s whose p99 wanders, with one spike of 9 s at
/// second `spike`.
fn long_run(seconds: u64, spike: u64) -> RunResult {
    let mut result = sample("smoke");
    result.phases = vec![PhaseResult {
        start_s: 0.0,
        duration_s: seconds as f64,
        from_rate: 1_000.0,
        to_rate: 1_000.0,
    }];
    result.timeline = (0..seconds)
        .map(|i| SecondResult {
            second: i,
            sent: 1_000,
            completed: 1_000 - i % 3,
            unexpected: 0,
            dropped: 0,
            p50_us: Some(2_000 + i % 7 * 10),
            p95_us: Some(3_000),
            p99_us: Some(if i == spike {
                9_000_000
            } else {
                4_000 + (i * 7_919) % 1_000
            }),
        })
        .collect();
    result
}

/// The `d` attribute of the series path of `class` in `chart`.
fn series<'a>(chart: &'a str, class: &str) -> &'a str {
    chart
        .split(&format!("<path class=\"series {class}\" d=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {class} series in {chart}"))
}

#[test]
fn a_long_run_is_drawn_in_at_most_max_buckets_holding_the_maxima_of_their_seconds() {
    let hour = long_run(3_600, 1_234);
    let width = bucket_width(hour.timeline.len());
    assert_eq!(width, 18);
    let drawn: Vec<Bucket> = buckets(&hour.timeline).collect();
    assert_eq!(drawn.len(), MAX_BUCKETS);
    for b in &drawn {
        let covered = &hour.timeline[b.start..b.start + b.len];
        assert_eq!(b.len, width);
        assert_eq!(b.p99_us, covered.iter().filter_map(|s| s.p99_us).max());
        assert_eq!(b.p50_us, covered.iter().filter_map(|s| s.p50_us).max());
        assert_eq!(
            b.completed,
            covered.iter().map(|s| s.completed).sum::<u64>()
        );
        assert_eq!(
            (b.first, b.last),
            (covered[0].second, covered[width - 1].second)
        );
    }
    // Every second is in exactly one bucket.
    assert_eq!(drawn.iter().map(|b| b.sent).sum::<u64>(), 3_600_000);

    let page = html(&hour);
    let figure = element(&page, "timeline-latency");
    let chart = charts(figure)[0];
    // One level per bucket, drawn as one unbroken line, and one hover column per bucket.
    assert_eq!(series(chart, "s2").matches('H').count(), MAX_BUCKETS);
    assert_eq!(series(chart, "s2").matches('M').count(), 1);
    assert_eq!(chart.matches("class=\"hover\"").count(), MAX_BUCKETS);
    assert_eq!(
        figure.matches("<tr").count(),
        MAX_BUCKETS + 1,
        "rows and header"
    );
    // The chart says it is bucketed, and the spike of second 1234 is its bucket's p99.
    assert!(chart.contains("Latency in buckets of 18 s"), "{chart}");
    assert!(figure.contains("buckets of 18 s"));
    assert!(chart.contains("seconds 1224–1241: highest p50"), "{chart}");
    assert!(
        figure.contains(
            "<td>1224–1241</td><td class=\"num\">2.06 ms</td><td class=\"num\">9.00 s</td>"
        ),
        "{figure}"
    );
    // The throughput: the mean per second of each bucket, and its totals in the table.
    let throughput = element(&page, "timeline-throughput");
    let chart = charts(throughput)[0];
    assert!(chart.contains("the mean of each 18 s bucket"), "{chart}");
    assert_eq!(series(chart, "s1").matches('H').count(), MAX_BUCKETS);
    assert!(
        throughput.contains("<td>0–17</td><td class=\"num\">1000</td><td class=\"num\">18,000</td><td class=\"num\">17,982</td>"),
        "{throughput}"
    );
}

#[test]
fn a_run_of_max_buckets_seconds_is_drawn_second_by_second() {
    let run = long_run(MAX_BUCKETS as u64, 17);
    assert_eq!(bucket_width(run.timeline.len()), 1);
    let page = html(&run);
    let figure = element(&page, "timeline-latency");
    let chart = charts(figure)[0];
    assert!(chart.contains("Latency per second: p50 and p99"), "{chart}");
    assert!(!figure.contains("bucket"), "{figure}");
    assert_eq!(series(chart, "s2").matches('H').count(), MAX_BUCKETS);
    assert!(
        figure.contains("<td>17</td><td class=\"num\">2.03 ms</td><td class=\"num\">9.00 s</td>")
    );
    assert!(
        chart.contains("second 17: p50 2.03 ms, p99 9.00 s"),
        "{chart}"
    );
}

#[test]
fn a_shorter_last_bucket_ends_at_the_end_of_the_run() {
    // One second too many: buckets of two, the last holding the last second alone.
    let seconds = MAX_BUCKETS as u64 + 1;
    let run = long_run(seconds, seconds - 1);
    let drawn: Vec<Bucket> = buckets(&run.timeline).collect();
    assert_eq!(drawn.len(), MAX_BUCKETS / 2 + 1);
    let last = drawn.last().expect("buckets");
    assert_eq!(
        (last.start as u64, last.len, last.p99_us),
        (seconds - 1, 1, Some(9_000_000))
    );
    let page = html(&run);
    let chart = charts(element(&page, "timeline-latency"))[0];
    // The last level runs to the right-hand end of the plot (760 − 30), where the axis ends.
    assert!(series(chart, "s2").ends_with("H730.0"), "{chart}");
    assert!(
        chart.contains(&format!("second {}: p50", seconds - 1)),
        "{chart}"
    );
}

#[test]
fn a_bucket_that_stalled_is_shaded_and_one_that_only_stalled_breaks_the_line() {
    let mut run = long_run(3_600, 5_000);
    // Second 100 stalled (bucket 90–107 keeps the others' latencies); seconds 126–143 all did.
    for s in run
        .timeline
        .iter_mut()
        .filter(|s| s.second == 100 || (126..144).contains(&s.second))
    {
        s.p50_us = None;
        s.p95_us = None;
        s.p99_us = None;
        s.completed = 0;
    }
    let page = html(&run);
    let figure = element(&page, "timeline-latency");
    let chart = charts(figure)[0];
    assert_eq!(
        chart.matches("class=\"band stall\"").count(),
        2 + 1,
        "2 + legend"
    );
    assert!(chart.contains("seconds 90–107: no request completed in 1 of its 18 seconds"));
    assert!(chart.contains("seconds 126–143: no request completed in 18 of its 18 seconds"));
    // The wholly stalled bucket splits the line in two; its row says so.
    assert_eq!(series(chart, "s1").matches('M').count(), 2);
    assert!(figure.contains("<td>126–143</td><td class=\"num\">nothing completed</td>"));
    assert!(figure.contains("<tr class=\"marked\"><td>90–107</td><td class=\"num\">2."));
    assert!(
        element(&page, "timeline").contains("In 19 second(s) no request completed: 100, 126–143.")
    );
}

#[test]
fn the_stalls_named_are_bounded_and_the_rest_counted() {
    let mut run = long_run(3_600, 5_000);
    for s in run.timeline.iter_mut().filter(|s| s.second % 10 == 5) {
        s.p50_us = None;
        s.p99_us = None;
    }
    let list = stall_list(&run.timeline);
    assert!(list.starts_with("5, 15, 25"), "{list}");
    assert_eq!(list.matches(", ").count(), LISTED_STALLS - 1, "{list}");
    assert!(
        list.ends_with(" and 340 more run(s) of stalled seconds"),
        "{list}"
    );
    // Runs of consecutive seconds are ranges; none, nothing.
    let mut run = long_run(30, 0);
    for s in &mut run.timeline[3..6] {
        s.p50_us = None;
    }
    run.timeline[29].p50_us = None;
    assert_eq!(stall_list(&run.timeline), "3–5, 29");
    assert_eq!(stall_list(&long_run(30, 0).timeline), "");
}
