//! The real results of the sample runs (`tests/fixtures/results/`), and ways to look into the
//! pages rendered from them, for the page's tests.

use super::render;
use crate::result::RunResult;

pub(super) const SAMPLES: &[(&str, &str)] = &[
    (
        "smoke",
        include_str!("../../../tests/fixtures/results/smoke.json"),
    ),
    (
        "verify",
        include_str!("../../../tests/fixtures/results/verify.json"),
    ),
    (
        "stall",
        include_str!("../../../tests/fixtures/results/stall.json"),
    ),
    (
        "overhead-quick",
        include_str!("../../../tests/fixtures/results/overhead-quick.json"),
    ),
];

pub(super) fn sample(name: &str) -> RunResult {
    let (_, text) = SAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no sample {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("sample {name}: {e}"))
}

pub(super) fn html(result: &RunResult) -> String {
    render(result, "result.json").unwrap_or_else(|e| panic!("renders: {e}"))
}

/// The element that carries `id`, from its opening tag to the end of its kind of element.
pub(super) fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no element with {marker}"));
    let start = html[..at].rfind('<').expect("an opening tag");
    let tag: String = html[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let end = html[start..]
        .find(&format!("</{tag}>"))
        .map_or(html.len(), |i| start + i);
    &html[start..end]
}

pub(super) fn has_id(html: &str, id: &str) -> bool {
    html.contains(&format!("id=\"{id}\""))
}

/// The `<svg class="chart">` elements in `html`.
pub(super) fn charts(html: &str) -> Vec<&str> {
    html.split("<svg class=\"chart\"")
        .skip(1)
        .map(|rest| rest.split("</svg>").next().unwrap_or(rest))
        .collect()
}

/// Whether a chart draws some data: a series path that goes somewhere, or a series dot or
/// whisker.
pub(super) fn draws_data(chart: &str) -> bool {
    chart.split("class=\"series").skip(1).any(|rest| {
        let element = rest.split('>').next().unwrap_or("");
        let path_moves = element
            .split(" d=\"")
            .nth(1)
            .is_some_and(|d| d.contains(['L', 'H', 'V']));
        let dot = element.contains(" r=\"") && !element.contains(" r=\"0\"");
        let whisker = element.contains(" x1=\"")
            && element
                .split('"')
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w[0].ends_with(" y2=") || w[0].ends_with(" x2="));
        path_moves || dot || whisker
    })
}

/// `text` as the page shows it in HTML (minijinja escapes `/` too).
pub(super) fn escaped(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}
