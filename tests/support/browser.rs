//! Debian's headless Chromium for end-to-end tests of the HTML reports: screenshots, a PDF as
//! printed, and a probe that measures in the rendered page what a reader would see.
//!
//! Where `chromium` is not installed, [`Browser::find`] returns `None` and the caller skips, unless
//! `HARNESS_REQUIRE_BROWSER=1` (set by `scripts/test`, so CI) makes that a failure.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const REQUIRE_VAR: &str = "HARNESS_REQUIRE_BROWSER";
const TIMEOUT: Duration = Duration::from_secs(90);

/// Injected into a copy of the page, never into the report itself (which needs no script): for
/// every chart, how many of its data series the browser actually laid out with a size inside the
/// plot, and what else a reader depends on.
const PROBE: &str = r#"<script>
(() => {
  const drawn = (svg, el) => {
    const vb = svg.viewBox.baseVal;
    const b = el.getBBox();
    const length = typeof el.getTotalLength === "function" ? el.getTotalLength() : 0;
    const inside = b.x + b.width >= vb.x && b.x <= vb.x + vb.width
      && b.y + b.height >= vb.y && b.y <= vb.y + vb.height;
    return inside && (length > 0 || (b.width > 0 && b.height > 0));
  };
  const charts = [...document.querySelectorAll("svg.chart")].map((svg) => {
    const owner = svg.closest("[id]");
    const series = [...svg.querySelectorAll(".series")];
    const box = svg.getBoundingClientRect();
    return {
      id: owner ? owner.id : "",
      stroke: series.length ? getComputedStyle(series[0]).stroke : "",
      series: series.length,
      drawn: series.filter((el) => drawn(svg, el)).length,
      width: box.width,
      height: box.height,
    };
  });
  const links = [...document.querySelectorAll("[href],[src]")]
    .map((el) => el.getAttribute("href") || el.getAttribute("src"));
  const probe = {
    ids: [...document.querySelectorAll("[id]")].map((el) => el.id),
    charts,
    links,
    scripts: document.querySelectorAll("script").length - 1,
    background: getComputedStyle(document.body).backgroundColor,
    color: getComputedStyle(document.body).color,
    text: document.body.innerText,
  };
  document.documentElement.setAttribute("data-probe", JSON.stringify(probe));
})();
</script>"#;

pub(crate) struct Browser {
    binary: PathBuf,
    scratch: PathBuf,
}

/// What the probe measured in the rendered page.
#[derive(Debug, Deserialize)]
pub(crate) struct Probe {
    pub ids: Vec<String>,
    pub charts: Vec<Chart>,
    pub links: Vec<String>,
    /// `<script>` elements of the page itself (the probe's own excluded).
    pub scripts: usize,
    /// The body's computed background colour, e.g. `rgb(255, 255, 255)`.
    pub background: String,
    /// The body's computed text colour.
    pub color: String,
    /// The text a reader sees.
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Chart {
    /// The id of the nearest element around the chart that has one.
    pub id: String,
    /// The computed stroke colour of its first series.
    pub stroke: String,
    pub series: usize,
    /// Series laid out with a non-zero length or size inside the chart's view box.
    pub drawn: usize,
    pub width: f64,
    pub height: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scheme {
    Light,
    Dark,
}

impl Browser {
    /// Chromium, with a scratch directory for its profiles; `None` (skip) when not installed.
    pub(crate) fn find(test: &str, scratch: &Path) -> Option<Browser> {
        let binary = super::tool("chromium", test, REQUIRE_VAR, "chromium")?;
        std::fs::create_dir_all(scratch).expect("create the browser scratch directory");
        Some(Browser {
            binary,
            scratch: scratch.to_owned(),
        })
    }

    /// Renders `page` with the probe and returns what it measured.
    pub(crate) fn probe(&self, page: &Path, scheme: Scheme) -> Probe {
        let html = std::fs::read_to_string(page)
            .unwrap_or_else(|e| panic!("reading {}: {e}", page.display()));
        let at = html.rfind("</body>").expect("the page has a </body>");
        let probed = self.scratch.join(format!(
            "probe-{}",
            page.file_name().expect("a file").to_string_lossy()
        ));
        std::fs::write(&probed, format!("{}{PROBE}{}", &html[..at], &html[at..]))
            .expect("write the probed copy");
        let dom = self.headless(&probed, scheme, &["--dump-dom"]);
        let attribute = "data-probe=\"";
        let start = dom
            .find(attribute)
            .unwrap_or_else(|| panic!("the probe did not run in {}:\n{dom}", page.display()))
            + attribute.len();
        let end = start + dom[start..].find('"').expect("a closing quote");
        let json = unescape(&dom[start..end]);
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output {json}: {e}"))
    }

    /// A screenshot of the page's first `height` pixels at 1280 wide.
    pub(crate) fn screenshot(&self, page: &Path, png: &Path, scheme: Scheme, height: u32) {
        let _ = std::fs::remove_file(png);
        self.headless(
            page,
            scheme,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size=1280,{height}"),
                "--hide-scrollbars",
            ],
        );
        assert!(png.is_file(), "no screenshot of {}", page.display());
    }

    /// The page as printed, to PDF.
    pub(crate) fn print(&self, page: &Path, pdf: &Path) {
        let _ = std::fs::remove_file(pdf);
        self.headless(
            page,
            Scheme::Light,
            &[
                &format!("--print-to-pdf={}", pdf.display()),
                "--no-pdf-header-footer",
            ],
        );
        assert!(pdf.is_file(), "no PDF of {}", page.display());
    }

    /// Runs Chromium once on `page` with a fresh profile and no network of its own, and returns
    /// what it wrote to stdout.
    fn headless(&self, page: &Path, scheme: Scheme, args: &[&str]) -> String {
        let profile = tempdir_in(&self.scratch, "profile");
        let stdout_path = profile.with_extension("out");
        let stderr_path = profile.with_extension("err");
        let page = page.canonicalize().expect("the page exists");
        let mut command = Command::new(&self.binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()));
        if scheme == Scheme::Dark {
            command.arg("--force-dark-mode");
        }
        command
            .args(args)
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("stdout file"))
            .stderr(File::create(&stderr_path).expect("stderr file"));
        let mut child = command.spawn().expect("chromium starts");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium took over {TIMEOUT:?} on {}; stderr:\n{}",
                    page.display(),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        assert!(
            status.success(),
            "chromium failed ({status}) on {}; stderr:\n{}",
            page.display(),
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        let _ = std::fs::remove_dir_all(&profile);
        stdout
    }
}

fn tempdir_in(parent: &Path, prefix: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a profile directory");
    dir
}

/// Undoes the HTML attribute escaping that `--dump-dom` applies.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
