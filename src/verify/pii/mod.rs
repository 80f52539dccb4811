//! The search for personal data in what the system recorded: the spans of every sampled trace
//! the verification fetched, the managed services' log lines and the label values of the metrics
//! scraped after the load. The run's canaries (fake data the requests carried, `plan::canary`)
//! must appear nowhere; generic patterns are warnings unless the scenario makes them fatal.

mod patterns;
mod sources;

use std::collections::BTreeSet;
use std::sync::Mutex;

use regex::Regex;

use crate::plan::Canaries;
use crate::plan::canary::kind_of;
use crate::result::{PiiFinding, PiiReport, Searched};
use crate::scenario::template::CanaryKind;
use crate::scenario::{PatternSeverity, PiiChecks};
use patterns::Patterns;

/// Finds listed in the result, of each sort; the rest are counted.
const LISTED: usize = 25;

/// The compiled search and what it has found so far; shared by the trace lookups.
#[derive(Debug)]
pub(crate) struct Search {
    canary: Regex,
    patterns: Option<Patterns>,
    severity: PatternSeverity,
    sent: BTreeSet<CanaryKind>,
    found: Mutex<Found>,
}

#[derive(Debug, Default)]
struct Found {
    searched: Searched,
    canaries: u64,
    patterns: u64,
    listed_canaries: Vec<PiiFinding>,
    listed_patterns: Vec<PiiFinding>,
    not_searched: Vec<String>,
}

impl Search {
    /// The search for `canaries` (of the kinds the requests carry) and, unless off, the patterns.
    pub(crate) fn new(
        checks: PiiChecks,
        canaries: Canaries,
        sent: BTreeSet<CanaryKind>,
    ) -> Result<Search, regex::Error> {
        Ok(Search {
            canary: Regex::new(&canaries.pattern())?,
            patterns: match checks.patterns {
                PatternSeverity::Off => None,
                PatternSeverity::Warn | PatternSeverity::Fail => Some(Patterns::new()?),
            },
            severity: checks.patterns,
            sent,
            found: Mutex::new(Found::default()),
        })
    }

    /// Searches one value; `key` is what it is the value of, `place` says where it is.
    pub(crate) fn text(&self, key: Option<&str>, text: &str, place: &dyn Fn() -> String) {
        let canaries: Vec<_> = self.canary.find_iter(text).collect();
        let patterns = self
            .patterns
            .as_ref()
            .map(|p| p.find(key, text))
            .unwrap_or_default();
        if canaries.is_empty() && patterns.is_empty() {
            return;
        }
        let mut found = self.lock();
        for m in &canaries {
            found.canaries += 1;
            if found.listed_canaries.len() < LISTED {
                let (kind, value) = match kind_of(m.as_str()) {
                    Some(kind) => (kind.name(), shown(kind, m.as_str())),
                    None => ("canary_tag", m.as_str().to_owned()),
                };
                found.listed_canaries.push(PiiFinding {
                    canary: true,
                    kind: kind.to_owned(),
                    place: place(),
                    value,
                });
            }
        }
        for (kind, range) in patterns {
            // A canary is reported as one, not again as the pattern it also matches.
            if canaries
                .iter()
                .any(|c| c.start() < range.end && range.start < c.end())
            {
                continue;
            }
            found.patterns += 1;
            if found.listed_patterns.len() < LISTED {
                found.listed_patterns.push(PiiFinding {
                    canary: false,
                    kind: kind.name().to_owned(),
                    place: place(),
                    value: redacted(&text[range]),
                });
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Found> {
        // A panic elsewhere while holding it leaves counts that are still counts.
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a source that could not be searched.
    pub(crate) fn not_searched(&self, why: String) {
        self.lock().not_searched.push(why);
    }

    /// The verdict.
    pub(crate) fn report(&self) -> PiiReport {
        let found = self.lock();
        let fatal = self.severity == PatternSeverity::Fail;
        let mut findings = found.listed_canaries.clone();
        findings.extend(found.listed_patterns.iter().cloned());
        PiiReport {
            passed: found.canaries == 0 && !(fatal && found.patterns > 0),
            patterns: match self.severity {
                PatternSeverity::Off => "off",
                PatternSeverity::Warn => "warn",
                PatternSeverity::Fail => "fail",
            }
            .to_owned(),
            canary_kinds: self.sent.iter().map(|k| k.name().to_owned()).collect(),
            searched: found.searched.clone(),
            canaries_found: found.canaries,
            patterns_found: found.patterns,
            findings,
            not_searched: found.not_searched.clone(),
        }
    }
}

/// A canary as results show it: whole for the fake identifiers, redacted for the secrets.
fn shown(kind: CanaryKind, value: &str) -> String {
    match kind {
        CanaryKind::Email | CanaryKind::Account => value.to_owned(),
        CanaryKind::Card | CanaryKind::Token => redacted(value),
    }
}

/// The first and last four characters and the length; fewer for short values, none below eight.
fn redacted(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let keep = match n {
        0..8 => 0,
        8..16 => 2,
        _ => 4,
    };
    let head: String = chars[..keep].iter().collect();
    let tail: String = chars[n - keep..].iter().collect();
    format!("{head}…{tail} ({n} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(patterns: PatternSeverity) -> (Search, Canaries) {
        let canaries = Canaries::with_tag(0xfeed_f00d_1234);
        let sent = CanaryKind::ALL.into_iter().collect();
        let search = Search::new(PiiChecks { patterns }, canaries, sent).expect("valid");
        (search, canaries)
    }

    #[test]
    fn a_canary_fails_the_check_and_a_secret_one_is_never_shown_whole() {
        let (search, canaries) = search(PatternSeverity::Warn);
        let token = canaries.value(CanaryKind::Token, 1, 2);
        search.text(
            Some("http.request.header.authorization"),
            &format!("Bearer {token}"),
            &|| "span".to_owned(),
        );
        let account = canaries.value(CanaryKind::Account, 0, 0);
        search.text(None, &format!("{{\"body\":\"{account}\"}}"), &|| {
            "log:3".to_owned()
        });
        let report = search.report();
        assert!(!report.passed);
        assert_eq!(
            (report.canaries_found, report.patterns_found),
            (2, 0),
            "{report:?}"
        );
        let text = serde_json::to_string(&report).expect("serializes");
        assert!(!text.contains(&token), "{text}");
        assert!(
            text.contains(&account),
            "a fake identifier helps find the leak: {text}"
        );
        assert_eq!(report.findings[0].kind, "token");
        assert_eq!(report.findings[0].place, "span");
        assert!(
            report.findings[0].value.starts_with("tok_"),
            "{:?}",
            report.findings[0]
        );
    }

    #[test]
    fn patterns_warn_unless_fatal_and_clean_text_finds_nothing() {
        let (warn, _) = search(PatternSeverity::Warn);
        warn.text(None, "mail bob@corp.example.com", &|| "x".to_owned());
        warn.text(
            None,
            r#"{"timestamp":"2026-12-06T00:40:40.123Z","level":"INFO","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","elapsed_us":1733445600123}"#,
            &|| "y".to_owned(),
        );
        let report = warn.report();
        assert!(report.passed, "{report:?}");
        assert_eq!(report.patterns_found, 1, "{report:?}");
        assert!(!report.findings[0].value.contains("bob@corp"), "redacted");
        let (fail, _) = search(PatternSeverity::Fail);
        fail.text(None, "mail bob@corp.example.com", &|| "x".to_owned());
        assert!(!fail.report().passed);
    }

    #[test]
    fn redaction_keeps_the_ends_only() {
        assert_eq!(redacted("short"), "… (5 chars)");
        assert_eq!(redacted("tok_0123456789abcdef"), "tok_…cdef (20 chars)");
    }
}
