//! Reports rendered from results, for people (self-contained HTML) and for CI (JUnit). Reports read
//! only what `result.json` holds, so `harness report` can render a stored result again.
//!
//! The HTML is one file with its CSS and SVG inline: no network when it is opened, readable with
//! JavaScript off, in dark mode and on paper. Templates are compiled into the binary.

pub(crate) mod chart;
pub mod junit;
pub mod page;

use std::path::Path;
use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

/// Every template, by name; `.html` ones are escaped automatically.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("compare.html", include_str!("templates/compare.html")),
    ("signoff.html", include_str!("templates/signoff.html")),
    ("run.html", include_str!("templates/run.html")),
];

/// Why a report could not be made; names the template or the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A template failed on this data: a bug in the harness, not in the input.
    #[error("rendering the {template} report: {source:#}")]
    Render {
        /// The template's name.
        template: &'static str,
        /// What the template engine said.
        #[source]
        source: minijinja::Error,
    },
    /// The report could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
}

fn templates() -> &'static Environment<'static> {
    static TEMPLATES_ENV: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES_ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("the bundled template {name} does not parse: {e:#}"));
        }
        env
    })
}

/// Renders a bundled template with `context`.
pub fn render(template: &'static str, context: impl Serialize) -> Result<String, ReportError> {
    templates()
        .get_template(template)
        .and_then(|t| t.render(minijinja::value::Serde(context)))
        .map_err(|source| ReportError::Render { template, source })
}

/// Renders a bundled template with `context` straight into the file at `path`: a page is never
/// held whole in memory, only the parts the template is putting together.
pub fn render_to_file(
    template: &'static str,
    context: impl Serialize,
    path: &Path,
) -> Result<(), ReportError> {
    use std::io::Write as _;
    let write_error = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(write_error)?);
    templates()
        .get_template(template)
        .and_then(|t| t.render_captured_to(minijinja::value::Serde(context), &mut out))
        .map_err(|source| match source.kind() {
            minijinja::ErrorKind::WriteFailure => write_error(std::io::Error::other(source)),
            _ => ReportError::Render { template, source },
        })?;
    out.flush().map_err(write_error)
}

/// Writes a rendered report, naming the file on failure.
pub fn write(path: &Path, contents: &str) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_template_parses() {
        for (name, _) in TEMPLATES {
            templates().get_template(name).expect("registered");
        }
    }

    #[test]
    fn the_base_page_escapes_what_it_is_given() {
        let html = render(
            "base.html",
            serde_json::json!({ "title": "<script>alert(1)</script>" }),
        )
        .expect("renders");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_page_rendered_to_a_file_is_the_page_rendered_to_a_string() {
        let dir = std::env::temp_dir().join(format!("harness-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let context = serde_json::json!({ "title": "<b>run</b>" });
        let path = dir.join("page.html");
        render_to_file("base.html", &context, &path).expect("written");
        let written = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(written, render("base.html", &context).expect("renders"));
        // A file that cannot be created is a write error naming it, not a template error.
        let absent = dir.join("absent").join("page.html");
        let error = render_to_file("base.html", &context, &absent).expect_err("no directory");
        assert!(matches!(error, ReportError::Write { .. }), "{error}");
        assert!(error.to_string().contains("absent"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
