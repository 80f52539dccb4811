//! Templates in request fields: `{{var}}` draws from the kind's values, `{{canary.KIND}}` is a
//! fresh recognisable fake of personal data (searched for in the system's telemetry afterwards),
//! `${NAME}` reads the environment when the run starts (so a secret is never stored in the
//! scenario or its results), and `$${` writes a literal `${`.

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
            if let Some(kind) = name.strip_prefix(CANARY_PREFIX) {
                if CanaryKind::from_name(kind).is_none() {
                    return Err(format!(
                        "\"{{{{{name}}}}}\": unknown canary; expected one of {}",
                        CanaryKind::ALL
                            .iter()
                            .map(|k| format!("{CANARY_PREFIX}{}", k.name()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                parts.push(Part::Var(name));
                rest = after;
                continue;
            }
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

/// How a canary placeholder starts: `{{canary.email}}`. The draw holds its value under the whole
/// name, as for any variable.
pub(crate) const CANARY_PREFIX: &str = "canary.";

/// The kinds of fake personal data a request can carry as a canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CanaryKind {
    /// An email address.
    Email,
    /// An account or client identifier.
    Account,
    /// A card number that passes the Luhn check.
    Card,
    /// A bearer token: a secret, never printed whole.
    Token,
}

impl CanaryKind {
    /// Every kind, in the order reports list them.
    pub(crate) const ALL: [CanaryKind; 4] = [
        CanaryKind::Email,
        CanaryKind::Account,
        CanaryKind::Card,
        CanaryKind::Token,
    ];

    /// As templates and results spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CanaryKind::Email => "email",
            CanaryKind::Account => "account",
            CanaryKind::Card => "card",
            CanaryKind::Token => "token",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<CanaryKind> {
        CanaryKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The placeholder's name in a draw: `canary.email`.
    pub(crate) fn var(self) -> String {
        format!("{CANARY_PREFIX}{}", self.name())
    }
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
        let unknown = parts("{{canary.ssn}}").expect_err("unknown canary");
        assert!(unknown.contains("canary.email"), "{unknown}");
    }

    #[test]
    fn canaries_are_variables_the_run_fills_in() {
        assert_eq!(
            parts("id={{ canary.account }}").expect("valid"),
            vec![Part::Text("id="), Part::Var("canary.account")]
        );
        let draw = Draw::from([(CanaryKind::Token.var(), "tok".to_owned())]);
        assert_eq!(
            render("Bearer {{canary.token}}", &draw, &env).expect("renders"),
            "Bearer tok"
        );
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
