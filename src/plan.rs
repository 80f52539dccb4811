//! Scenario → load plan: every request kind rendered for its protocol, and the phases, arrivals
//! and limits the load core runs. Rendering happens before a service starts, so that a request
//! that does not fit (an unset `${NAME}`, a message that does not match its type) is bad input,
//! found before anything is launched. Relative URLs stay relative: the driver knows the target.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::bundled;
use crate::exit::RunError;
use crate::load::{self, GrpcCall, HttpRequest, LoadKind, LoadPlan, Outcome, RatePhase};
use crate::scenario::template::{self as tpl, Draw};
use crate::scenario::{self, Call, HttpBody, Phase, Protocol, RequestKind, Scenario, Template};

/// Draws rendered ahead per request kind whose values come from `vars:` lists; a `vars_file:`
/// gets one per row, up to this many.
const VARIANTS_PER_KIND: usize = 64;
const MAX_ROWS_RENDERED: usize = 4096;
/// How long requests still in flight after the last send may take, past their own timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The request mix rendered for the protocol, before anything starts.
pub(crate) enum PreparedMix {
    /// HTTP requests; URLs relative to the target stay relative.
    Http(Vec<LoadKind<Arc<HttpRequest>>>),
    /// Unary gRPC calls.
    Grpc(Vec<LoadKind<Arc<GrpcCall>>>),
}

/// Where environment variables come from: the process, or a test's map.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Renders every request kind of `scenario` for its protocol.
pub(crate) fn prepare(scenario: &Scenario, env: Env<'_>) -> Result<PreparedMix, RunError> {
    // Checked before rendering, so an unset variable is named where it is first written.
    for kind in &scenario.requests {
        if let Some((name, at)) = kind.env.iter().find(|(name, _)| env(name).is_none()) {
            let unset = tpl::RenderError::Unset(name.clone());
            return Err(RunError::BadInput(format!("{at}: {unset}")));
        }
    }
    let mut rng = StdRng::seed_from_u64(scenario.load.seed);
    Ok(match scenario.load.protocol {
        Protocol::Http => PreparedMix::Http(kinds(scenario, &mut rng, |kind, draw| {
            http_request(kind, draw, env).map(Arc::new)
        })?),
        Protocol::Grpc => PreparedMix::Grpc(kinds(scenario, &mut rng, |kind, draw| {
            grpc_call(kind, draw, env).map(Arc::new)
        })?),
    })
}

/// Each kind's payload variants, rendered up front so that sending does no rendering.
fn kinds<P>(
    scenario: &Scenario,
    rng: &mut StdRng,
    render: impl Fn(&RequestKind, &Draw) -> Result<P, RunError>,
) -> Result<Vec<LoadKind<P>>, RunError> {
    scenario
        .requests
        .iter()
        .map(|kind| {
            let cap = match kind.vars {
                scenario::Vars::Rows { .. } => MAX_ROWS_RENDERED,
                _ => VARIANTS_PER_KIND,
            };
            let payloads = (0..kind.vars.variants(cap))
                .map(|i| render(kind, &kind.vars.draw(i, rng)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LoadKind {
                name: kind.name.clone(),
                weight: kind.weight,
                payloads,
                expect: match scenario.load.protocol {
                    Protocol::Http => Outcome::Status(kind.expect.status),
                    Protocol::Grpc => Outcome::Code(kind.expect.code),
                },
                sampling: load::Sampling::NONE,
            })
        })
        .collect()
}

fn bad(kind: &RequestKind, at: &str, problem: impl std::fmt::Display) -> RunError {
    let at = if at.is_empty() {
        format!("requests.{}", kind.name)
    } else {
        at.to_owned()
    };
    RunError::BadInput(format!("{at}: {problem}"))
}

fn render(
    kind: &RequestKind,
    template: &Template,
    draw: &Draw,
    env: Env<'_>,
) -> Result<String, RunError> {
    tpl::render(&template.text, draw, env).map_err(|e| bad(kind, &template.at, e))
}

fn http_request(kind: &RequestKind, draw: &Draw, env: Env<'_>) -> Result<HttpRequest, RunError> {
    let json = |value: &serde_json::Value| -> Result<Bytes, RunError> {
        let value = tpl::render_json(value, draw, env).map_err(|e| bad(kind, "", e))?;
        serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(|e| bad(kind, "", e))
    };
    let mut headers = HeaderMap::new();
    let json_type = HeaderValue::from_static("application/json");
    match &kind.call {
        Call::Bundled(body) => Ok(HttpRequest::json(
            hyper::Method::POST,
            Uri::from_static(bundled::FETCH_ROUTE),
            json(body)?,
        )),
        Call::Http(call) => {
            for (name, value) in &call.headers {
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(kind, &value.at, e))?;
                let mut rendered = HeaderValue::from_str(&render(kind, value, draw, env)?)
                    .map_err(|e| bad(kind, &value.at, e))?;
                // Header values may hold secrets: keep them out of debug output.
                rendered.set_sensitive(true);
                headers.append(name, rendered);
            }
            let body = match &call.body {
                HttpBody::Empty => Bytes::new(),
                HttpBody::Json(value) => {
                    if !headers.contains_key(CONTENT_TYPE) {
                        headers.insert(CONTENT_TYPE, json_type);
                    }
                    json(value)?
                }
                HttpBody::Text(text) => Bytes::from(render(kind, text, draw, env)?),
                HttpBody::File(bytes) => bytes.clone(),
            };
            let url = render(kind, &call.url, draw, env)?;
            let uri = url
                .parse::<Uri>()
                .map_err(|e| bad(kind, &call.url.at, format!("{url:?} is not a URL: {e}")))?;
            Ok(HttpRequest {
                method: hyper::Method::from_bytes(call.method.as_bytes())
                    .map_err(|e| bad(kind, "", e))?,
                uri,
                headers,
                body,
            })
        }
        Call::Grpc(_) => Err(bad(kind, "", "a grpc: request in an http scenario")),
    }
}

fn grpc_call(kind: &RequestKind, draw: &Draw, env: Env<'_>) -> Result<GrpcCall, RunError> {
    match &kind.call {
        Call::Bundled(body) => {
            let body = tpl::render_json(body, draw, env).map_err(|e| bad(kind, "", e))?;
            let message = bundled::fetch_message(body)
                .map_err(|e| bad(kind, "", format!("not a FetchMarketData request: {e}")))?;
            Ok(GrpcCall {
                path: bundled::FETCH_METHOD_PATH
                    .parse()
                    .map_err(|e| bad(kind, "", e))?,
                metadata: tonic::metadata::MetadataMap::new(),
                message,
            })
        }
        Call::Grpc(call) => {
            let json = tpl::render_json(&call.message, draw, env).map_err(|e| bad(kind, "", e))?;
            let input = call.method.input();
            let message =
                prost_reflect::DynamicMessage::deserialize(input.clone(), json).map_err(|e| {
                    bad(
                        kind,
                        "",
                        format!("the message is not a {}: {e}", input.full_name()),
                    )
                })?;
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (name, value) in &call.metadata {
                let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                    .map_err(|e| bad(kind, &value.at, e))?;
                let rendered = render(kind, value, draw, env)?;
                let value = tonic::metadata::MetadataValue::try_from(rendered.as_str())
                    .map_err(|e| bad(kind, &value.at, e))?;
                metadata.append(key, value);
            }
            let path = format!(
                "/{}/{}",
                call.method.parent_service().full_name(),
                call.method.name()
            );
            Ok(GrpcCall {
                path: path.parse().map_err(|e| bad(kind, "", e))?,
                metadata,
                message: message.encode_to_vec().into(),
            })
        }
        Call::Http(_) => Err(bad(kind, "", "an http: request in a grpc scenario")),
    }
}

/// The load core's plan for `phases` of the scenario's load, without trace sampling.
pub(crate) fn load_plan<P>(
    load: &scenario::Load,
    phases: Vec<RatePhase>,
    kinds: Vec<LoadKind<P>>,
) -> LoadPlan<P> {
    LoadPlan {
        kinds,
        phases,
        arrivals: match load.arrivals {
            scenario::Arrivals::Uniform => load::Arrivals::Uniform,
            scenario::Arrivals::Poisson => load::Arrivals::Poisson { seed: load.seed },
        },
        seed: load.seed,
        max_in_flight: load.max_in_flight,
        drain_timeout: load.timeout + DRAIN_GRACE,
        announce: None,
        samples: None,
    }
}

/// The load core's view of a scenario phase.
pub(crate) fn rate_phase(phase: &Phase) -> RatePhase {
    match *phase {
        Phase::Constant { rate, duration } => RatePhase::constant(rate, duration),
        Phase::Ramp { from, to, duration } => RatePhase { from, to, duration },
    }
}

/// Requests per second the phases ask for on average.
pub(crate) fn target_rate(phases: &[Phase]) -> f64 {
    let phases: Vec<RatePhase> = phases.iter().map(rate_phase).collect();
    let seconds: f64 = phases.iter().map(|p| p.duration.as_secs_f64()).sum();
    let requests: f64 = phases.iter().map(RatePhase::expected_requests).sum();
    if seconds > 0.0 {
        requests / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::{DynamicMessage, Value as Field};
    use serde_json::json;

    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "s3cret".to_owned())
    }

    fn unset(_: &str) -> Option<String> {
        None
    }

    fn parse(source: &str, text: &str) -> Scenario {
        scenario::parse(source, text, &[]).unwrap_or_else(|err| panic!("{err}"))
    }

    fn http(s: &Scenario) -> Vec<LoadKind<Arc<HttpRequest>>> {
        match prepare(s, &env) {
            Ok(PreparedMix::Http(kinds)) => kinds,
            Ok(PreparedMix::Grpc(_)) => panic!("an http mix expected"),
            Err(err) => panic!("{err}"),
        }
    }

    fn grpc(s: &Scenario) -> Vec<LoadKind<Arc<GrpcCall>>> {
        match prepare(s, &env) {
            Ok(PreparedMix::Grpc(kinds)) => kinds,
            Ok(PreparedMix::Http(_)) => panic!("a grpc mix expected"),
            Err(err) => panic!("{err}"),
        }
    }

    /// The bad-input message `prepare` gives with the environment `env`.
    fn bad_input(s: &Scenario, env: Env<'_>) -> String {
        match prepare(s, env) {
            Err(RunError::BadInput(message)) => message,
            Err(other) => panic!("bad input expected, got {other}"),
            Ok(_) => panic!("bad input expected, prepared"),
        }
    }

    fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII"))
    }

    const HTTP: &str = "\
name: plan
system:
  external: {target: http://127.0.0.1:8000}
load:
  phases:
    - constant: {rate: 10, duration: 1s}
requests:
  - name: quote
    weight: 2
    http:
      method: POST
      url: \"/quote/{{symbol}}?key=${API_KEY}\"
      headers: {X-Api-Key: \"${API_KEY}\", X-Symbol: \"{{symbol}}\"}
      body: {symbol: \"{{symbol}}\", depth: 2}
    vars: {symbol: [AAPL]}
    expect: {status: 201}
  - name: ping
    weight: 1
    http: {url: \"https://other.example/ping\", body: \"hello {{who}} $${HOME}\"}
    vars: {who: [world]}
";

    #[test]
    fn http_kinds_are_rendered_with_their_method_url_headers_and_body() {
        let kinds = http(&parse("x.yaml", HTTP));
        let quote = &kinds[0];
        assert_eq!((quote.name.as_str(), quote.weight), ("quote", 2));
        assert_eq!(quote.expect, Outcome::Status(201));
        assert_eq!(quote.payloads.len(), VARIANTS_PER_KIND, "drawn from lists");
        let request = &quote.payloads[0];
        assert_eq!(request.method, hyper::Method::POST);
        // Relative to the target, which the driver knows.
        assert_eq!(request.uri.to_string(), "/quote/AAPL?key=s3cret");
        assert_eq!(request.uri.authority(), None);
        assert_eq!(header(request, "x-api-key"), Some("s3cret"));
        assert!(
            request.headers["x-api-key"].is_sensitive(),
            "kept out of debug output"
        );
        assert_eq!(header(request, "x-symbol"), Some("AAPL"));
        assert_eq!(
            header(request, "content-type"),
            Some("application/json"),
            "the default for a JSON body"
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body, json!({"symbol": "AAPL", "depth": 2}));

        let ping = &kinds[1].payloads[0];
        assert_eq!(ping.method, hyper::Method::GET);
        assert_eq!(ping.uri.to_string(), "https://other.example/ping");
        assert_eq!(
            &ping.body[..],
            b"hello world ${HOME}",
            "$${{ is a literal ${{"
        );
        assert_eq!(
            header(ping, "content-type"),
            None,
            "no content type is guessed for text"
        );
    }

    #[test]
    fn a_content_type_written_is_kept_and_files_are_sent_as_they_are() {
        let text = HTTP.replace(
            "X-Symbol: \"{{symbol}}\"}",
            "X-Symbol: \"{{symbol}}\", Content-Type: application/vnd.quote+json}",
        );
        let request = &http(&parse("x.yaml", &text))[0].payloads[0];
        let types: Vec<_> = request.headers.get_all("content-type").iter().collect();
        assert_eq!(types, ["application/vnd.quote+json"]);

        let dir = std::env::temp_dir().join(format!("harness-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let payload = [0u8, 159, 146, 150, b'{'];
        std::fs::write(dir.join("payload.bin"), payload).expect("scratch file");
        let text = HTTP.replace(
            "body: {symbol: \"{{symbol}}\", depth: 2}",
            "body_file: payload.bin",
        );
        let source = dir.join("x.yaml").display().to_string();
        let kinds = http(&parse(&source, &text));
        let _ = std::fs::remove_dir_all(&dir);
        let request = &kinds[0].payloads[0];
        assert_eq!(&request.body[..], payload);
        assert_eq!(header(request, "content-type"), None);
    }

    #[test]
    fn rows_of_a_vars_file_are_rendered_in_order() {
        let dir = std::env::temp_dir().join(format!("harness-plan-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("s.csv"), "symbol\nAAPL\nMSFT\nNVDA\n").expect("scratch file");
        let text = HTTP.replace("vars: {symbol: [AAPL]}", "vars_file: s.csv");
        let source = dir.join("x.yaml").display().to_string();
        let kinds = http(&parse(&source, &text));
        let _ = std::fs::remove_dir_all(&dir);
        let uris: Vec<String> = kinds[0]
            .payloads
            .iter()
            .map(|r| r.uri.to_string())
            .collect();
        assert_eq!(
            uris,
            [
                "/quote/AAPL?key=s3cret",
                "/quote/MSFT?key=s3cret",
                "/quote/NVDA?key=s3cret"
            ]
        );
    }

    #[test]
    fn an_unset_variable_is_bad_input_where_it_is_written() {
        // The first place it is written.
        let s = parse("x.yaml", HTTP);
        assert_eq!(
            bad_input(&s, &unset),
            "x.yaml:12:12: requests[0].http.url: ${API_KEY} is not set in the environment"
        );
        let text = HTTP.replace("?key=${API_KEY}", "");
        assert_eq!(
            bad_input(&parse("x.yaml", &text), &unset),
            "x.yaml:13:28: requests[0].http.headers.X-Api-Key: ${API_KEY} is not set in the \
             environment"
        );
        let text = HTTP.replace("\"hello {{who}} $${HOME}\"", "\"${TOKEN}\"");
        let text = text.replace("    vars: {who: [world]}\n", "");
        assert_eq!(
            bad_input(&parse("x.yaml", &text), &env),
            "x.yaml:19:53: requests[1].http.body: ${TOKEN} is not set in the environment"
        );
        let text = HTTP.replace("depth: 2}", "depth: 2, token: \"${TOKEN}\"}");
        assert_eq!(
            bad_input(&parse("x.yaml", &text), &env),
            "x.yaml:14:53: requests[0].http.body.token: ${TOKEN} is not set in the environment"
        );
    }

    const GRPC: &str = "\
name: plan
system:
  external: {target: http://127.0.0.1:50051}
load:
  phases:
    - constant: {rate: 10, duration: 1s}
requests:
  - name: quote
    weight: 1
    grpc:
      method: quotes.v1.Quotes/GetQuote
      proto: tests/external/python/quotes.proto
      message: {symbol: \"{{symbol}}\"}
      metadata: {X-Api-Key: \"${API_KEY}\"}
    vars: {symbol: [AAPL]}
    expect: {code: NOT_FOUND}
";

    #[test]
    fn grpc_messages_are_encoded_from_json_for_their_method() {
        let s = parse("x.yaml", GRPC);
        let Call::Grpc(declared) = &s.requests[0].call else {
            panic!("a grpc: kind")
        };
        let kinds = grpc(&s);
        assert_eq!(kinds[0].expect, Outcome::Code(tonic::Code::NotFound));
        let call = &kinds[0].payloads[0];
        assert_eq!(call.path.as_str(), "/quotes.v1.Quotes/GetQuote");
        assert_eq!(
            call.metadata
                .get("x-api-key")
                .map(|v| v.to_str().expect("ASCII")),
            Some("s3cret")
        );
        let message = DynamicMessage::decode(declared.method.input(), call.message.clone())
            .expect("a QuoteRequest");
        assert_eq!(
            message.get_field_by_name("symbol").as_deref(),
            Some(&Field::String("AAPL".into()))
        );
    }

    #[test]
    fn grpc_requests_that_do_not_fit_are_bad_input() {
        let text = GRPC.replace(
            "{symbol: \"{{symbol}}\"}",
            "{symbol: \"{{symbol}}\", sym: x}",
        );
        let message = bad_input(&parse("x.yaml", &text), &env);
        assert!(
            message.starts_with("requests.quote: the message is not a quotes.v1.QuoteRequest: "),
            "{message}"
        );
        assert!(message.contains("sym"), "{message}");

        assert_eq!(
            bad_input(&parse("x.yaml", GRPC), &unset),
            "x.yaml:14:29: requests[0].grpc.metadata.X-Api-Key: ${API_KEY} is not set in the \
             environment"
        );
        let text = GRPC.replace("{symbol: \"{{symbol}}\"}", "{symbol: \"${SYMBOL}\"}");
        let text = text.replace("    vars: {symbol: [AAPL]}\n", "");
        assert_eq!(
            bad_input(&parse("x.yaml", &text), &env),
            "x.yaml:13:25: requests[0].grpc.message.symbol: ${SYMBOL} is not set in the \
             environment"
        );
    }

    const BUNDLED: &str = "\
name: plan
system:
  managed: {}
load:
  protocol: PROTOCOL
  phases:
    - constant: {rate: 10, duration: 1s}
requests:
  - name: quote
    weight: 1
    body: {symbols: [\"{{symbol}}\"], source_id: \"${SOURCE}\", window: 30}
    vars: {symbol: [AAPL]}
";

    fn source(name: &str) -> Option<String> {
        (name == "SOURCE").then(|| "yahoo_finance".to_owned())
    }

    #[test]
    fn the_bundled_shorthand_goes_to_the_gateway_route_or_the_engine_method() {
        let s = parse("x.yaml", &BUNDLED.replace("PROTOCOL", "http"));
        let Ok(PreparedMix::Http(kinds)) = prepare(&s, &source) else {
            panic!("an http mix")
        };
        let request = &kinds[0].payloads[0];
        assert_eq!(request.method, hyper::Method::POST);
        assert_eq!(request.uri.path(), bundled::FETCH_ROUTE);
        assert_eq!(header(request, "content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(
            body,
            json!({"symbols": ["AAPL"], "source_id": "yahoo_finance", "window": 30})
        );

        let s = parse("x.yaml", &BUNDLED.replace("PROTOCOL", "grpc"));
        let Ok(PreparedMix::Grpc(kinds)) = prepare(&s, &source) else {
            panic!("a grpc mix")
        };
        let call = &kinds[0].payloads[0];
        assert_eq!(call.path.as_str(), bundled::FETCH_METHOD_PATH);
        let message = engine::proto::FetchMarketDataRequest::decode(call.message.clone())
            .expect("a FetchMarketDataRequest");
        assert_eq!(message.symbols, ["AAPL"]);
        assert_eq!(message.source_id, "yahoo_finance");
        assert_eq!(message.window, 30);
    }

    #[test]
    fn a_bundled_request_that_does_not_fit_is_bad_input() {
        let text = BUNDLED
            .replace("PROTOCOL", "grpc")
            .replace("window: 30", "window: -1");
        let message = bad_input(&parse("x.yaml", &text), &source);
        assert!(
            message.starts_with("requests.quote: not a FetchMarketData request: "),
            "{message}"
        );
        let s = parse("x.yaml", &BUNDLED.replace("PROTOCOL", "http"));
        assert_eq!(
            bad_input(&s, &env),
            "x.yaml:11:48: requests[0].body.source_id: ${SOURCE} is not set in the environment"
        );
    }
}
