//! The client side of gRPC server reflection: a service's descriptors asked of the server itself,
//! so that its methods can be called without their `.proto` (as ghz and grpcurl do). Protocol v1
//! first, v1alpha when a server answers v1 with UNIMPLEMENTED: the two exchange the same messages
//! under different service names. One connection (plain or TLS, as the target's), bounded in time
//! and in descriptor bytes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use hyper::http::uri::PathAndQuery;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use prost::Message as _;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tonic::transport::{Channel, Endpoint};
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// The reflection services, newest first.
const PROTOCOLS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
/// The most of a server's error message that is kept: it ends up in a one-line error.
const MAX_MESSAGE_CHARS: usize = 200;

/// How long, and how much, one description may take.
#[derive(Clone, Copy, Debug)]
pub struct ReflectionLimits {
    /// Connecting and every exchange together.
    pub timeout: Duration,
    /// Serialized file descriptors in all: the service's file and everything it imports.
    pub max_bytes: usize,
}

impl Default for ReflectionLimits {
    fn default() -> Self {
        ReflectionLimits {
            timeout: Duration::from_secs(5),
            max_bytes: 16 << 20,
        }
    }
}

/// Why a server did not describe a service.
#[derive(Debug, thiserror::Error)]
pub enum ReflectionError {
    /// No connection (refused, TLS, HTTP/2).
    #[error("cannot connect")]
    Connect(#[source] tonic::transport::Error),
    /// Neither protocol is served.
    #[error(
        "it serves no reflection: grpc.reflection.v1.ServerReflection and \
         grpc.reflection.v1alpha.ServerReflection both answered UNIMPLEMENTED"
    )]
    Unsupported,
    /// The reflection call itself failed.
    #[error("the reflection call failed")]
    Call(#[source] tonic::Status),
    /// The whole exchange took longer than [`ReflectionLimits::timeout`].
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The server has no file declaring the service; `known` is what it lists.
    #[error("it has no service {service:?}; it lists: {}", known.join(", "))]
    UnknownService {
        /// The service asked for.
        service: String,
        /// The services the server lists.
        known: Vec<String>,
    },
    /// The server answered a request with an error.
    #[error("asked for {asked}, it answered {code:?}: {message}")]
    Refused {
        /// What was asked.
        asked: String,
        /// The gRPC code of its answer.
        code: tonic::Code,
        /// Its message, shortened.
        message: String,
    },
    /// More descriptor bytes than [`ReflectionLimits::max_bytes`].
    #[error("its descriptors exceed {0} bytes")]
    TooLarge(usize),
    /// The server closed the stream, or answered with something else than was asked.
    #[error("asked for {0}, it answered nothing of the kind")]
    NoAnswer(String),
    /// A file descriptor that is not one.
    #[error("a file descriptor it sent does not decode")]
    Decode(#[source] prost::DecodeError),
    /// Descriptors that do not form a whole (a type of a file it did not send).
    #[error("its descriptors do not fit together")]
    Descriptors(#[source] prost_reflect::DescriptorError),
}

/// How the reflection connection is made: plain HTTP/2 for `http://`, TLS with ALPN h2 for
/// `https://`, trusting what `tls` says.
fn connector(tls: rustls::ClientConfig) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http)
}

/// The descriptors of `service` (`package.Service`) and of every file its file imports, asked of
/// the server at `endpoint` (`tls` for `https://`).
/// The well-known types (`google.protobuf.*`) are known without asking.
pub async fn describe_service(
    endpoint: &Endpoint,
    tls: rustls::ClientConfig,
    service: &str,
    limits: ReflectionLimits,
) -> Result<DescriptorPool, ReflectionError> {
    let exchange = async {
        let channel = endpoint
            .connect_with_connector(connector(tls))
            .await
            .map_err(ReflectionError::Connect)?;
        let mut last = ReflectionError::Unsupported;
        for protocol in PROTOCOLS {
            match describe_on(channel.clone(), protocol, service, limits.max_bytes).await {
                Err(ReflectionError::Unsupported) => last = ReflectionError::Unsupported,
                done => return done,
            }
        }
        Err(last)
    };
    tokio::time::timeout(limits.timeout, exchange)
        .await
        .map_err(|_| ReflectionError::Timeout(limits.timeout))?
}

/// One reflection stream: requests are sent one at a time, each answered before the next.
struct Session {
    requests: mpsc::Sender<ServerReflectionRequest>,
    responses: Option<Streaming<ServerReflectionResponse>>,
    grpc: Grpc<Channel>,
    path: &'static str,
    /// Nothing answered yet: UNIMPLEMENTED then means the protocol is not served.
    first: bool,
}

impl Session {
    fn new(channel: Channel, path: &'static str, max_bytes: usize) -> (Self, StreamOfRequests) {
        let (requests, receiver) = mpsc::channel(4);
        let grpc = Grpc::new(channel).max_decoding_message_size(max_bytes);
        let session = Session {
            requests,
            responses: None,
            grpc,
            path,
            first: true,
        };
        (
            session,
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )
    }

    /// Sends `request` and reads its answer; the stream is opened with the first request.
    async fn ask(
        &mut self,
        request: MessageRequest,
        opening: &mut Option<StreamOfRequests>,
    ) -> Result<MessageResponse, ReflectionError> {
        let asked = describe(&request);
        let message = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        // The receiver lives as long as the call; a closed one means the call is over.
        if self.requests.send(message).await.is_err() {
            return Err(ReflectionError::NoAnswer(asked));
        }
        let first = self.first;
        let failed = |status: tonic::Status| {
            if first && status.code() == tonic::Code::Unimplemented {
                ReflectionError::Unsupported
            } else {
                ReflectionError::Call(status)
            }
        };
        if let Some(stream) = opening.take() {
            self.grpc.ready().await.map_err(ReflectionError::Connect)?;
            let codec = tonic_prost::ProstCodec::<
                ServerReflectionRequest,
                ServerReflectionResponse,
            >::default();
            let response = self
                .grpc
                .streaming(
                    tonic::Request::new(stream),
                    PathAndQuery::from_static(self.path),
                    codec,
                )
                .await
                .map_err(failed)?;
            self.responses = Some(response.into_inner());
        }
        let Some(responses) = self.responses.as_mut() else {
            return Err(ReflectionError::NoAnswer(asked));
        };
        let answer = responses.message().await.map_err(failed)?;
        self.first = false;
        answer
            .and_then(|a| a.message_response)
            .ok_or(ReflectionError::NoAnswer(asked))
    }
}

type StreamOfRequests = tokio_stream::wrappers::ReceiverStream<ServerReflectionRequest>;

/// What a request asks, for errors.
fn describe(request: &MessageRequest) -> String {
    match request {
        MessageRequest::FileContainingSymbol(symbol) => format!("the file declaring {symbol}"),
        MessageRequest::FileByFilename(name) => format!("the file {name}"),
        MessageRequest::ListServices(_) => "its services".to_owned(),
        _ => "something else".to_owned(),
    }
}

async fn describe_on(
    channel: Channel,
    path: &'static str,
    service: &str,
    max_bytes: usize,
) -> Result<DescriptorPool, ReflectionError> {
    let (mut session, stream) = Session::new(channel.clone(), path, max_bytes);
    let mut opening = Some(stream);
    let known = DescriptorPool::global();
    let mut files = Files::new(max_bytes);
    let mut queue = VecDeque::from([MessageRequest::FileContainingSymbol(service.to_owned())]);
    while let Some(request) = queue.pop_front() {
        let asked = describe(&request);
        let by_symbol = matches!(request, MessageRequest::FileContainingSymbol(_));
        let answer = match session.ask(request, &mut opening).await {
            // Some servers end the stream with the error, others answer it in the stream.
            Err(ReflectionError::Call(status))
                if by_symbol && status.code() == tonic::Code::NotFound =>
            {
                return Err(unknown(channel, path, service, max_bytes).await);
            }
            answer => answer?,
        };
        match answer {
            MessageResponse::FileDescriptorResponse(answer) => {
                for bytes in answer.file_descriptor_proto {
                    files.add(&bytes)?;
                }
                for name in files.missing(&known) {
                    queue.push_back(MessageRequest::FileByFilename(name));
                }
            }
            MessageResponse::ErrorResponse(error)
                if by_symbol && tonic::Code::from(error.error_code) == tonic::Code::NotFound =>
            {
                return Err(unknown(channel, path, service, max_bytes).await);
            }
            MessageResponse::ErrorResponse(error) => {
                return Err(ReflectionError::Refused {
                    asked,
                    code: tonic::Code::from(error.error_code),
                    message: error
                        .error_message
                        .chars()
                        .take(MAX_MESSAGE_CHARS)
                        .collect(),
                });
            }
            _ => return Err(ReflectionError::NoAnswer(asked)),
        }
    }
    let mut pool = known;
    pool.add_file_descriptor_protos(files.by_name.into_values())
        .map_err(ReflectionError::Descriptors)?;
    Ok(pool)
}

/// `service` is unknown: what the server lists instead, asked on a stream of its own (the
/// first may have ended with the error). A server that lists nothing lists nothing.
async fn unknown(
    channel: Channel,
    path: &'static str,
    service: &str,
    max_bytes: usize,
) -> ReflectionError {
    let (mut session, stream) = Session::new(channel, path, max_bytes);
    let listed = session
        .ask(
            MessageRequest::ListServices(String::new()),
            &mut Some(stream),
        )
        .await;
    let known = match listed {
        Ok(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        _ => Vec::new(),
    };
    ReflectionError::UnknownService {
        service: service.to_owned(),
        known,
    }
}

/// The file descriptors received so far, and what they cost.
struct Files {
    by_name: BTreeMap<String, FileDescriptorProto>,
    asked: BTreeSet<String>,
    bytes: usize,
    max_bytes: usize,
}

impl Files {
    fn new(max_bytes: usize) -> Self {
        Files {
            by_name: BTreeMap::new(),
            asked: BTreeSet::new(),
            bytes: 0,
            max_bytes,
        }
    }

    fn add(&mut self, bytes: &[u8]) -> Result<(), ReflectionError> {
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > self.max_bytes {
            return Err(ReflectionError::TooLarge(self.max_bytes));
        }
        let file = FileDescriptorProto::decode(bytes).map_err(ReflectionError::Decode)?;
        let name = file.name().to_owned();
        self.asked.insert(name.clone());
        self.by_name.entry(name).or_insert(file);
        Ok(())
    }

    /// Imports neither received, nor asked for, nor in `known`; each returned once.
    fn missing(&mut self, known: &DescriptorPool) -> Vec<String> {
        let wanted: BTreeSet<String> = self
            .by_name
            .values()
            .flat_map(|file| file.dependency.iter())
            .filter(|name| !self.asked.contains(*name) && known.get_file_by_name(name).is_none())
            .cloned()
            .collect();
        self.asked.extend(wanted.iter().cloned());
        wanted.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    /// `t/things.proto` (service `t.v1.Things`) importing `t/types.proto` and a well-known type,
    /// compiled, with every import.
    fn descriptor_set() -> prost_reflect::prost_types::FileDescriptorSet {
        let dir = std::env::temp_dir().join(format!("harness-reflection-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("t")).expect("proto directory");
        std::fs::write(
            dir.join("t/types.proto"),
            "syntax = \"proto3\";\npackage t.v1;\nmessage Ask { string what = 1; }\n",
        )
        .expect("types.proto");
        std::fs::write(
            dir.join("t/things.proto"),
            "syntax = \"proto3\";\npackage t.v1;\nimport \"t/types.proto\";\n\
             import \"google/protobuf/timestamp.proto\";\n\
             message Thing { google.protobuf.Timestamp at = 1; }\n\
             service Things {\n  rpc Get(Ask) returns (Thing);\n  \
             rpc Watch(Ask) returns (stream Thing);\n}\n",
        )
        .expect("things.proto");
        let set = protox::compile(["t/things.proto"], [&dir]).expect("compiles");
        let _ = std::fs::remove_dir_all(&dir);
        set
    }

    /// A gRPC server on loopback serving reflection v1, v1alpha, both or neither.
    async fn server(v1: bool, v1alpha: bool) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let builder = || {
            tonic_reflection::server::Builder::configure()
                .register_file_descriptor_set(descriptor_set())
        };
        let router = tonic::transport::Server::builder()
            .add_optional_service(v1.then(|| builder().build_v1().expect("v1")))
            .add_optional_service(v1alpha.then(|| builder().build_v1alpha().expect("v1alpha")));
        tokio::spawn(
            router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        addr
    }

    async fn describe(
        addr: SocketAddr,
        service: &str,
        limits: ReflectionLimits,
    ) -> Result<DescriptorPool, ReflectionError> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a URL");
        let tls = crate::tls::client_config(&crate::tls::TlsSpec::default()).expect("TLS");
        describe_service(&endpoint, tls, service, limits).await
    }

    #[tokio::test]
    async fn either_protocol_describes_a_service_with_its_imports() {
        for (v1, v1alpha) in [(true, false), (false, true), (true, true)] {
            let addr = server(v1, v1alpha).await;
            let pool = describe(addr, "t.v1.Things", ReflectionLimits::default())
                .await
                .unwrap_or_else(|e| panic!("v1 {v1}, v1alpha {v1alpha}: {e}"));
            let service = pool
                .get_service_by_name("t.v1.Things")
                .expect("the service");
            let get = service.methods().find(|m| m.name() == "Get").expect("Get");
            // From the imported file, which was asked for by name.
            assert_eq!(get.input().full_name(), "t.v1.Ask");
            assert_eq!(
                get.output()
                    .get_field_by_name("at")
                    .map(|f| f.kind())
                    .and_then(|k| { k.as_message().map(|m| m.full_name().to_owned()) }),
                Some("google.protobuf.Timestamp".to_owned())
            );
        }
    }

    #[tokio::test]
    async fn a_server_without_reflection_says_so() {
        let addr = server(false, false).await;
        let error = describe(addr, "t.v1.Things", ReflectionLimits::default())
            .await
            .expect_err("no reflection");
        assert!(matches!(error, ReflectionError::Unsupported), "{error:?}");
    }

    #[tokio::test]
    async fn an_unknown_service_is_named_with_what_the_server_lists() {
        let addr = server(true, false).await;
        let error = describe(addr, "t.v1.Thongs", ReflectionLimits::default())
            .await
            .expect_err("unknown");
        match error {
            ReflectionError::UnknownService { service, known } => {
                assert_eq!(service, "t.v1.Thongs");
                assert!(known.iter().any(|s| s == "t.v1.Things"), "{known:?}");
            }
            other => panic!("unknown service expected, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn descriptors_beyond_the_byte_limit_are_refused() {
        let addr = server(true, false).await;
        let limits = ReflectionLimits {
            max_bytes: 64,
            ..ReflectionLimits::default()
        };
        let error = describe(addr, "t.v1.Things", limits)
            .await
            .expect_err("too large");
        // The first answer alone exceeds the limit: the decoder refuses it before it is counted.
        assert!(
            matches!(&error, ReflectionError::Call(status) if status.code() == tonic::Code::OutOfRange),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        // Accepts, then says nothing.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let limits = ReflectionLimits {
            timeout: Duration::from_millis(300),
            ..ReflectionLimits::default()
        };
        let error = describe(addr, "t.v1.Things", limits)
            .await
            .expect_err("no answer");
        assert!(matches!(error, ReflectionError::Timeout(_)), "{error:?}");
        silent.abort();
    }

    fn file(name: &str, dependencies: &[&str]) -> Vec<u8> {
        FileDescriptorProto {
            name: Some(name.to_owned()),
            dependency: dependencies.iter().map(|d| (*d).to_owned()).collect(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn imports_are_asked_once_and_well_known_types_never() {
        let known = DescriptorPool::global();
        let mut files = Files::new(1 << 20);
        files
            .add(&file(
                "a.proto",
                &["b.proto", "google/protobuf/timestamp.proto"],
            ))
            .expect("decodes");
        assert_eq!(files.missing(&known), ["b.proto"]);
        assert!(files.missing(&known).is_empty(), "asked once");
        files
            .add(&file("b.proto", &["a.proto", "c.proto"]))
            .expect("decodes");
        assert_eq!(files.missing(&known), ["c.proto"]);
    }

    #[test]
    fn descriptors_past_the_limit_are_refused() {
        let one = file("a.proto", &[]);
        let mut files = Files::new(one.len() * 2);
        files.add(&one).expect("within the limit");
        files.add(&file("b.proto", &[])).expect("within the limit");
        assert!(matches!(
            files.add(&file("c.proto", &[])),
            Err(ReflectionError::TooLarge(_))
        ));
    }

    #[test]
    fn a_descriptor_that_is_not_one_is_refused() {
        let mut files = Files::new(1 << 20);
        assert!(matches!(
            files.add(&[0xff, 0xff, 0xff]),
            Err(ReflectionError::Decode(_))
        ));
    }
}
