//! The HTML reports in a real browser (Debian's headless Chromium): what a reader gets with
//! JavaScript off, in light and dark mode and on paper. The page is measured as laid out: every
//! chart must have drawn its data inside its plot, not merely contain markup.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::browser::{Browser, Probe, Scheme};
use support::run::{HARNESS, Run};

/// Asserts what every report needs whatever its content, and that the named sections are there
/// with their charts drawn.
fn assert_readable(probe: &Probe, page: &Path, sections: &[&str], charts: &[&str]) {
    for id in sections {
        assert!(
            probe.ids.iter().any(|i| i == id),
            "{}: no #{id}; ids: {:?}",
            page.display(),
            probe.ids
        );
    }
    assert!(!probe.charts.is_empty(), "{}: no charts", page.display());
    for chart in &probe.charts {
        assert!(
            chart.series > 0 && chart.drawn > 0,
            "{}: chart in #{} drew no data: {chart:?}",
            page.display(),
            chart.id
        );
        assert!(
            chart.width >= 300.0 && chart.height >= 100.0,
            "{}: chart in #{} is too small to read: {chart:?}",
            page.display(),
            chart.id
        );
    }
    for id in charts {
        assert!(
            probe.charts.iter().any(|c| c.id == *id),
            "{}: no chart in #{id}; charts: {:?}",
            page.display(),
            probe.charts
        );
    }
    // Offline: nothing to fetch when the file is opened, and nothing needs a script.
    let external: Vec<&String> = probe
        .links
        .iter()
        .filter(|l| l.starts_with("http:") || l.starts_with("https:") || l.starts_with("//"))
        .collect();
    assert!(
        external.is_empty(),
        "{}: external references {external:?}",
        page.display()
    );
    assert_eq!(
        probe.scripts,
        0,
        "{}: the report needs no script",
        page.display()
    );
}

/// The relative luminance of a computed `rgb(r, g, b)` colour, 0 (black) to 1 (white).
fn luminance(css: &str) -> f64 {
    let channels: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|c| c.trim().parse::<f64>().expect("a colour channel") / 255.0)
        .collect();
    assert_eq!(channels.len(), 3, "not an rgb colour: {css}");
    0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
}

/// Light and dark screenshots and a printed PDF beside the page, for people to look at too.
fn assert_light_dark_and_print(browser: &Browser, page: &Path, light: &Probe) {
    let dark = browser.probe(page, Scheme::Dark);
    assert!(
        luminance(&light.background) > 0.8,
        "light background {}",
        light.background
    );
    assert!(
        luminance(&dark.background) < 0.2,
        "dark mode background {}",
        dark.background
    );
    assert!(
        luminance(&dark.color) > 0.6,
        "dark mode text colour {}",
        dark.color
    );
    assert_eq!(
        dark.charts.iter().map(|c| c.drawn).collect::<Vec<_>>(),
        light.charts.iter().map(|c| c.drawn).collect::<Vec<_>>(),
        "dark mode draws what light mode draws"
    );
    // Series colours follow the scheme: a light-mode blue on a dark background is hard to read.
    for (dark, light) in dark.charts.iter().zip(&light.charts) {
        assert_ne!(
            dark.stroke,
            light.stroke,
            "{}: chart in #{} keeps its light-mode series colour in dark mode",
            page.display(),
            dark.id
        );
    }
    for (scheme, name) in [(Scheme::Light, "light"), (Scheme::Dark, "dark")] {
        let png = page.with_extension(format!("{name}.png"));
        browser.screenshot(page, &png, scheme, 3000);
        let size = std::fs::metadata(&png).expect("the screenshot").len();
        assert!(size > 20_000, "{}: a {size}-byte screenshot", png.display());
        eprintln!("screenshot: {}", png.display());
    }
    let pdf = page.with_extension("pdf");
    browser.print(page, &pdf);
    let bytes = std::fs::read(&pdf).expect("the PDF");
    assert!(bytes.starts_with(b"%PDF"), "{} is not a PDF", pdf.display());
    assert!(
        bytes.len() > 20_000,
        "{}: a {}-byte PDF",
        pdf.display(),
        bytes.len()
    );
}

#[test]
fn the_report_of_a_real_smoke_run_draws_every_chart() {
    let run = Run::new("browser-smoke");
    let Some(browser) = Browser::find(
        "the_report_of_a_real_smoke_run_draws_every_chart",
        &run.out.join("browser"),
    ) else {
        return;
    };
    let output = run.run(&["run", "scenarios/smoke.yaml"]);
    assert!(
        output.status.success(),
        "smoke run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page = run.out.join("smoke/report.html");
    let probe = browser.probe(&page, Scheme::Light);
    assert_readable(
        &probe,
        &page,
        &[
            "verdict",
            "scenario",
            "environment",
            "load",
            "thresholds",
            "errors",
        ],
        &[
            "spectrum-quote",
            "spectrum-bad_symbol",
            "timeline-latency",
            "timeline-throughput",
        ],
    );
    assert!(probe.text.contains("PASS"), "verdict text: {}", probe.text);
    assert!(probe.text.contains("smoke"));
    assert_light_dark_and_print(&browser, &page, &probe);
}

/// Renders a stored result with `harness report` into `dir`.
fn render(fixture: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("scratch directory");
    let page = dir.join(format!("{fixture}.html"));
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(format!("{fixture}.json"));
    let output = Command::new(HARNESS)
        .args(["report"])
        .arg(&source)
        .arg("--out")
        .arg(&page)
        .output()
        .expect("harness report runs");
    assert!(
        output.status.success(),
        "harness report {}: {}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    page
}

/// Stored results of real runs with trace and metrics verification, a stall, and an overhead
/// experiment: the sections a smoke run does not have, drawn.
#[test]
fn the_reports_of_stored_results_draw_every_section() {
    let run = Run::new("browser-stored");
    let Some(browser) = Browser::find(
        "the_reports_of_stored_results_draw_every_section",
        &run.out.join("browser"),
    ) else {
        return;
    };
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "verify",
            &["verdict", "traces", "metrics", "errors"],
            &["timeline-latency", "timeline-throughput"],
        ),
        (
            "stall",
            &["verdict", "thresholds"],
            &["spectrum-quote", "timeline-latency", "timeline-throughput"],
        ),
        (
            "overhead-quick",
            &["verdict", "overhead"],
            &["overhead-trials", "overhead-effect", "spectrum-quote"],
        ),
    ];
    for (fixture, sections, charts) in cases {
        let page = render(fixture, &run.out);
        let probe = browser.probe(&page, Scheme::Light);
        assert_readable(&probe, &page, sections, charts);
        if fixture == "stall" {
            assert!(probe.text.contains("FAIL"), "stall verdict: {}", probe.text);
            assert!(
                probe.text.contains("p(99) < 100ms"),
                "the failing threshold is named"
            );
        }
    }
    let stall = run.out.join("stall.html");
    let probe = browser.probe(&stall, Scheme::Light);
    assert_light_dark_and_print(&browser, &stall, &probe);

    // The comparison overlays both runs' spectra.
    let comparison = run.out.join("comparison.html");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results");
    let output = Command::new(HARNESS)
        .arg("compare")
        .args([fixtures.join("smoke.json"), fixtures.join("stall.json")])
        .arg("--html")
        .arg(&comparison)
        .output()
        .expect("harness compare runs");
    assert!(
        output.status.code().is_some_and(|code| code <= 1),
        "harness compare: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probe = browser.probe(&comparison, Scheme::Light);
    assert_readable(&probe, &comparison, &["verdict"], &["spectrum-quote"]);
    let series = probe.charts.iter().map(|c| c.drawn).sum::<usize>();
    assert_eq!(series, 2, "base and new drawn: {:?}", probe.charts);
}
