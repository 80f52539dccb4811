//! The checks run on one sampled request's trace: it exists, every expected service took part, the
//! expected chain of spans hangs from the harness's own span, nothing is orphaned, attributes and
//! error statuses agree with what the harness received, and the response named the trace.

use std::collections::{HashMap, HashSet};

use tonic::Code;

use crate::result::{CheckKind, Failure};
use crate::scenario::{ChainStep, ErrorRule, TraceChecks};
use crate::trace::model::{Span, SpanId, SpanStatus, Trace, TraceId};

/// What the harness received for a sampled request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Observed {
    Http(u16),
    Grpc(Code),
    /// No answer (timeout, transport error): checks that depend on the outcome are skipped.
    Unknown,
}

impl Observed {
    fn succeeded(self) -> Option<bool> {
        match self {
            Observed::Http(status) => Some(status < 400),
            Observed::Grpc(code) => Some(code == Code::Ok),
            Observed::Unknown => None,
        }
    }

    fn server_error(self) -> Option<bool> {
        match self {
            Observed::Http(status) => Some(status >= 500),
            Observed::Grpc(code) => Some(engine::status::is_server_error(code)),
            Observed::Unknown => None,
        }
    }

    /// The text `{status}` or `{code}` stands for in an expected attribute value.
    fn placeholder(self, name: &str) -> Option<String> {
        match (self, name) {
            (Observed::Http(status), "{status}") => Some(status.to_string()),
            (Observed::Grpc(code), "{code}") => Some((code as i32).to_string()),
            _ => None,
        }
    }
}

/// One sampled request, as the checks need it.
#[derive(Clone, Debug)]
pub(super) struct Sampled {
    pub trace_id: TraceId,
    /// The harness's own span: the parent of the trace's first span.
    pub parent: SpanId,
    pub observed: Observed,
    /// The trace id response header as received, when one was asked for.
    pub trace_header: Option<String>,
}

impl CheckKind {
    /// The checks that `expect` makes of every sampled trace, in the order they run; `logs` when
    /// the services' logs are read too. A report lists these whether or not any failed.
    pub fn made_by(expect: &TraceChecks, logs: bool) -> Vec<CheckKind> {
        let chain = !expect.chain.is_empty();
        [
            (CheckKind::Response, true),
            (CheckKind::ResponseHeader, expect.response_header.is_some()),
            (CheckKind::Exists, true),
            (CheckKind::Services, !expect.services.is_empty()),
            (CheckKind::Chain, chain),
            (CheckKind::Orphans, true),
            (
                CheckKind::Attributes,
                expect.chain.iter().any(|step| !step.attributes.is_empty()),
            ),
            (CheckKind::ErrorStatus, chain),
            (CheckKind::Logs, logs),
        ]
        .into_iter()
        .filter_map(|(check, made)| made.then_some(check))
        .collect()
    }
}

impl Failure {
    fn new(check: CheckKind, detail: impl Into<String>) -> Self {
        Failure {
            check,
            detail: detail.into(),
        }
    }
}

/// Whether the trace has everything the checks look for: every service and the whole chain. The
/// poller waits for this; a trace that never gets there is incomplete.
pub(super) fn is_complete(trace: &Trace, expect: &TraceChecks, sampled: &Sampled) -> bool {
    missing_services(trace, expect).is_empty()
        && matches!(follow_chain(trace, expect, sampled), Chain::Complete(_))
}

/// Every check but the logs on `trace` (`None`: the source never saw it).
pub(super) fn check(
    trace: Option<&Trace>,
    expect: &TraceChecks,
    sampled: &Sampled,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    if let Some(name) = &expect.response_header {
        check_header(name, sampled, &mut failures);
    }
    let Some(trace) = trace.filter(|t| !t.spans.is_empty()) else {
        failures.push(Failure::new(
            CheckKind::Exists,
            format!("no span of trace {} arrived", sampled.trace_id),
        ));
        return failures;
    };
    let missing = missing_services(trace, expect);
    if !missing.is_empty() {
        failures.push(Failure::new(
            CheckKind::Services,
            format!("no spans from {}", missing.join(", ")),
        ));
    }
    let matched = match follow_chain(trace, expect, sampled) {
        Chain::Complete(spans) => spans,
        Chain::Broken {
            matched,
            step,
            reason,
        } => {
            failures.push(Failure::new(
                CheckKind::Chain,
                format!("broken at {}: {reason}", hop(expect, step)),
            ));
            matched
        }
    };
    check_orphans(trace, sampled, &mut failures);
    for (step, span) in &matched {
        check_attributes(step, span, sampled.observed, &mut failures);
        check_error(step, span, sampled.observed, &mut failures);
    }
    failures
}

/// The response header (HTTP) or metadata (gRPC) must carry the request's trace id. A request
/// without an answer fails its own check instead.
fn check_header(name: &str, sampled: &Sampled, failures: &mut Vec<Failure>) {
    if matches!(sampled.observed, Observed::Unknown) {
        return;
    }
    match &sampled.trace_header {
        None => failures.push(Failure::new(
            CheckKind::ResponseHeader,
            format!("the response has no {name} header"),
        )),
        Some(text) if text.trim().parse::<TraceId>().ok() != Some(sampled.trace_id) => {
            failures.push(Failure::new(
                CheckKind::ResponseHeader,
                format!("{name} is {text:?}, expected {}", sampled.trace_id),
            ));
        }
        Some(_) => {}
    }
}

fn missing_services<'e>(trace: &Trace, expect: &'e TraceChecks) -> Vec<&'e str> {
    let present: HashSet<&str> = trace.spans.iter().map(|s| s.service.as_str()).collect();
    expect
        .services
        .iter()
        .map(String::as_str)
        .filter(|service| !present.contains(service))
        .collect()
}

/// "api-gateway client -> core-engine server": the hop into chain step `step`.
fn hop(expect: &TraceChecks, step: usize) -> String {
    let describe = |s: &ChainStep| format!("{} {}", s.service, s.kind);
    match step.checked_sub(1).and_then(|i| expect.chain.get(i)) {
        Some(before) => format!(
            "{} -> {}",
            describe(before),
            expect.chain.get(step).map_or_else(String::new, describe)
        ),
        None => format!(
            "harness -> {}",
            expect.chain.get(step).map_or_else(String::new, describe)
        ),
    }
}

enum Chain<'a> {
    Complete(Vec<(&'a ChainStep, &'a Span)>),
    Broken {
        matched: Vec<(&'a ChainStep, &'a Span)>,
        /// The first step that could not be matched.
        step: usize,
        reason: String,
    },
}

/// Matches the chain from the harness's span downwards, each step among the children of the span
/// that matched the step before. Steps that exist only on success are skipped for failed requests.
fn follow_chain<'a>(trace: &'a Trace, expect: &'a TraceChecks, sampled: &Sampled) -> Chain<'a> {
    let mut children: HashMap<Option<SpanId>, Vec<&Span>> = HashMap::new();
    for span in &trace.spans {
        children.entry(span.parent).or_default().push(span);
    }
    let succeeded = sampled.observed.succeeded() == Some(true);
    let steps: Vec<(usize, &ChainStep)> = expect
        .chain
        .iter()
        .enumerate()
        .filter(|(_, step)| succeeded || !step.only_on_success)
        .collect();
    let mut best: Option<(Vec<&Span>, usize)> = None;
    descend(
        &children,
        &steps,
        Some(sampled.parent),
        Vec::new(),
        &mut best,
    );
    let (path, _) = best.unwrap_or_default();
    let matched: Vec<(&ChainStep, &Span)> = steps.iter().map(|&(_, step)| step).zip(path).collect();
    let Some(&(index, step)) = steps.get(matched.len()) else {
        return Chain::Complete(matched);
    };
    let parent = matched
        .last()
        .map_or(sampled.parent, |(_, span)| span.span_id);
    let found_elsewhere = trace.spans.iter().find(|s| matches_step(step, s));
    let reason = match found_elsewhere {
        Some(span) => format!(
            "the {} {} span {} has parent {}, expected {parent}",
            step.service,
            step.kind,
            span.span_id,
            span.parent
                .map_or_else(|| "none (a root)".to_owned(), |p| p.to_string()),
        ),
        None => format!(
            "no {} {} span{} in the trace (expected a child of {parent})",
            step.service,
            step.kind,
            step.name
                .as_ref()
                .map_or_else(String::new, |n| format!(" named {n:?}")),
        ),
    };
    Chain::Broken {
        matched,
        step: index,
        reason,
    }
}

/// Depth-first over the candidates of each step, keeping the longest path found.
fn descend<'a>(
    children: &HashMap<Option<SpanId>, Vec<&'a Span>>,
    steps: &[(usize, &ChainStep)],
    parent: Option<SpanId>,
    path: Vec<&'a Span>,
    best: &mut Option<(Vec<&'a Span>, usize)>,
) {
    if best.as_ref().is_none_or(|(_, len)| path.len() > *len) {
        *best = Some((path.clone(), path.len()));
    }
    let Some(&(_, step)) = steps.get(path.len()) else {
        return;
    };
    let candidates = children.get(&parent).map_or(&[][..], Vec::as_slice);
    for span in candidates.iter().filter(|s| matches_step(step, s)) {
        let mut longer = path.clone();
        longer.push(span);
        descend(children, steps, Some(span.span_id), longer, best);
        if best.as_ref().is_some_and(|(_, len)| *len == steps.len()) {
            return;
        }
    }
}

fn matches_step(step: &ChainStep, span: &Span) -> bool {
    span.service == step.service
        && span.kind == step.kind
        && step.name.as_ref().is_none_or(|name| *name == span.name)
}

fn check_orphans(trace: &Trace, sampled: &Sampled, failures: &mut Vec<Failure>) {
    let ids: HashSet<SpanId> = trace.spans.iter().map(|s| s.span_id).collect();
    let orphans: Vec<String> = trace
        .spans
        .iter()
        .filter(|s| {
            s.parent
                .is_some_and(|p| p != sampled.parent && !ids.contains(&p))
        })
        .map(|s| {
            format!(
                "{} {:?} (parent {})",
                s.service,
                s.name,
                s.parent.map(|p| p.to_string()).unwrap_or_default()
            )
        })
        .collect();
    let roots = trace.spans.iter().filter(|s| s.parent.is_none()).count();
    if !orphans.is_empty() {
        failures.push(Failure::new(
            CheckKind::Orphans,
            format!("parent not in the trace: {}", orphans.join("; ")),
        ));
    }
    if roots > 0 {
        failures.push(Failure::new(
            CheckKind::Orphans,
            format!(
                "{roots} span(s) without a parent: the harness's span should be every chain's root"
            ),
        ));
    }
}

fn check_attributes(
    step: &ChainStep,
    span: &Span,
    observed: Observed,
    failures: &mut Vec<Failure>,
) {
    for (key, wanted) in &step.attributes {
        let wanted = if wanted.starts_with('{') {
            match observed.placeholder(wanted) {
                Some(value) => value,
                // Nothing observed to compare with.
                None => continue,
            }
        } else {
            wanted.clone()
        };
        let problem = match span.attributes.get(key) {
            None => format!("missing {key}"),
            Some(value) if value.to_string() != wanted => {
                format!("{key} is {value}, expected {wanted}")
            }
            Some(_) => continue,
        };
        failures.push(Failure::new(
            CheckKind::Attributes,
            format!(
                "{} {} span {:?}: {problem}",
                step.service, step.kind, span.name
            ),
        ));
    }
}

fn check_error(step: &ChainStep, span: &Span, observed: Observed, failures: &mut Vec<Failure>) {
    let expected = match step.error {
        ErrorRule::Never => Some(false),
        ErrorRule::Server => observed.server_error(),
        ErrorRule::Any => observed.succeeded().map(|ok| !ok),
    };
    let Some(expected) = expected else {
        return;
    };
    let is_error = span.status == SpanStatus::Error;
    if is_error != expected {
        let outcome = match observed {
            Observed::Http(status) => format!("HTTP {status}"),
            Observed::Grpc(code) => engine::status::code_name(code).to_owned(),
            Observed::Unknown => "no answer".to_owned(),
        };
        failures.push(Failure::new(
            CheckKind::ErrorStatus,
            format!(
                "{} {} span {:?} is {}, expected {} for {outcome}",
                step.service,
                step.kind,
                span.name,
                if is_error { "ERROR" } else { "not ERROR" },
                if expected { "ERROR" } else { "no ERROR" },
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Protocol, bundled_trace_checks};
    use crate::trace::model::{AttrValue, SpanKind};

    const TRACE: TraceId = TraceId(0xabc);
    const HARNESS: SpanId = SpanId(0x1);

    fn span(
        id: u64,
        parent: u64,
        service: &str,
        kind: SpanKind,
        attrs: &[(&str, AttrValue)],
    ) -> Span {
        Span {
            trace_id: TRACE,
            span_id: SpanId(id),
            parent: Some(SpanId(parent)),
            service: service.to_owned(),
            name: format!("span {id}"),
            kind,
            status: SpanStatus::Unset,
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            links: Vec::new(),
            details: Default::default(),
        }
    }

    fn s(text: &str) -> AttrValue {
        AttrValue::String(text.to_owned())
    }

    /// The trace the bundled services produce for a request answered with `status`.
    fn bundled_trace(status: u16) -> Trace {
        let rpc = [
            ("rpc.system", s("grpc")),
            ("rpc.service", s(engine::core_engine::SERVICE_NAME)),
            ("rpc.method", s(engine::core_engine::FETCH_METHOD)),
        ];
        let server = [
            ("http.request.method", s("POST")),
            ("http.route", s(engine::gateway::FETCH_ROUTE)),
            (
                "http.response.status_code",
                AttrValue::Int(i64::from(status)),
            ),
        ];
        let mut engine_server = span(4, 3, "core-engine", SpanKind::Server, &rpc);
        engine_server.name = engine::core_engine::FETCH_SPAN_NAME.to_owned();
        let mut spans = vec![
            span(2, 1, "api-gateway", SpanKind::Server, &server),
            span(3, 2, "api-gateway", SpanKind::Client, &rpc),
            engine_server,
        ];
        if status < 400 {
            spans.push(span(5, 4, "core-engine", SpanKind::Internal, &[]));
            spans.push(span(6, 4, "core-engine", SpanKind::Internal, &[]));
        }
        if status >= 400 {
            spans[1].status = SpanStatus::Error;
        }
        if status >= 500 {
            spans[0].status = SpanStatus::Error;
            spans[2].status = SpanStatus::Error;
        }
        Trace { spans }
    }

    fn sampled(status: u16) -> Sampled {
        Sampled {
            trace_id: TRACE,
            parent: HARNESS,
            observed: Observed::Http(status),
            trace_header: Some(TRACE.to_string()),
        }
    }

    fn checks() -> TraceChecks {
        bundled_trace_checks(Protocol::Http, true)
    }

    fn kinds(failures: &[Failure]) -> Vec<CheckKind> {
        failures.iter().map(|f| f.check).collect()
    }

    #[test]
    fn a_correct_trace_passes_every_check() {
        for status in [200, 400, 503] {
            let trace = bundled_trace(status);
            assert!(is_complete(&trace, &checks(), &sampled(status)), "{status}");
            assert_eq!(
                check(Some(&trace), &checks(), &sampled(status)),
                [],
                "{status}"
            );
        }
    }

    #[test]
    fn a_hop_that_drops_the_context_breaks_the_chain_exactly_there() {
        // The engine started a trace of its own: its spans are not in this one.
        let mut trace = bundled_trace(200);
        trace.spans.retain(|s| s.service != "core-engine");
        assert!(!is_complete(&trace, &checks(), &sampled(200)));
        let failures = check(Some(&trace), &checks(), &sampled(200));
        assert_eq!(kinds(&failures), [CheckKind::Services, CheckKind::Chain]);
        assert_eq!(failures[0].detail, "no spans from core-engine");
        assert!(
            failures[1].detail.starts_with(
                "broken at api-gateway client -> core-engine server: no core-engine server span"
            ),
            "{}",
            failures[1].detail
        );
    }

    #[test]
    fn a_first_span_not_under_the_harness_span_is_reported() {
        let mut trace = bundled_trace(200);
        trace.spans[0].parent = Some(SpanId(0x99));
        let failures = check(Some(&trace), &checks(), &sampled(200));
        assert_eq!(kinds(&failures), [CheckKind::Chain, CheckKind::Orphans]);
        assert_eq!(
            failures[0].detail,
            "broken at harness -> api-gateway server: the api-gateway server span 0000000000000002 has parent 0000000000000099, expected 0000000000000001"
        );
    }

    #[test]
    fn orphans_are_named() {
        let mut trace = bundled_trace(200);
        trace.spans[4].parent = Some(SpanId(0x77));
        let failures = check(Some(&trace), &checks(), &sampled(200));
        assert_eq!(kinds(&failures), [CheckKind::Orphans]);
        assert!(
            failures[0]
                .detail
                .contains("core-engine \"span 6\" (parent 0000000000000077)")
        );
    }

    #[test]
    fn wrong_attributes_and_error_statuses_are_reported() {
        let mut trace = bundled_trace(503);
        trace.spans[0].status = SpanStatus::Unset;
        trace.spans[2].attributes.remove("rpc.method");
        let failures = check(Some(&trace), &checks(), &sampled(503));
        assert_eq!(
            kinds(&failures),
            [CheckKind::ErrorStatus, CheckKind::Attributes]
        );
        assert_eq!(
            failures[0].detail,
            "api-gateway server span \"span 2\" is not ERROR, expected ERROR for HTTP 503"
        );
        assert!(failures[1].detail.ends_with("missing rpc.method"));
        // The status code attribute must be the one the harness received.
        let failures = check(Some(&bundled_trace(200)), &checks(), &sampled(201));
        assert_eq!(kinds(&failures), [CheckKind::Attributes]);
        assert!(
            failures[0]
                .detail
                .ends_with("http.response.status_code is 200, expected 201")
        );
    }

    #[test]
    fn the_response_header_must_name_the_trace() {
        let trace = bundled_trace(200);
        let mut request = sampled(200);
        request.trace_header = None;
        let failures = check(Some(&trace), &checks(), &request);
        assert_eq!(failures[0].detail, "the response has no X-Trace-ID header");
        request.trace_header = Some("0".repeat(32));
        let failures = check(Some(&trace), &checks(), &request);
        assert_eq!(kinds(&failures), [CheckKind::ResponseHeader]);
        // gRPC answers carry it in their metadata, checked alike.
        request.observed = Observed::Grpc(Code::Ok);
        let failures = check(Some(&trace), &checks(), &request);
        assert!(kinds(&failures).contains(&CheckKind::ResponseHeader));
        request.trace_header = None;
        let failures = check(Some(&trace), &checks(), &request);
        assert!(
            failures
                .iter()
                .any(|f| f.detail.contains("has no X-Trace-ID"))
        );
    }

    #[test]
    fn a_missing_trace_fails_existence_only() {
        assert_eq!(
            kinds(&check(None, &checks(), &sampled(200))),
            [CheckKind::Exists]
        );
        let empty = Trace::default();
        assert!(!is_complete(&empty, &checks(), &sampled(200)));
    }

    #[test]
    fn without_an_answer_outcome_checks_are_skipped() {
        let mut request = sampled(200);
        request.observed = Observed::Unknown;
        let trace = bundled_trace(200);
        assert_eq!(check(Some(&trace), &checks(), &request), []);
    }

    #[test]
    fn the_checks_made_follow_the_configuration() {
        use CheckKind::*;
        let http = bundled_trace_checks(Protocol::Http, true);
        assert_eq!(
            CheckKind::made_by(&http, true),
            [
                Response,
                ResponseHeader,
                Exists,
                Services,
                Chain,
                Orphans,
                Attributes,
                ErrorStatus,
                Logs
            ]
        );
        // Direct gRPC has no response header; logs unread are not a check made.
        let grpc = bundled_trace_checks(Protocol::Grpc, false);
        assert_eq!(
            CheckKind::made_by(&grpc, false),
            [
                Response,
                Exists,
                Services,
                Chain,
                Orphans,
                Attributes,
                ErrorStatus
            ]
        );
        let bare = TraceChecks {
            services: Vec::new(),
            chain: Vec::new(),
            response_header: None,
            ..grpc
        };
        assert_eq!(
            CheckKind::made_by(&bare, false),
            [Response, Exists, Orphans]
        );
    }
}
