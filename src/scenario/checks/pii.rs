//! `verify.pii`: the search of spans, logs and metric labels for personal data.

use super::super::model::{PatternSeverity, PiiChecks};
use super::super::read::{Cx, mapping, word};
use super::super::tree::Node;

/// `pii: {}` (or `pii:` alone) searches for the canaries and warns on patterns.
pub(super) fn pii(cx: &mut Cx, node: Option<&Node>) -> Option<PiiChecks> {
    let Some(node) = node else {
        return Some(PiiChecks {
            patterns: PatternSeverity::Warn,
        });
    };
    let fields = mapping(cx, node, "verify.pii", Some(&["patterns"]))?;
    let patterns = fields.read_or(cx, "patterns", PatternSeverity::Warn, |cx, n, path| {
        word(
            cx,
            n,
            path,
            &[
                ("off", PatternSeverity::Off),
                ("warn", PatternSeverity::Warn),
                ("fail", PatternSeverity::Fail),
            ],
        )
    })?;
    Some(PiiChecks { patterns })
}
