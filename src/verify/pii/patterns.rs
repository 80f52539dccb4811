//! Generic patterns of personal data: email addresses, card numbers (Luhn-valid, 13 to 19
//! digits), E.164 phone numbers, bearer tokens and the values of credential headers. Weaker than
//! the canaries (a pattern cannot tell a customer's data from a test fixture), so tuned against
//! what telemetry is full of: trace and span ids, timestamps and decimal fractions do not match.

use regex::Regex;

use crate::plan::canary::luhn_valid;

/// What a pattern found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatternKind {
    Email,
    Card,
    Phone,
    Bearer,
    /// The value of an `Authorization`, `Cookie` or `Set-Cookie` header.
    CredentialHeader,
}

impl PatternKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            PatternKind::Email => "email",
            PatternKind::Card => "card",
            PatternKind::Phone => "phone",
            PatternKind::Bearer => "bearer",
            PatternKind::CredentialHeader => "credential_header",
        }
    }
}

/// The compiled patterns.
#[derive(Debug)]
pub(crate) struct Patterns {
    email: Regex,
    digits: Regex,
    grouped: Regex,
    phone: Regex,
    bearer: Regex,
    header: Regex,
}

/// The header names whose values are credentials, lower case.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

impl Patterns {
    pub(crate) fn new() -> Result<Patterns, regex::Error> {
        Ok(Patterns {
            email: Regex::new(
                r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,24}\b",
            )?,
            digits: Regex::new(r"\b[0-9]{13,19}\b")?,
            grouped: Regex::new(r"\b[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?\b")?,
            phone: Regex::new(r"\+[1-9][0-9]{7,14}\b")?,
            bearer: Regex::new(r"(?i)\bbearer\s+[a-z0-9\-._~+/]{8,}=*")?,
            header: Regex::new(
                r#"(?i)\b(?:proxy-)?(?:authorization|(?:set-)?cookie)\b["']?\s*[:=]\s*["']?[^\s"',;}]{4,}"#,
            )?,
        })
    }

    /// Every find in `text`, as (kind, byte range). `key` is the attribute, field or label the
    /// text is the value of: a credential header's value is a find whatever it looks like.
    pub(crate) fn find(
        &self,
        key: Option<&str>,
        text: &str,
    ) -> Vec<(PatternKind, std::ops::Range<usize>)> {
        let mut found = Vec::new();
        if let Some(key) = key
            && is_credential_key(key)
            && !text.is_empty()
        {
            found.push((PatternKind::CredentialHeader, 0..text.len()));
            return found;
        }
        for m in self.email.find_iter(text) {
            found.push((PatternKind::Email, m.range()));
        }
        for m in self.digits.find_iter(text) {
            if standalone(text, m.range()) && card_like(m.as_str()) {
                found.push((PatternKind::Card, m.range()));
            }
        }
        for m in self.grouped.find_iter(text) {
            let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
            if (13..=19).contains(&digits.len())
                && standalone(text, m.range())
                && card_like(&digits)
            {
                found.push((PatternKind::Card, m.range()));
            }
        }
        for m in self.phone.find_iter(text) {
            let before = text[..m.start()].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                found.push((PatternKind::Phone, m.range()));
            }
        }
        let bearer: Vec<_> = self.bearer.find_iter(text).map(|m| m.range()).collect();
        for m in self.header.find_iter(text) {
            // `Authorization: Bearer …` is one find, not two.
            if !bearer
                .iter()
                .any(|b| b.start < m.end() && m.start() < b.end)
            {
                found.push((PatternKind::CredentialHeader, m.range()));
            }
        }
        found.extend(bearer.into_iter().map(|r| (PatternKind::Bearer, r)));
        found
    }
}

/// Whether an attribute, field or label names a credential header: `authorization`,
/// `http.request.header.cookie`, `Set-Cookie`.
pub(crate) fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| key == *h || key.ends_with(&format!(".{h}")) || key.ends_with(&format!("_{h}")))
}

/// Not part of a decimal fraction, a dotted version or a longer token: `0.4111111111111111`
/// and `v1.4111111111111111` are not card numbers.
fn standalone(text: &str, range: std::ops::Range<usize>) -> bool {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    let joined = |c: Option<char>| c.is_some_and(|c| c == '.' || c == ',' || c == '-' || c == '_');
    !joined(before) && !joined(after)
}

/// A Luhn-valid number of a card network's first digit (2 to 6) that is not a Unix time in
/// milliseconds, microseconds or nanoseconds between 2000 and 2100.
fn card_like(digits: &str) -> bool {
    let first = digits.as_bytes().first().copied().unwrap_or(b'0');
    (b'2'..=b'6').contains(&first) && luhn_valid(digits) && !is_timestamp(digits)
}

fn is_timestamp(digits: &str) -> bool {
    /// 2000-01-01 and 2100-01-01 in seconds since the Unix epoch.
    const FROM: u128 = 946_684_800;
    const TO: u128 = 4_102_444_800;
    let Ok(value) = digits.parse::<u128>() else {
        return false;
    };
    [1_000u128, 1_000_000, 1_000_000_000]
        .iter()
        .any(|scale| (FROM * scale..TO * scale).contains(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        Patterns::new()
            .expect("valid")
            .find(None, text)
            .into_iter()
            .map(|(kind, _)| kind.name())
            .collect()
    }

    #[test]
    fn emails_are_found_and_near_misses_are_not() {
        assert_eq!(kinds("contact jane.doe+x@mail.example.org now"), ["email"]);
        assert_eq!(kinds(r#"{"user":"A_B@corp.io"}"#), ["email"]);
        for clean in [
            "user@localhost",
            "git@",
            "@scope/pkg",
            "a @ b.com",
            "x@1.2.3.4",
        ] {
            assert!(kinds(clean).is_empty(), "{clean}");
        }
    }

    #[test]
    fn luhn_valid_card_numbers_are_found_and_other_long_numbers_are_not() {
        assert_eq!(kinds("card 4111111111111111 used"), ["card"]);
        assert_eq!(kinds("pan=5500-0055-5555-5559"), ["card"]);
        assert_eq!(
            kinds("amex 3782 822463 10005"),
            Vec::<&str>::new(),
            "not groups of four"
        );
        assert_eq!(kinds("4111 1111 1111 1111"), ["card"]);
        for clean in [
            "4111111111111112",    // fails Luhn
            "1733445600123456789", // a Unix time in nanoseconds
            "1733445600123",       // milliseconds
            "0.4111111111111111",  // a fraction
            "trace_id 4bf92f3577b34da6a3ce929d0e0e4736 span_id 00f067aa0ba902b7",
            "12345678901234567890123456789012", // an all-digit 128-bit id
            "9111111111111111",                 // no card network starts with 9
            "2026-12-06T00:40:40.123456789Z",
        ] {
            assert!(kinds(clean).is_empty(), "{clean}: {:?}", kinds(clean));
        }
    }

    #[test]
    fn phone_numbers_in_e164_are_found() {
        assert_eq!(kinds("call +14155552671"), ["phone"]);
        assert_eq!(kinds(r#"{"tel":"+442071838750"}"#), ["phone"]);
        for clean in [
            "+0000",
            "+05:30",
            "x+14155552671",
            "+1234567",
            "offset +0100",
        ] {
            assert!(kinds(clean).is_empty(), "{clean}");
        }
    }

    #[test]
    fn bearer_tokens_and_credential_headers_are_found() {
        assert_eq!(kinds("Authorization: Bearer abcdef0123456789"), ["bearer"]);
        assert_eq!(
            kinds(r#"{"cookie":"session=77ab1c"}"#),
            ["credential_header"]
        );
        assert_eq!(
            kinds("authorization=Basic dXNlcjpwYXNz"),
            ["credential_header"]
        );
        for clean in [
            "the bearer of news",
            "metrics_auth=true",
            "bearer token missing",
            r#"{"message":"cookie jar empty"}"#,
        ] {
            assert!(kinds(clean).is_empty(), "{clean}: {:?}", kinds(clean));
        }
        let patterns = Patterns::new().expect("valid");
        let found = patterns.find(Some("http.request.header.authorization"), "x");
        assert_eq!(found, [(PatternKind::CredentialHeader, 0..1)]);
        assert!(
            patterns
                .find(Some("http.request.method"), "POST")
                .is_empty()
        );
        assert!(is_credential_key("Set-Cookie") && !is_credential_key("cookie_count"));
    }
}
