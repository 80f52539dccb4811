//! Canaries: fake personal data that requests carry so that the system's telemetry can be
//! searched for it afterwards. Every value carries the run's random tag (in hex, and for the card
//! number in digits), so one pattern finds them all and a find cannot be an accident; each kind
//! and rendered variant gets values of its own, so a find names the request it came from.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::scenario::template::{self as tpl, CanaryKind, Draw};
use crate::scenario::{Call, HttpBody, RequestKind, WsMessage};

/// Where the canary email addresses live: a reserved name that reaches nobody.
const EMAIL_DOMAIN: &str = "canary.example";

/// The canaries of one run: a tag, and the values derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Canaries {
    tag: u64,
}

impl Canaries {
    /// The canaries of this process: one random tag, shared by the rendering of the requests and
    /// the search after the run, fresh in each harness process.
    pub(crate) fn of_this_process() -> Canaries {
        static TAG: OnceLock<u64> = OnceLock::new();
        Canaries {
            tag: *TAG.get_or_init(rand::random),
        }
    }

    /// With a given tag, for tests.
    #[cfg(test)]
    pub(crate) fn with_tag(tag: u64) -> Canaries {
        Canaries { tag }
    }

    /// 40 bits of the tag as 10 hex digits: in the email, account and token canaries.
    fn hex(self) -> String {
        format!("{:010x}", self.tag & 0xff_ffff_ffff)
    }

    /// Nine decimal digits of the tag: in the card number.
    fn digits(self) -> String {
        format!("{:09}", (self.tag >> 24) % 1_000_000_000)
    }

    /// The value of `kind` for request kind `request` (its index) and rendered variant `variant`.
    pub(crate) fn value(self, kind: CanaryKind, request: usize, variant: usize) -> String {
        let hex = self.hex();
        match kind {
            CanaryKind::Email => format!("pii-{hex}-{request}-{variant}@{EMAIL_DOMAIN}"),
            CanaryKind::Account => format!("acct-{hex}-{request}-{variant}"),
            CanaryKind::Card => {
                let body = format!(
                    "4{}{:03}{:05}",
                    self.digits(),
                    request % 1_000,
                    variant % 100_000
                );
                let check = luhn_check_digit(&body);
                format!("{body}{check}")
            }
            CanaryKind::Token => {
                let mix = splitmix(self.tag ^ ((request as u64) << 40) ^ variant as u64);
                format!(
                    "tok_{hex}{:03x}{:05x}{mix:016x}",
                    request % 0x1000,
                    variant % 0x10_0000
                )
            }
        }
    }

    /// Adds every kind's value for this request kind and variant to a draw.
    pub(crate) fn add_to(self, draw: &mut Draw, request: usize, variant: usize) {
        for kind in CanaryKind::ALL {
            draw.insert(kind.var(), self.value(kind, request, variant));
        }
    }

    /// A regular expression that matches every canary of the run, the whole value where it is
    /// intact, and the bare tag where it was cut or re-encoded.
    pub(crate) fn pattern(self) -> String {
        let hex = self.hex();
        let domain = regex::escape(EMAIL_DOMAIN);
        format!(
            "pii-{hex}-[0-9]+-[0-9]+@{domain}|acct-{hex}-[0-9]+-[0-9]+|tok_{hex}[0-9a-f]+|4{}[0-9]{{9}}|{hex}",
            self.digits()
        )
    }
}

/// The kind of a canary the run's [`Canaries::pattern`] matched; `None` for the bare tag.
pub(crate) fn kind_of(found: &str) -> Option<CanaryKind> {
    if found.starts_with("pii-") {
        Some(CanaryKind::Email)
    } else if found.starts_with("acct-") {
        Some(CanaryKind::Account)
    } else if found.starts_with("tok_") {
        Some(CanaryKind::Token)
    } else if found.len() == 19 && found.bytes().all(|b| b.is_ascii_digit()) {
        Some(CanaryKind::Card)
    } else {
        None
    }
}

/// The canary kinds a request kind sends: those its templates name, and for the bundled
/// shorthand over HTTP the client's token and identifier the bundled request always carries.
pub(crate) fn sent_by(kind: &RequestKind, http: bool) -> BTreeSet<CanaryKind> {
    let mut texts: Vec<&str> = Vec::new();
    match &kind.call {
        Call::Bundled(body) => {
            strings(body, &mut texts);
            if http {
                return crate::bundled::CLIENT_CANARIES.into_iter().collect();
            }
        }
        Call::Http(call) => {
            texts.push(&call.url.text);
            texts.extend(call.headers.iter().map(|(_, t)| t.text.as_str()));
            match &call.body {
                HttpBody::Json(value) => strings(value, &mut texts),
                HttpBody::Text(t) => texts.push(&t.text),
                HttpBody::Empty | HttpBody::File(_) => {}
            }
        }
        Call::Grpc(call) => {
            strings(&call.message, &mut texts);
            texts.extend(call.metadata.iter().map(|(_, t)| t.text.as_str()));
        }
        Call::WebSocket(call) => {
            texts.push(&call.url.text);
            texts.extend(call.headers.iter().map(|(_, t)| t.text.as_str()));
            for message in [&call.subscribe, &call.unsubscribe].into_iter().flatten() {
                match message {
                    WsMessage::Json(value) => strings(value, &mut texts),
                    WsMessage::Text(t) => texts.push(&t.text),
                }
            }
        }
    }
    texts
        .into_iter()
        .filter_map(|text| tpl::parts(text).ok())
        .flatten()
        .filter_map(|part| match part {
            tpl::Part::Var(name) => name
                .strip_prefix(tpl::CANARY_PREFIX)
                .and_then(CanaryKind::from_name),
            _ => None,
        })
        .collect()
}

fn strings<'v>(value: &'v serde_json::Value, out: &mut Vec<&'v str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Whether a string of digits passes the Luhn check, as every real card number does.
pub(crate) fn luhn_valid(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    luhn_sum(bytes.iter().rev().copied(), false) % 10 == 0
}

/// The digit that makes `body` followed by it pass the Luhn check.
fn luhn_check_digit(body: &str) -> u8 {
    let sum = luhn_sum(body.bytes().rev(), true);
    ((10 - sum % 10) % 10) as u8
}

/// The Luhn sum of digits read from the right; `double_first` when the check digit is not among
/// them.
fn luhn_sum(digits: impl Iterator<Item = u8>, double_first: bool) -> u32 {
    digits
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if (i % 2 == 0) == double_first {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum()
}

/// SplitMix64: a token's random-looking tail, derived so that the search can tell it apart.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_card_numbers_and_refuses_near_misses() {
        for valid in [
            "4111111111111111",
            "5500005555555559",
            "378282246310005",
            "79927398713",
        ] {
            assert!(luhn_valid(valid), "{valid}");
        }
        for invalid in ["4111111111111112", "79927398710", "", "4111-1111"] {
            assert!(!luhn_valid(invalid), "{invalid}");
        }
        assert_eq!(luhn_check_digit("7992739871"), 3);
    }

    #[test]
    fn every_value_is_distinct_recognisable_and_matched_by_the_run_pattern() {
        let canaries = Canaries::with_tag(0x0123_4567_89ab_cdef);
        let pattern = regex::Regex::new(&canaries.pattern()).expect("a valid pattern");
        let mut seen = BTreeSet::new();
        for request in 0..3 {
            for variant in 0..70 {
                for kind in CanaryKind::ALL {
                    let value = canaries.value(kind, request, variant);
                    assert!(seen.insert(value.clone()), "{value} twice");
                    let found = pattern.find(&value).expect("matched");
                    assert_eq!(found.as_str(), value, "the whole value");
                    assert_eq!(kind_of(found.as_str()), Some(kind), "{value}");
                }
                let card = canaries.value(CanaryKind::Card, request, variant);
                assert!(luhn_valid(&card) && card.len() == 19, "{card}");
            }
        }
        let other = Canaries::with_tag(7);
        assert!(!pattern.is_match(&other.value(CanaryKind::Token, 0, 0)));
        assert!(!pattern.is_match(&other.value(CanaryKind::Card, 0, 0)));
        // Cut or re-encoded, a value still shows its tag.
        let email = canaries.value(CanaryKind::Email, 0, 0).replace('@', "%40");
        let found = pattern.find(&email).expect("the tag");
        assert_eq!(kind_of(found.as_str()), None);
        let cut = &canaries.value(CanaryKind::Token, 0, 0)[4..14];
        assert_eq!(kind_of(pattern.find(cut).expect("the tag").as_str()), None);
    }
}
