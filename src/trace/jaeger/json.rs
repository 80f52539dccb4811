//! Reading Jaeger's JSON with the path of every value kept, so that a refusal names the field that
//! did not fit and what was expected there, instead of a line and column in a 70 kB body.

use std::fmt;

use serde_json::Value;

/// A field of a Jaeger answer without the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Where, as `$.result.resourceSpans[0].scopeSpans[0].spans[3].spanId`.
    pub path: String,
    pub(crate) expected: &'static str,
    pub(crate) found: String,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// A path made of borrowed steps: nothing is formatted unless a field is refused.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.step {
            Step::Root => f.write_str("$"),
            Step::Key(key) => write!(f, ".{key}"),
            Step::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A value in a document (lifetime `'a`), or the absence of one, with where it is or would be
/// (a path borrowed for `'p`, the walk down to it).
#[derive(Clone, Copy)]
pub(crate) struct Node<'a, 'p> {
    value: Option<&'a Value>,
    path: Path<'p>,
}

impl<'a, 'p> Node<'a, 'p> {
    pub(crate) fn root(value: &'a Value) -> Self {
        Node {
            value: Some(value),
            path: Path {
                parent: None,
                step: Step::Root,
            },
        }
    }

    /// The member `key`: absent when this is not an object or has no such member.
    pub(crate) fn get<'q>(&'q self, key: &'q str) -> Node<'a, 'q> {
        Node {
            value: self.value.and_then(|value| value.get(key)),
            path: Path {
                parent: Some(&self.path),
                step: Step::Key(key),
            },
        }
    }

    pub(crate) fn value(&self) -> Option<&'a Value> {
        self.value
    }

    /// Missing or `null`: both Jaeger and protobuf JSON leave out default values.
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self.value, None | Some(Value::Null))
    }

    /// The refusal of this value.
    pub(crate) fn fail(&self, expected: &'static str) -> ParseError {
        ParseError {
            path: self.path.to_string(),
            expected,
            found: describe(self.value),
        }
    }

    /// The items of an array, each with its index in the path; an absent array has none.
    pub(crate) fn items(
        &self,
        expected: &'static str,
    ) -> Result<impl Iterator<Item = Node<'a, '_>>, ParseError> {
        let items: &[Value] = match self.value {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.fail(expected)),
        };
        Ok(items.iter().enumerate().map(|(index, value)| Node {
            value: Some(value),
            path: Path {
                parent: Some(&self.path),
                step: Step::Index(index),
            },
        }))
    }

    pub(crate) fn str(&self, expected: &'static str) -> Result<&'a str, ParseError> {
        match self.value {
            Some(Value::String(text)) => Ok(text),
            _ => Err(self.fail(expected)),
        }
    }

    pub(crate) fn opt_str(&self, expected: &'static str) -> Result<Option<&'a str>, ParseError> {
        if self.is_absent() {
            return Ok(None);
        }
        self.str(expected).map(Some)
    }

    pub(crate) fn bool(&self, expected: &'static str) -> Result<bool, ParseError> {
        match self.value {
            Some(Value::Bool(value)) => Ok(*value),
            _ => Err(self.fail(expected)),
        }
    }

    /// A JSON number or a decimal string: protobuf JSON writes 64-bit integers as strings, and
    /// Jaeger v1 does so beyond 2^53.
    pub(crate) fn u64(&self, expected: &'static str) -> Result<u64, ParseError> {
        let value = match self.value {
            Some(Value::Number(number)) => number.as_u64(),
            Some(Value::String(text)) => decimal(text).and_then(|text| text.parse().ok()),
            _ => None,
        };
        value.ok_or_else(|| self.fail(expected))
    }

    pub(crate) fn opt_u64(&self, expected: &'static str) -> Result<Option<u64>, ParseError> {
        if self.is_absent() {
            return Ok(None);
        }
        self.u64(expected).map(Some)
    }

    /// Like [`Node::u64`], signed.
    pub(crate) fn i64(&self, expected: &'static str) -> Result<i64, ParseError> {
        let value = match self.value {
            Some(Value::Number(number)) => number.as_i64(),
            Some(Value::String(text)) => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                decimal(digits).and_then(|_| text.parse().ok())
            }
            _ => None,
        };
        value.ok_or_else(|| self.fail(expected))
    }

    /// A JSON number, or the strings protobuf JSON uses for what JSON numbers cannot say
    /// (`"NaN"`, `"Infinity"`, `"-Infinity"`) and for numbers written as text.
    pub(crate) fn f64(&self, expected: &'static str) -> Result<f64, ParseError> {
        let value = match self.value {
            Some(Value::Number(number)) => number.as_f64(),
            Some(Value::String(text)) => match text.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => text.parse().ok().filter(|value: &f64| value.is_finite()),
            },
            _ => None,
        };
        value.ok_or_else(|| self.fail(expected))
    }
}

/// `text` when it is all ASCII digits (no sign, no blanks: `str::parse` alone accepts `+1`).
fn decimal(text: &str) -> Option<&str> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// A short account of a refused value for an error message.
fn describe(value: Option<&Value>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(Value::Null) => "null".to_owned(),
        Some(Value::Bool(value)) => value.to_string(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => format!("{:?}", shorten(text, 60)),
        Some(Value::Array(items)) => format!("an array of {} items", items.len()),
        Some(Value::Object(_)) => "an object".to_owned(),
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_name_the_path_and_what_was_found() {
        let doc = json!({"a": [{"b": "x"}, {"b": 7}]});
        let root = Node::root(&doc);
        let a = root.get("a");
        let items: Vec<_> = a.items("an array").expect("array").collect();
        assert_eq!(items.len(), 2);
        let second = items[1].get("b");
        let error = second
            .str("a string")
            .expect_err("a number is not a string");
        assert_eq!(error.to_string(), "at $.a[1].b: expected a string, found 7");
        let missing = items[0].get("c").str("a string").expect_err("missing");
        assert_eq!(missing.path, "$.a[0].c");
        assert_eq!(missing.found, "nothing");
        let not_array = items[0].get("b").items("an array").err();
        assert_eq!(
            not_array.map(|e| e.to_string()),
            Some("at $.a[0].b: expected an array, found \"x\"".to_owned())
        );
    }

    #[test]
    fn integers_come_as_numbers_or_decimal_strings() {
        let doc = json!({"n": 5, "s": "9223372036854775807", "neg": "-3", "plus": "+1", "blank": " 1", "big": "18446744073709551615"});
        let root = Node::root(&doc);
        assert_eq!(root.get("n").u64("n"), Ok(5));
        assert_eq!(root.get("s").i64("n"), Ok(i64::MAX));
        assert_eq!(root.get("neg").i64("n"), Ok(-3));
        assert!(root.get("neg").u64("n").is_err());
        assert!(root.get("plus").u64("n").is_err());
        assert!(root.get("plus").i64("n").is_err());
        assert!(root.get("blank").u64("n").is_err());
        assert_eq!(root.get("big").u64("n"), Ok(u64::MAX));
        assert_eq!(root.get("missing").opt_u64("n"), Ok(None));
    }

    #[test]
    fn doubles_accept_protobuf_spellings() {
        let doc =
            json!({"a": 1.5, "b": "NaN", "c": "-Infinity", "d": "2.5", "e": "inf", "f": true});
        let root = Node::root(&doc);
        assert_eq!(root.get("a").f64("x"), Ok(1.5));
        assert!(root.get("b").f64("x").is_ok_and(f64::is_nan));
        assert_eq!(root.get("c").f64("x"), Ok(f64::NEG_INFINITY));
        assert_eq!(root.get("d").f64("x"), Ok(2.5));
        assert!(root.get("e").f64("x").is_err());
        assert!(root.get("f").f64("x").is_err());
    }

    #[test]
    fn long_strings_are_shortened_on_a_char_boundary() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}
