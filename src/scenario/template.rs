//! Templates in request fields: `{{var}}` draws from the kind's values, `${NAME}` reads the
//! environment when the run starts (so a secret is never stored in the scenario or its results),
//! and `$${` writes a literal `${`.

use std::collections::BTreeMap;

use super::model::is_var_byte;

/// One piece of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part<'t> {
    /// Text as written.
    Text(&'t str),
    /// `{{name}}`: a value drawn for the request.
    Var(&'t str),
    /// `${NAME}`: an environment variable.
    Env(&'t str),
}

/// Splits `text` into its parts, or says what is malformed.
pub(crate) fn parts(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = [rest.find("{{"), rest.find("$")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(rest.len());
        if next > 0 {
            parts.push(Part::Text(&rest[..next]));
            rest = &rest[next..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("$${") {
            parts.push(Part::Text("${"));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let (name, after) = after
                .split_once('}')
                .ok_or_else(|| format!("unclosed \"${{\" in {text:?}; write $${{ for a literal"))?;
            let valid = name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
                && name.bytes().all(is_var_byte);
            if !valid {
                return Err(format!(
                    "\"${{{name}}}\": expected an environment variable name matching [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
            parts.push(Part::Env(name));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{{") {
            let (name, after) = after
                .split_once("}}")
                .ok_or_else(|| format!("unclosed \"{{{{\" in {text:?}"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_var_byte) {
                return Err(format!(
                    "\"{{{{{name}}}}}\": expected a variable name matching [A-Za-z0-9_]+"
                ));
            }
            parts.push(Part::Var(name));
            rest = after;
        } else {
            // A `$` that starts nothing.
            parts.push(Part::Text(&rest[..1]));
            rest = &rest[1..];
        }
    }
    Ok(parts)
}

/// The variables one request draws: a value for each `{{var}}`.
pub(crate) type Draw = BTreeMap<String, String>;

/// Why a template could not be rendered when the run starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderError {
    /// `${NAME}` is not set.
    #[error("${{{0}}} is not set in the environment")]
    Unset(String),
    /// `{{var}}` has no value (validation rules this out for parsed scenarios).
    #[error("\"{{{{{0}}}}}\" has no values")]
    NoValue(String),
    /// Malformed (validation rules this out for parsed scenarios).
    #[error("{0}")]
    Malformed(String),
}

/// Renders `text` with `draw` and the environment as `env` gives it.
pub(crate) fn render(
    text: &str,
    draw: &Draw,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len());
    for part in parts(text).map_err(RenderError::Malformed)? {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Var(name) => out.push_str(
                draw.get(name)
                    .ok_or_else(|| RenderError::NoValue(name.to_owned()))?,
            ),
            Part::Env(name) => {
                out.push_str(&env(name).ok_or_else(|| RenderError::Unset(name.to_owned()))?)
            }
        }
    }
    Ok(out)
}

/// Renders every string of a JSON value (keys stay as written).
pub(crate) fn render_json(
    value: &serde_json::Value,
    draw: &Draw,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(text) => J::String(render(text, draw, env)?),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|item| render_json(item, draw, env))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(fields) => J::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), render_json(item, draw, env)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "s3cret".to_owned())
    }

    #[test]
    fn parts_split_text_vars_and_environment() {
        assert_eq!(
            parts("/v2/{{ symbol }}?k=${API_KEY}&p=$${x}$").expect("valid"),
            vec![
                Part::Text("/v2/"),
                Part::Var("symbol"),
                Part::Text("?k="),
                Part::Env("API_KEY"),
                Part::Text("&p="),
                Part::Text("${"),
                Part::Text("x}"),
                Part::Text("$"),
            ]
        );
    }

    #[test]
    fn malformed_templates_say_what_was_expected() {
        assert!(
            parts("${API_KEY")
                .expect_err("unclosed")
                .contains("unclosed")
        );
        assert!(
            parts("${1X}")
                .expect_err("digit")
                .contains("environment variable")
        );
        assert!(parts("{{}}").expect_err("empty").contains("variable name"));
        assert!(parts("{{a").expect_err("unclosed").contains("unclosed"));
    }

    #[test]
    fn rendering_fills_vars_and_environment() {
        let draw = Draw::from([("symbol".to_owned(), "AAPL".to_owned())]);
        assert_eq!(
            render("{{symbol}}:${API_KEY}", &draw, &env).expect("renders"),
            "AAPL:s3cret"
        );
        assert_eq!(
            render("${MISSING}", &draw, &env),
            Err(RenderError::Unset("MISSING".to_owned()))
        );
    }

    #[test]
    fn json_strings_are_rendered_at_any_depth() {
        let draw = Draw::from([("s".to_owned(), "MSFT".to_owned())]);
        let body = serde_json::json!({"a": ["{{s}}", 1], "b": {"{{s}}": "x-{{s}}"}});
        assert_eq!(
            render_json(&body, &draw, &env).expect("renders"),
            serde_json::json!({"a": ["MSFT", 1], "b": {"{{s}}": "x-MSFT"}})
        );
    }
}
