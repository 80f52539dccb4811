//! The plan's rendering of every request kind, and its check before reflection.

mod rendering {
    use prost_reflect::{DynamicMessage, Value as Field};
    use serde_json::json;

    use super::super::*;

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
            Ok(PreparedMix::Grpc(_) | PreparedMix::WebSocket(_)) => panic!("an http mix expected"),
            Err(err) => panic!("{err}"),
        }
    }

    fn grpc(s: &Scenario) -> Vec<LoadKind<Arc<GrpcCall>>> {
        match prepare(s, &env) {
            Ok(PreparedMix::Grpc(kinds)) => kinds,
            Ok(PreparedMix::Http(_) | PreparedMix::WebSocket(_)) => panic!("a grpc mix expected"),
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
        let message = DynamicMessage::decode(
            declared.method.descriptor().expect("resolved").input(),
            call.message.clone(),
        )
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
        let mut body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        // The bundled request carries the client's identity as real clients do: canaries.
        let client = body
            .as_object_mut()
            .and_then(|b| b.remove("client_id"))
            .expect("a client_id");
        assert_eq!(
            body,
            json!({"symbols": ["AAPL"], "source_id": "yahoo_finance", "window": 30})
        );
        assert_eq!(header(request, "x-client-id"), client.as_str());
        assert!(
            client.as_str().is_some_and(|c| c.starts_with("acct-")),
            "{client}"
        );
        let authorization = header(request, "authorization").expect("a bearer token");
        assert!(authorization.starts_with("Bearer tok_"), "{authorization}");
        assert!(
            request.headers["authorization"].is_sensitive(),
            "kept out of debug output"
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

mod reflection {
    use super::super::*;

    /// One `grpc:` kind named for the server's reflection, with metadata from `${KEY}`.
    fn reflected() -> Scenario {
        let text = "name: r
system:
  external: {target: \"http://127.0.0.1:9\"}
load:
  phases:
    - constant: {rate: 5, duration: 1s}
requests:
  - name: quote
    weight: 1
    grpc:
      method: quotes.v1.Quotes/GetQuote
      reflection: true
      message: {symbol: \"{{symbol}}\"}
      metadata: {x-api-key: \"${KEY}\"}
    vars: {symbol: [ACME]}
";
        scenario::parse("x.yaml", text, &[]).expect("valid")
    }

    #[test]
    fn a_method_for_reflection_is_checked_but_never_encoded_unresolved() {
        let scenario = reflected();
        let key = |name: &str| (name == "KEY").then(|| "k".to_owned());
        check(&scenario, &key).expect("everything but the message's type checks");
        let Err(error) = prepare(&scenario, &key) else {
            panic!("an unresolved method was rendered");
        };
        assert_eq!(
            error.to_string(),
            "x.yaml:11:15: requests[0].grpc.method: not yet described by the server: its \
             reflection service is asked when the run starts"
        );
    }

    #[test]
    fn the_check_before_reflection_still_renders_the_templates() {
        let Err(error) = check(&reflected(), &|_| None) else {
            panic!("an unset ${{KEY}} passed");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("x.yaml:14:29: requests[0].grpc.metadata.x-api-key:"),
            "{text}"
        );
        assert!(text.contains("KEY"), "{text}");
    }
}
