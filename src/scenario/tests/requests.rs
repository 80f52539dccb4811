//! Request kinds of one's own: `http:` and `grpc:` calls beside the bundled `body:`, their
//! templates, the values they draw from (`vars:` or `vars_file:`), and the protocol they imply.

use super::*;
use crate::scenario::model::{GrpcCall, HttpCall};

/// An external system driven by a declared HTTP request; bad cases edit one line of it.
pub(super) const HTTP: &str = "\
name: declared
system:
  external: {target: http://127.0.0.1:8000}
load:
  phases:
    - constant: {rate: 10, duration: 1s}
requests:
  - name: quote
    weight: 1
    http:
      method: POST
      url: \"/quote/{{symbol}}?key=${API_KEY}\"
      headers: {X-Api-Key: \"${API_KEY}\", Accept: application/json}
      body: {symbol: \"{{symbol}}\", depth: 2}
    vars: {symbol: [AAPL, MSFT]}
";

/// The quote service's `.proto`, relative to the crate root (the directory of `x.yaml`).
pub(super) const PROTO: &str = "tests/external/python/quotes.proto";

/// An external system driven by a declared gRPC call of the quote service.
pub(super) const GRPC: &str = "\
name: declared
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
    vars: {symbol: [AAPL, MSFT]}
";

fn http_call(kind: &RequestKind) -> &HttpCall {
    match &kind.call {
        Call::Http(call) => call,
        other => panic!("an http: kind expected, got {other:?}"),
    }
}

fn grpc_call(kind: &RequestKind) -> &GrpcCall {
    match &kind.call {
        Call::Grpc(call) => call,
        other => panic!("a grpc: kind expected, got {other:?}"),
    }
}

fn template(text: &str, at: &str) -> Template {
    Template {
        text: text.to_owned(),
        at: at.to_owned(),
    }
}

#[test]
fn http_kind_reads_method_url_headers_and_json_body() {
    let s = parse("x.yaml", HTTP, &[]).expect("valid");
    assert_eq!(s.load.protocol, Protocol::Http, "implied by the http: kind");
    let kind = &s.requests[0];
    let call = http_call(kind);
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.url,
        template(
            "/quote/{{symbol}}?key=${API_KEY}",
            "x.yaml:12:12: requests[0].http.url"
        )
    );
    assert_eq!(
        call.headers,
        [
            (
                "x-api-key".to_owned(),
                template(
                    "${API_KEY}",
                    "x.yaml:13:28: requests[0].http.headers.X-Api-Key"
                )
            ),
            (
                "accept".to_owned(),
                template(
                    "application/json",
                    "x.yaml:13:50: requests[0].http.headers.Accept"
                )
            ),
        ],
        "names lower case, in the order written"
    );
    assert_eq!(
        call.body,
        HttpBody::Json(json!({"symbol": "{{symbol}}", "depth": 2}))
    );
    assert_eq!(lists(kind)["symbol"], ["AAPL", "MSFT"]);
    assert_eq!(kind.expect, Expect::default());
}

#[test]
fn http_kind_defaults_and_text_and_sequence_bodies() {
    let text = edit_of(
        HTTP,
        &[
            ("      method: POST\n", ""),
            (
                "      body: {symbol: \"{{symbol}}\", depth: 2}",
                "      body: \"sym={{ symbol }}&home=$${HOME}\"",
            ),
        ],
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let call = http_call(&s.requests[0]);
    assert_eq!(call.method, "GET", "the default method");
    // `$${` stays as written: rendering turns it into a literal `${`.
    assert_eq!(
        call.body,
        HttpBody::Text(template(
            "sym={{ symbol }}&home=$${HOME}",
            "x.yaml:13:13: requests[0].http.body"
        ))
    );

    let text = edit_of(
        HTTP,
        &[
            (
                "      body: {symbol: \"{{symbol}}\", depth: 2}",
                "      body: [\"{{symbol}}\", 1]",
            ),
            (
                "\"/quote/{{symbol}}?key=${API_KEY}\"",
                "https://quotes.example/q?key=${API_KEY}",
            ),
        ],
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let call = http_call(&s.requests[0]);
    assert_eq!(call.body, HttpBody::Json(json!(["{{symbol}}", 1])));
    assert_eq!(call.url.text, "https://quotes.example/q?key=${API_KEY}");

    let text = edit_of(
        HTTP,
        &[
            ("      body: {symbol: \"{{symbol}}\", depth: 2}\n", ""),
            (
                "      headers: {X-Api-Key: \"${API_KEY}\", Accept: application/json}\n",
                "",
            ),
        ],
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let call = http_call(&s.requests[0]);
    assert_eq!((&call.body, call.headers.len()), (&HttpBody::Empty, 0));
}

#[test]
fn body_file_is_read_relative_to_the_scenario() {
    let payload: &[u8] = &[0, 1, 2, 0xff, b'\n'];
    let scratch = Scratch::new("body-file", &[("data/payload.bin", payload)]);
    let text = edit_of(
        HTTP,
        &[(
            "body: {symbol: \"{{symbol}}\", depth: 2}",
            "body_file: data/payload.bin",
        )],
    );
    let s = parse(&scratch.source(), &text, &[]).expect("valid");
    assert_eq!(
        http_call(&s.requests[0]).body,
        HttpBody::File(bytes::Bytes::from_static(payload)),
        "sent as is"
    );
}

#[test]
fn grpc_kind_resolves_its_method_in_the_proto() {
    let s = parse("x.yaml", GRPC, &[]).expect("valid");
    assert_eq!(s.load.protocol, Protocol::Grpc, "implied by the grpc: kind");
    let call = grpc_call(&s.requests[0]);
    assert_eq!(call.method.full_name(), "quotes.v1.Quotes/GetQuote");
    assert_eq!(
        call.method
            .descriptor()
            .expect("resolved")
            .input()
            .full_name(),
        "quotes.v1.QuoteRequest"
    );
    assert_eq!(call.message, json!({"symbol": "{{symbol}}"}));
    assert_eq!(
        call.metadata,
        [(
            "x-api-key".to_owned(),
            template(
                "${API_KEY}",
                "x.yaml:14:29: requests[0].grpc.metadata.X-Api-Key"
            )
        )]
    );

    // Without a message the request is the empty message.
    let text = edit_of(
        GRPC,
        &[
            ("      message: {symbol: \"{{symbol}}\"}\n", ""),
            ("    vars: {symbol: [AAPL, MSFT]}\n", ""),
        ],
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(grpc_call(&s.requests[0]).message, json!({}));
}

#[test]
fn grpc_imports_are_found_under_import_paths_relative_to_the_scenario() {
    let service = b"syntax = \"proto3\";\npackage svc.v1;\nimport \"shared/msg.proto\";\n\
                    service Svc { rpc Get(shared.v1.Ask) returns (shared.v1.Ask); }\n";
    let message = b"syntax = \"proto3\";\npackage shared.v1;\nmessage Ask { string q = 1; }\n";
    let scratch = Scratch::new(
        "grpc-imports",
        &[
            ("protos/svc.proto", service),
            ("include/shared/msg.proto", message),
        ],
    );
    let text = edit_of(
        GRPC,
        &[
            ("quotes.v1.Quotes/GetQuote", "svc.v1.Svc/Get"),
            (
                &format!("proto: {PROTO}"),
                "proto: protos/svc.proto\n      import_paths: [include]",
            ),
            ("{symbol: \"{{symbol}}\"}", "{q: \"{{symbol}}\"}"),
        ],
    );
    let s = parse(&scratch.source(), &text, &[]).expect("valid");
    let call = grpc_call(&s.requests[0]);
    assert_eq!(
        call.method
            .descriptor()
            .expect("resolved")
            .input()
            .full_name(),
        "shared.v1.Ask"
    );

    // Without the import path the import is not found.
    let text = text.replace("\n      import_paths: [include]", "");
    let message = match parse(&scratch.source(), &text, &[]) {
        Ok(_) => panic!("the import needs its path"),
        Err(err) => err.to_string(),
    };
    let at = format!("{}:12:14: requests[0].grpc.proto: ", scratch.source());
    assert!(message.starts_with(&at), "{message}");
    assert!(message.contains("shared/msg.proto"), "{message}");
}

#[test]
fn vars_files_are_tables_relative_to_the_scenario() {
    let scratch = Scratch::new(
        "vars-file",
        &[
            ("data/symbols.csv", b"symbol,venue\nAAPL,X\nMSFT,Y\n"),
            (
                "data/symbols.jsonl",
                b"{\"symbol\": \"NVDA\", \"n\": 1}\n{\"symbol\": \"AMD\", \"n\": 2}\n",
            ),
        ],
    );
    for (file, columns, rows) in [
        (
            "data/symbols.csv",
            vec!["symbol", "venue"],
            vec![vec!["AAPL", "X"], vec!["MSFT", "Y"]],
        ),
        (
            "data/symbols.jsonl",
            vec!["n", "symbol"],
            vec![vec!["1", "NVDA"], vec!["2", "AMD"]],
        ),
    ] {
        // A column nothing uses (venue, n) is allowed.
        let text = edit_of(
            HTTP,
            &[(
                "vars: {symbol: [AAPL, MSFT]}",
                &format!("vars_file: {file}"),
            )],
        );
        let s = parse(&scratch.source(), &text, &[]).expect("valid");
        assert_eq!(
            s.requests[0].vars,
            Vars::Rows {
                columns: columns.iter().map(|c| c.to_string()).collect(),
                rows: rows
                    .iter()
                    .map(|row| row.iter().map(|v| v.to_string()).collect())
                    .collect(),
            },
            "{file}"
        );
    }
}

#[test]
fn kinds_of_both_shapes_share_the_explicit_protocol() {
    // The bundled shorthand speaks whatever the explicit kinds speak.
    let text = format!("{HTTP}  - {{name: bundled, weight: 1, body: {{symbols: [AAPL]}}}}\n");
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(s.load.protocol, Protocol::Http);
    assert_eq!(
        s.requests[1].call,
        Call::Bundled(json!({"symbols": ["AAPL"]}))
    );
    // Writing the protocol the kinds imply is allowed.
    let text = edit_of(HTTP, &[("  phases:", "  protocol: http\n  phases:")]);
    assert_eq!(
        parse("x.yaml", &text, &[]).expect("valid").load.protocol,
        Protocol::Http
    );
}

#[test]
fn bad_requests_say_where_and_what() {
    let http = |edits: &[(&str, &str)]| edit_of(HTTP, edits);
    let grpc = |edits: &[(&str, &str)]| edit_of(GRPC, edits);
    let second_kind = "  - {name: other, weight: 1, grpc: {method: quotes.v1.Quotes/GetQuote, \
                       proto: tests/external/python/quotes.proto}}\n";
    let cases = [
        // Exactly one of body, http and grpc.
        (
            http(&[("    http:\n", "    body: {a: 1}\n    http:\n")]),
            "x.yaml:8:5: requests[0]: expected exactly one of body, http, grpc, websocket, got body and http",
        ),
        (
            http(&[(
                "    http:\n      method: POST\n      url: \"/quote/{{symbol}}?key=${API_KEY}\"\n      headers: {X-Api-Key: \"${API_KEY}\", Accept: application/json}\n      body: {symbol: \"{{symbol}}\", depth: 2}\n    vars: {symbol: [AAPL, MSFT]}\n",
                "",
            )]),
            "x.yaml:8:5: requests[0]: expected exactly one of body, http, grpc, websocket, got none",
        ),
        // The protocol.
        (
            http(&[("  phases:", "  protocol: grpc\n  phases:")]),
            "x.yaml:5:13: load.protocol: grpc does not match the request kinds, which are http",
        ),
        (
            format!("{HTTP}{second_kind}"),
            "x.yaml:16:5: requests[1]: every request kind of a scenario speaks one protocol: \
             this one is grpc, requests[0] is http",
        ),
        // http:
        (
            http(&[("method: POST", "method: \"PO ST\"")]),
            "x.yaml:11:15: requests[0].http.method: expected an HTTP method such as GET or POST, got \"PO ST\"",
        ),
        (
            http(&[("\"/quote/{{symbol}}?key=${API_KEY}\"", "quote")]),
            "x.yaml:12:12: requests[0].http.url: expected a path such as /v2/quote (relative to \
             the system's target) or an http:// or https:// URL, got \"quote\"",
        ),
        (
            http(&[("\"/quote/{{symbol}}?key=${API_KEY}\"", "ftp://h/q")]),
            "x.yaml:12:12: requests[0].http.url: expected a path such as /v2/quote (relative to \
             the system's target) or an http:// or https:// URL, got \"ftp://h/q\"",
        ),
        (
            http(&[("      url: \"/quote/{{symbol}}?key=${API_KEY}\"\n", "")]),
            "x.yaml:11:7: requests[0].http.url: required key is missing",
        ),
        (
            http(&[("Accept: application/json", "\"Bad Header\": x")]),
            "x.yaml:13:42: requests[0].http.headers.Bad Header: expected a header name such as x-api-key",
        ),
        (
            http(&[("Accept: application/json", "Accept: [a]")]),
            "x.yaml:13:50: requests[0].http.headers.Accept: expected a string, got a sequence",
        ),
        (
            http(&[("depth: 2}", "depth: 2}\n      body_file: x.bin")]),
            "x.yaml:15:18: requests[0].http.body_file: give body or body_file, not both",
        ),
        (
            http(&[(
                "body: {symbol: \"{{symbol}}\", depth: 2}",
                "body_file: missing.bin",
            )]),
            "x.yaml:14:18: requests[0].http.body_file: missing.bin: cannot read: No such file or \
             directory (os error 2)",
        ),
        (
            http(&[("method: POST", "method: POST\n      query: {a: 1}")]),
            "x.yaml:12:7: requests[0].http.query: unknown key; expected one of: method, url, \
             headers, body, body_file",
        ),
        (
            http(&[("depth: 2}", "depth: .nan}")]),
            "x.yaml:14:43: requests[0].http.body.depth: expected a finite number, got .nan",
        ),
        // Templates.
        (
            http(&[("?key=${API_KEY}", "?key=${1KEY}")]),
            "x.yaml:12:12: requests[0].http.url: \"${1KEY}\": expected an environment variable \
             name matching [A-Za-z_][A-Za-z0-9_]*",
        ),
        (
            http(&[("{X-Api-Key: \"${API_KEY}\"", "{X-Api-Key: \"${API_KEY\"")]),
            "x.yaml:13:28: requests[0].http.headers.X-Api-Key: unclosed \"${\" in \"${API_KEY\"; \
             write $${ for a literal",
        ),
        (
            http(&[("depth: 2}", "depth: \"{{ }}\"}")]),
            "x.yaml:14:43: requests[0].http.body.depth: \"{{}}\": expected a variable name \
             matching [A-Za-z0-9_]+",
        ),
        // Placeholders and their values.
        (
            http(&[("?key=", "?venue={{venue}}&key=")]),
            "x.yaml:12:12: requests[0].http.url: \"{{venue}}\" needs a non-empty requests[0].vars.venue",
        ),
        (
            http(&[("    vars: {symbol: [AAPL, MSFT]}\n", "")]),
            "x.yaml:12:12: requests[0].http.url: \"{{symbol}}\" needs a non-empty requests[0].vars.symbol\n\
             x.yaml:14:22: requests[0].http.body.symbol: \"{{symbol}}\" needs a non-empty requests[0].vars.symbol",
        ),
        (
            http(&[("[AAPL, MSFT]}", "[AAPL, MSFT], venue: [X]}")]),
            "x.yaml:15:34: requests[0].vars.venue: unused: the request has no \"{{venue}}\"",
        ),
        (
            http(&[("[AAPL, MSFT]}", "[AAPL, MSFT]}\n    vars_file: v.csv")]),
            "x.yaml:16:16: requests[0].vars_file: give vars or vars_file, not both",
        ),
        // grpc:
        (
            grpc(&[(&format!("proto: {PROTO}"), "proto: nope.proto")]),
            "x.yaml:12:14: requests[0].grpc.proto: nope.proto: cannot read: No such file or \
             directory (os error 2)",
        ),
        (
            grpc(&[(&format!("      proto: {PROTO}\n"), "")]),
            "x.yaml:11:7: requests[0].grpc.proto: required key is missing; give the .proto file that declares the method, or reflection: true to ask the server",
        ),
        (
            grpc(&[("quotes.v1.Quotes/GetQuote", "GetQuote")]),
            "x.yaml:11:15: requests[0].grpc.method: expected package.Service/Method, got \"GetQuote\"",
        ),
        (
            grpc(&[("quotes.v1.Quotes/GetQuote", "quotes.v1.Quote/GetQuote")]),
            "x.yaml:11:15: requests[0].grpc.method: no service \"quotes.v1.Quote\" in the .proto; \
             it has: quotes.v1.Quotes, quotes.v1.Prices",
        ),
        (
            grpc(&[("quotes.v1.Quotes/GetQuote", "quotes.v1.Quotes/Get")]),
            "x.yaml:11:15: requests[0].grpc.method: quotes.v1.Quotes has no method \"Get\"; it \
             has: GetQuote",
        ),
        (
            grpc(&[(
                "message: {symbol: \"{{symbol}}\"}",
                "message: \"{{symbol}}\"",
            )]),
            "x.yaml:13:16: requests[0].grpc.message: expected a mapping (the request message as \
             JSON), got \"{{symbol}}\"",
        ),
        (
            grpc(&[("{X-Api-Key:", "{\"x key\":")]),
            "x.yaml:14:18: requests[0].grpc.metadata.x key: expected a header name such as x-api-key",
        ),
        (
            grpc(&[("      message:", "      service: x\n      message:")]),
            "x.yaml:13:7: requests[0].grpc.service: unknown key; expected one of: method, proto, \
             import_paths, reflection, message, metadata",
        ),
        (
            grpc(&[("[AAPL, MSFT]}", "[AAPL, MSFT], n: [\"1\"]}")]),
            "x.yaml:15:34: requests[0].vars.n: unused: the request has no \"{{n}}\"",
        ),
        // The bundled shorthand needs load.protocol.
        (
            edit(&[("  protocol: http\n", "")]),
            "x.yaml:5:3: load.protocol: required key is missing",
        ),
        (
            edit(&[(
                "body: {symbols: [\"{{symbol}}\"], source_id: yahoo_finance}",
                "body: [\"{{symbol}}\"]",
            )]),
            "x.yaml:11:11: requests[0].body: expected a mapping (the request as JSON), got a sequence",
        ),
    ];
    assert_errors(cases);
}

#[test]
fn a_missing_protocol_is_not_reported_over_the_requests_own_errors() {
    let text = edit(&[("  protocol: http\n", ""), ("weight: 1", "weight: 0")]);
    assert_eq!(
        error(&text, &[]),
        "x.yaml:9:13: requests[0].weight: expected an integer > 0, got 0"
    );
}

#[test]
fn streaming_methods_are_refused() {
    let proto = b"syntax = \"proto3\";\npackage s.v1;\nmessage M {}\n\
                  service S { rpc Watch(M) returns (stream M); rpc Get(M) returns (M); }\n";
    let scratch = Scratch::new("grpc-stream", &[("s.proto", proto)]);
    let text = edit_of(
        GRPC,
        &[
            ("quotes.v1.Quotes/GetQuote", "s.v1.S/Watch"),
            (&format!("proto: {PROTO}"), "proto: s.proto"),
            ("      message: {symbol: \"{{symbol}}\"}\n", ""),
            ("    vars: {symbol: [AAPL, MSFT]}\n", ""),
        ],
    );
    let err = parse(&scratch.source(), &text, &[]).expect_err("streams");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:11:15: requests[0].grpc.method: s.v1.S/Watch streams; only unary methods can be \
             load-tested",
            scratch.source()
        )
    );
    let unary = text.replace("s.v1.S/Watch", "s.v1.S/Get");
    parse(&scratch.source(), &unary, &[]).expect("a unary method of the same service");
}

#[test]
fn bad_vars_files_name_the_file_and_what_is_wrong() {
    let scratch = Scratch::new(
        "bad-vars-file",
        &[
            ("v.csv", b"symbol,venue\nAAPL,X\n"),
            ("v.txt", b"symbol\nAAPL\n"),
            ("empty.csv", b"symbol\n"),
            ("bad.csv", b"sym bol\nAAPL\n"),
            ("short.csv", b"symbol,venue\nAAPL\n"),
            ("mixed.jsonl", b"{\"symbol\": \"A\"}\n{\"venue\": \"X\"}\n"),
        ],
    );
    let source = scratch.source();
    let dir = scratch.0.display();
    let with = |file: &str| {
        edit_of(
            HTTP,
            &[(
                "vars: {symbol: [AAPL, MSFT]}",
                &format!("vars_file: {file}"),
            )],
        )
    };
    let cases = [
        (
            with("v.txt"),
            format!(
                "{source}:15:16: requests[0].vars_file: {dir}/v.txt: expected a .csv, .jsonl or \
                 .ndjson file"
            ),
        ),
        (
            with("empty.csv"),
            format!("{source}:15:16: requests[0].vars_file: {dir}/empty.csv: no rows"),
        ),
        (
            with("bad.csv"),
            format!(
                "{source}:15:16: requests[0].vars_file: {dir}/bad.csv: column \"sym bol\": \
                 expected a name matching [A-Za-z0-9_]+"
            ),
        ),
        (
            with("missing.csv"),
            format!(
                "{source}:15:16: requests[0].vars_file: {dir}/missing.csv: cannot read: No such \
                 file or directory (os error 2)"
            ),
        ),
        (
            with("mixed.jsonl"),
            format!(
                "{source}:15:16: requests[0].vars_file: {dir}/mixed.jsonl: line 2: expected the \
                 keys of line 1 (symbol), got venue"
            ),
        ),
        (
            with("v.csv").replace("?key=", "?at={{exchange}}&key="),
            format!(
                "{source}:12:12: requests[0].http.url: \"{{{{exchange}}}}\" needs a column \
                 exchange in requests[0].vars_file"
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        let got = match parse(&source, text, &[]) {
            Ok(_) => "parsed".to_owned(),
            Err(err) => err.to_string(),
        };
        if got != *expected {
            failures.push(format!("expected: {expected}\n     got: {got}"));
        }
    }
    let short = match parse(&source, &with("short.csv"), &[]) {
        Ok(_) => "parsed".to_owned(),
        Err(err) => err.to_string(),
    };
    let at = format!("{source}:15:16: requests[0].vars_file: {dir}/short.csv: ");
    if !short.starts_with(&at) {
        failures.push(format!("a short CSV row: {short}"));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
