//! What a request kind sends: the general `http:` (any method, URL, headers and body) and `grpc:`
//! (any unary method of a `.proto` compiled when the scenario is read, or of the server's
//! reflection service, its message as JSON) calls, and the JSON and template fields they and the bundled `body:` are made of.

use std::path::PathBuf;

use super::model::{GrpcCall, GrpcMethod, HttpBody, HttpCall, Template};
use super::read::{Cx, Fields, boolean, file_bounded, index, join, mapping, string};
use super::template;
use super::tree::{Node, Origin, Value};

/// A `{{var}}` or `${NAME}` found in a request: its name, and where it was written.
pub(super) struct Placeholder {
    pub(super) name: String,
    /// `${NAME}`, read from the environment when the run starts.
    pub(super) env: bool,
    pub(super) origin: Origin,
    pub(super) at: String,
}

/// The most a `body_file:` or `.proto` file may hold.
const MAX_FILE_BYTES: u64 = 16 << 20;

pub(super) fn http(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<HttpCall> {
    const KEYS: &[&str] = &["method", "url", "headers", "body", "body_file"];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let method = fields.read_or(cx, "method", "GET".to_owned(), |cx, n, at| match &n.value {
        Value::Str(s) if hyper::Method::from_bytes(s.as_bytes()).is_ok() => Some(s.clone()),
        _ => cx.expected(n, at, "an HTTP method such as GET or POST"),
    });
    let url = fields.required(cx, "url").and_then(|n| {
        let at = fields.path("url");
        let text = template_text(cx, n, &at, placeholders)?;
        let absolute = text.starts_with("http://") || text.starts_with("https://");
        if !(absolute || text.starts_with('/')) {
            return cx.expected(
                n,
                &at,
                "a path such as /v2/quote (relative to the system's target) or an http:// or https:// URL",
            );
        }
        Some(Template {
            at: cx.position(n.origin, &at),
            text,
        })
    });
    let headers = fields.get("headers").map_or(Some(Vec::new()), |n| {
        named_templates(cx, n, &fields.path("headers"), placeholders, |name| {
            hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
        })
    });
    let body = match (fields.get("body"), fields.get("body_file")) {
        (Some(_), Some(n)) => {
            cx.err(
                n.origin,
                &fields.path("body_file"),
                "give body or body_file, not both",
            );
            None
        }
        (Some(n), None) => {
            let at = fields.path("body");
            match &n.value {
                Value::Map(_) | Value::Seq(_) => json(cx, n, &at, placeholders).map(HttpBody::Json),
                _ => template_text(cx, n, &at, placeholders).map(|text| {
                    HttpBody::Text(Template {
                        at: cx.position(n.origin, &at),
                        text,
                    })
                }),
            }
        }
        (None, Some(n)) => {
            let at = fields.path("body_file");
            let name = string(cx, n, &at)?;
            let file = cx.relative(&name);
            match file_bounded(&file, MAX_FILE_BYTES) {
                Ok(bytes) => Some(HttpBody::File(bytes.into())),
                Err(problem) => {
                    cx.err(n.origin, &at, format!("{}: {problem}", file.display()));
                    None
                }
            }
        }
        (None, None) => Some(HttpBody::Empty),
    };
    Some(HttpCall {
        method: method?,
        url: url?,
        headers: headers?,
        body: body?,
    })
}

pub(super) fn grpc(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<GrpcCall> {
    const KEYS: &[&str] = &[
        "method",
        "proto",
        "import_paths",
        "reflection",
        "message",
        "metadata",
    ];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let reflection = fields.read_or(cx, "reflection", false, boolean);
    let method = match (reflection, fields.get("proto")) {
        (Some(true), Some(n)) => {
            cx.err(
                n.origin,
                &fields.path("proto"),
                "give proto or reflection: true, not both",
            );
            None
        }
        (Some(true), None) => {
            if let Some(n) = fields.get("import_paths") {
                cx.err(
                    n.origin,
                    &fields.path("import_paths"),
                    "applies to proto only; with reflection: true the server describes the method",
                );
            }
            fields.required(cx, "method").and_then(|n| {
                let at = fields.path("method");
                let name = string(cx, n, &at)?;
                match split_method(&name) {
                    Ok(_) => Some(GrpcMethod::Reflection(cx.located(n, &at, name))),
                    Err(problem) => {
                        cx.err(n.origin, &at, problem);
                        None
                    }
                }
            })
        }
        (Some(false), _) => proto_method(cx, node, &fields),
        (None, _) => None,
    };
    let message = match fields.get("message") {
        Some(n) if matches!(n.value, Value::Map(_)) => {
            json(cx, n, &fields.path("message"), placeholders)
        }
        Some(n) => cx.expected(
            n,
            &fields.path("message"),
            "a mapping (the request message as JSON)",
        ),
        None => Some(serde_json::Value::Object(serde_json::Map::new())),
    };
    let metadata = fields.get("metadata").map_or(Some(Vec::new()), |n| {
        named_templates(cx, n, &fields.path("metadata"), placeholders, |name| {
            tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(name.as_bytes())
                .is_ok()
        })
    });
    Some(GrpcCall {
        method: method?,
        message: message?,
        metadata: metadata?,
    })
}

/// The method of a `grpc:` kind with `proto:`, compiled and looked up now.
fn proto_method(cx: &mut Cx, node: &Node, fields: &Fields<'_>) -> Option<GrpcMethod> {
    let imports: Vec<PathBuf> = super::read::strings(
        cx,
        fields.get("import_paths"),
        &fields.path("import_paths"),
        false,
    )
    .iter()
    .map(|dir| cx.relative(dir))
    .collect();
    let Some(proto) = fields.get("proto") else {
        cx.err(
            node.origin,
            &fields.path("proto"),
            "required key is missing; give the .proto file that declares the method, or \
             reflection: true to ask the server",
        );
        return None;
    };
    let pool = {
        let at = fields.path("proto");
        let name = string(cx, proto, &at)?;
        let file = cx.relative(&name);
        compile(&file, &imports)
            .map_err(|problem| {
                cx.err(proto.origin, &at, problem);
            })
            .ok()
    };
    fields.required(cx, "method").and_then(|n| {
        let at = fields.path("method");
        let name = string(cx, n, &at)?;
        let pool = pool.as_ref()?;
        match find_method(pool, &name, "in the .proto") {
            Ok(method) => Some(GrpcMethod::Resolved(method)),
            Err(problem) => {
                cx.err(n.origin, &at, problem);
                None
            }
        }
    })
}

/// A mapping of header or metadata names (lower-cased, checked by `valid`) to templates.
pub(super) fn named_templates(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
    valid: impl Fn(&str) -> bool,
) -> Option<Vec<(String, Template)>> {
    let fields = mapping(cx, node, path, None)?;
    let before = cx.problems.len();
    let mut out = Vec::new();
    for &(key_node, key, value) in &fields.entries {
        let at = join(path, key);
        let name = key.to_ascii_lowercase();
        if !valid(&name) {
            cx.err(
                key_node.origin,
                &at,
                "expected a header name such as x-api-key",
            );
            continue;
        }
        if let Some(text) = template_text(cx, value, &at, placeholders) {
            out.push((
                name,
                Template {
                    at: cx.position(value.origin, &at),
                    text,
                },
            ));
        }
    }
    (cx.problems.len() == before).then_some(out)
}

/// The descriptors of `file` and everything it imports.
fn compile(
    file: &std::path::Path,
    imports: &[PathBuf],
) -> Result<prost_reflect::DescriptorPool, String> {
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{}: larger than {MAX_FILE_BYTES} bytes",
            file.display()
        ));
    }
    let dir = file.parent().map(PathBuf::from).unwrap_or_default();
    let includes = std::iter::once(dir).chain(imports.iter().cloned());
    let mut compiler = protox::Compiler::new(includes).map_err(|e| e.to_string())?;
    compiler.include_imports(true);
    compiler.open_file(file).map_err(|e| e.to_string())?;
    Ok(compiler.descriptor_pool())
}

/// `package.Service/Method` split into the service's full name and the method's.
pub(crate) fn split_method(name: &str) -> Result<(&str, &str), String> {
    match name.split_once('/') {
        Some((service, method))
            if !service.is_empty()
                && !method.is_empty()
                && !method.contains('/')
                && !service.starts_with('.') =>
        {
            Ok((service, method))
        }
        _ => Err(format!("expected package.Service/Method, got {name:?}")),
    }
}

/// `package.Service/Method`, unary, in `pool`; `source` says where the pool came from in
/// errors (`in the .proto`, `on the server`).
pub(crate) fn find_method(
    pool: &prost_reflect::DescriptorPool,
    name: &str,
    source: &str,
) -> Result<prost_reflect::MethodDescriptor, String> {
    let (service_name, method_name) = split_method(name)?;
    let service = pool.get_service_by_name(service_name).ok_or_else(|| {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
        format!(
            "no service {service_name:?} {source}; it has: {}",
            known.join(", ")
        )
    })?;
    let method = service
        .methods()
        .find(|m| m.name() == method_name)
        .ok_or_else(|| {
            let known: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            format!(
                "{service_name} has no method {method_name:?}; it has: {}",
                known.join(", ")
            )
        })?;
    if method.is_client_streaming() || method.is_server_streaming() {
        return Err(format!(
            "{name} streams; only unary methods can be load-tested"
        ));
    }
    Ok(method)
}

/// A template string: checked now, rendered when the run starts. Collects its placeholders.
pub(super) fn template_text(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<String> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.value.to_string(),
        _ => return cx.expected(node, path, "a string"),
    };
    let parts = match template::parts(&text) {
        Ok(parts) => parts,
        Err(problem) => {
            cx.err(node.origin, path, problem);
            return None;
        }
    };
    for part in parts {
        let (name, env) = match part {
            template::Part::Var(name) => (name, false),
            template::Part::Env(name) => (name, true),
            template::Part::Text(_) => continue,
        };
        placeholders.push(Placeholder {
            name: name.to_owned(),
            env,
            origin: node.origin,
            at: path.to_owned(),
        });
    }
    Some(text)
}

/// A YAML subtree as JSON, its strings checked as templates.
pub(super) fn json(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => {
            if let Ok(i) = i64::try_from(*i) {
                J::from(i)
            } else if let Ok(u) = u64::try_from(*i) {
                J::from(u)
            } else {
                return cx.expected(node, path, "an integer that fits 64 bits");
            }
        }
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => J::Number(n),
            None => return cx.expected(node, path, "a finite number"),
        },
        Value::Str(_) => J::String(template_text(cx, node, path, placeholders)?),
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match json(cx, item, &index(path, i), placeholders) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            J::Array(out)
        }
        Value::Map(_) => {
            let fields = mapping(cx, node, path, None)?;
            let mut out = serde_json::Map::new();
            let mut ok = true;
            for &(_, key, value) in &fields.entries {
                match json(cx, value, &join(path, key), placeholders) {
                    Some(v) => {
                        out.insert(key.to_owned(), v);
                    }
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            J::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::{Call, GrpcMethod, Scenario};
    use super::super::parse;

    /// A scenario whose one kind has these `grpc:` lines (indented under it).
    fn scenario(grpc: &str, extra: &str) -> String {
        format!(
            "name: r
system:
  external: {{target: \"http://127.0.0.1:9\"}}
load:
  phases:
    - constant: {{rate: 5, duration: 1s}}
requests:
  - name: quote
    weight: 1
    grpc:
{grpc}
{extra}"
        )
    }

    fn errors(grpc: &str, extra: &str) -> String {
        match parse("x.yaml", &scenario(grpc, extra), &[]) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn method(s: &Scenario) -> &GrpcMethod {
        match &s.requests[0].call {
            Call::Grpc(call) => &call.method,
            other => panic!("a grpc: kind expected, got {other:?}"),
        }
    }

    fn quotes_proto() -> String {
        format!(
            "{}/tests/external/python/quotes.proto",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn reflection_names_the_method_for_the_server_with_its_place() {
        let s = parse(
            "x.yaml",
            &scenario(
                "      method: quotes.v1.Quotes/GetQuote\n      reflection: true\n      message: {symbol: ACME}",
                "",
            ),
            &[],
        )
        .expect("valid");
        let GrpcMethod::Reflection(name) = method(&s) else {
            panic!("a method to be described expected, got {:?}", method(&s));
        };
        assert_eq!(name.value, "quotes.v1.Quotes/GetQuote");
        assert_eq!(name.key, "requests[0].grpc.method");
        assert_eq!(name.at.to_string(), "x.yaml:11:15");
        let reflected: Vec<&str> = s
            .reflected_methods()
            .iter()
            .map(|n| n.value.as_str())
            .collect();
        assert_eq!(reflected, ["quotes.v1.Quotes/GetQuote"]);
    }

    #[test]
    fn a_proto_resolves_the_method_when_the_scenario_is_read() {
        let grpc = format!(
            "      method: quotes.v1.Quotes/GetQuote\n      reflection: false\n      proto: {}",
            quotes_proto()
        );
        let s = parse("x.yaml", &scenario(&grpc, ""), &[]).expect("valid");
        let GrpcMethod::Resolved(resolved) = method(&s) else {
            panic!("a resolved method expected, got {:?}", method(&s));
        };
        assert_eq!(resolved.input().full_name(), "quotes.v1.QuoteRequest");
        assert!(s.reflected_methods().is_empty());
    }

    #[test]
    fn proto_and_reflection_are_one_or_the_other() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!(
                    "      method: quotes.v1.Quotes/GetQuote\n      reflection: true\n      proto: {}",
                    quotes_proto()
                ),
                "x.yaml:13:14: requests[0].grpc.proto: give proto or reflection: true, not both",
            ),
            (
                "      method: quotes.v1.Quotes/GetQuote".to_owned(),
                "x.yaml:11:7: requests[0].grpc.proto: required key is missing; give the .proto \
                 file that declares the method, or reflection: true to ask the server",
            ),
            (
                "      method: quotes.v1.Quotes/GetQuote\n      reflection: false".to_owned(),
                "x.yaml:11:7: requests[0].grpc.proto: required key is missing; give the .proto \
                 file that declares the method, or reflection: true to ask the server",
            ),
            (
                "      method: quotes.v1.Quotes/GetQuote\n      reflection: yes".to_owned(),
                "x.yaml:12:19: requests[0].grpc.reflection: expected true or false, got \"yes\"",
            ),
            (
                "      method: quotes.v1.Quotes.GetQuote\n      reflection: true".to_owned(),
                "x.yaml:11:15: requests[0].grpc.method: expected package.Service/Method, got \
                 \"quotes.v1.Quotes.GetQuote\"",
            ),
            (
                "      method: /GetQuote\n      reflection: true".to_owned(),
                "x.yaml:11:15: requests[0].grpc.method: expected package.Service/Method, got \
                 \"/GetQuote\"",
            ),
            (
                "      reflection: true".to_owned(),
                "x.yaml:11:7: requests[0].grpc.method: required key is missing",
            ),
            (
                "      method: quotes.v1.Quotes/GetQuote\n      reflection: true\n      import_paths: [protos]"
                    .to_owned(),
                "x.yaml:13:21: requests[0].grpc.import_paths: applies to proto only; with \
                 reflection: true the server describes the method",
            ),
        ];
        for (grpc, expected) in cases {
            assert_eq!(errors(&grpc, ""), expected, "{grpc}");
        }
    }

    #[test]
    fn a_method_the_proto_lacks_is_named_with_what_it_has() {
        let grpc = format!(
            "      method: quotes.v1.Quotes/GetQuot\n      proto: {}",
            quotes_proto()
        );
        let error = errors(&grpc, "");
        assert!(
            error.starts_with(
                "x.yaml:11:15: requests[0].grpc.method: quotes.v1.Quotes has no method \
                 \"GetQuot\"; it has: GetQuote"
            ),
            "{error}"
        );
    }

    #[test]
    fn reflection_is_refused_in_the_overhead_experiment() {
        let text = scenario(
            "      method: quotes.v1.Quotes/GetQuote\n      reflection: true",
            "overhead: {trials: 6}\n",
        )
        .replace(
            "  external: {target: \"http://127.0.0.1:9\"}",
            "  managed: {}",
        );
        let error = parse("x.yaml", &text, &[])
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains(
                "x.yaml:11:15: requests[0].grpc.method: reflection: true does not apply to the \
                 overhead experiment: give the method's proto"
            ),
            "{error}"
        );
    }
}
