#!/usr/bin/env python3
"""A two-service quote system built on the OpenTelemetry Python SDK, for end-to-end tests of the
harness against a system this project did not write.

One program, two roles, run as two processes:

  front  HTTP/1.1 (POST /v2/quote, GET /healthz) and gRPC (quotes.v1.Quotes/GetQuote, with server
         reflection); every quote continues the caller's W3C trace context in a SERVER span and
         calls the back over gRPC in a CLIENT span.
  back   gRPC (quotes.v1.Prices/GetPrice, with server reflection) in a SERVER span.

Spans go by OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (nothing is exported when it is unset); each
process serves Prometheus metrics on its own port. Once every listener is bound, the process prints
one JSON line with the actual ports, e.g. {"http": 43121, "grpc": 43122, "metrics": 43123}, and
SIGTERM or SIGINT stops it after flushing its spans. Everything binds 127.0.0.1 only.

Fault switches (--fault NAME, repeatable) make it misbehave in ways the harness must catch; see
FAULTS below.
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

import quotes_pb2
import quotes_pb2_grpc

FAULTS = {
    "drop-context": "front: the call to back carries no trace context, so back starts a new trace",
    "count-twice": "front: http_requests_total counts every HTTP request twice",
    "reset-traced-half": "front: every second request carrying a traceparent is reset without an "
    "answer (HTTP: the TCP connection is reset; gRPC: the stream is cancelled, RST_STREAM)",
}

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 256
_OVERLOADED_BODY = b'{"error": "too many connections"}'
OVERLOADED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(_OVERLOADED_BODY), _OVERLOADED_BODY))
MAX_SYMBOL = 12
SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
BACK_TIMEOUT_S = 2.0
QUOTE_METHOD = "quotes.v1.Quotes/GetQuote"
PRICE_METHOD = "quotes.v1.Prices/GetPrice"


class Metrics:
    """The process's Prometheus metrics, in a registry of their own (no default collectors)."""

    def __init__(self):
        # `_created` series only add noise to a reconciliation of counts.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from reading an HTTP request to writing its answer.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled",
            "gRPC calls completed by this server, by method and status code.",
            ["grpc_method", "grpc_code"],
            registry=self.registry,
        )


def symbol_error(symbol):
    """Why `symbol` is not a valid ticker, or None."""
    if not isinstance(symbol, str) or not symbol:
        return "symbol must be a non-empty string"
    if len(symbol) > MAX_SYMBOL or not set(symbol) <= SYMBOL_CHARS:
        return f"symbol must be 1 to {MAX_SYMBOL} characters of A-Z, 0-9, '.' or '-'"
    return None


def price_of(symbol):
    """A stable made-up price, so that answers can be checked."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return round(1 + int.from_bytes(digest[:4], "big") % 100_000 / 100, 2)


def api_key_ok(given):
    """True when no key is configured (QUOTE_API_KEY unset or empty), or `given` equals it."""
    expected = os.environ.get("QUOTE_API_KEY", "")
    if not expected:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def trace_id_hex(span):
    return format(span.get_span_context().trace_id, "032x")


class EveryOther:
    """Thread-safe alternation: False, True, False, True, ..."""

    def __init__(self):
        self._lock = threading.Lock()
        self._n = 0

    def __call__(self):
        with self._lock:
            self._n += 1
            return self._n % 2 == 0


def handled(metrics, method):
    """Counts each call of a unary handler by its final status code."""

    def wrap(fn):
        def call(self, request, context):
            try:
                return fn(self, request, context)
            finally:
                code = context.code()
                if isinstance(code, grpc.StatusCode):
                    name = code.name
                elif sys.exc_info()[0] is not None:
                    name = "UNKNOWN"
                elif not context.is_active():
                    name = "CANCELLED"
                else:
                    name = "OK"
                metrics.grpc_handled.labels(method, name).inc()

        return call

    return wrap


# --- back -----------------------------------------------------------------------------------


def make_prices_servicer(metrics, tracer):
    class Prices(quotes_pb2_grpc.PricesServicer):
        @handled(metrics, PRICE_METHOD)
        def GetPrice(self, request, context):
            parent = propagate.extract(dict(context.invocation_metadata()))
            with tracer.start_as_current_span(
                PRICE_METHOD, context=parent, kind=SpanKind.SERVER,
                attributes=rpc_attributes("quotes.v1.Prices", "GetPrice"),
            ) as span:
                problem = symbol_error(request.symbol)
                if problem:
                    span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.INVALID_ARGUMENT.value[0])
                    span.set_status(Status(StatusCode.ERROR, problem))
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
                span.set_attribute("rpc.grpc.status_code", 0)
                return quotes_pb2.QuoteReply(symbol=request.symbol, price=price_of(request.symbol))

    return Prices()


def rpc_attributes(service, method):
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


# --- front ----------------------------------------------------------------------------------


class BackError(Exception):
    """The back did not answer a price."""


class Front:
    """What both front listeners share: the back client, the tracer, metrics and faults."""

    def __init__(self, back_addr, metrics, tracer, faults):
        self.metrics = metrics
        self.tracer = tracer
        self.faults = faults
        self.channel = grpc.insecure_channel(back_addr)
        self.prices = quotes_pb2_grpc.PricesStub(self.channel)
        self.reset_http = EveryOther()
        self.reset_grpc = EveryOther()

    def price(self, symbol):
        """Asks the back, in a CLIENT span that is the current span's child."""
        with self.tracer.start_as_current_span(
            PRICE_METHOD, kind=SpanKind.CLIENT,
            attributes=rpc_attributes("quotes.v1.Prices", "GetPrice"),
        ) as span:
            carrier = {}
            if "drop-context" not in self.faults:
                propagate.inject(carrier)
            try:
                reply = self.prices.GetPrice(
                    quotes_pb2.QuoteRequest(symbol=symbol),
                    timeout=BACK_TIMEOUT_S,
                    metadata=tuple(carrier.items()),
                )
            except grpc.RpcError as err:
                span.set_attribute("rpc.grpc.status_code", err.code().value[0])
                span.set_status(Status(StatusCode.ERROR, err.code().name))
                raise BackError(f"back answered {err.code().name}") from err
            span.set_attribute("rpc.grpc.status_code", 0)
            return reply.price

    def should_reset(self, carrier, every_other):
        """For reset-traced-half: True on every second request that carries a traceparent (HTTP
        and gRPC alternate separately)."""
        return "reset-traced-half" in self.faults and "traceparent" in carrier and every_other()


def make_quotes_servicer(front):
    class Quotes(quotes_pb2_grpc.QuotesServicer):
        @handled(front.metrics, QUOTE_METHOD)
        def GetQuote(self, request, context):
            metadata = dict(context.invocation_metadata())
            if front.should_reset(metadata, front.reset_grpc):
                # grpcio offers no raw stream reset to a handler; cancelling the call makes the
                # server send RST_STREAM (CANCEL), which the client sees as CANCELLED.
                context.cancel()
                return quotes_pb2.QuoteReply()
            parent = propagate.extract(metadata)
            with front.tracer.start_as_current_span(
                QUOTE_METHOD, context=parent, kind=SpanKind.SERVER,
                attributes=rpc_attributes("quotes.v1.Quotes", "GetQuote"),
            ) as span:
                context.send_initial_metadata((("x-trace-id", trace_id_hex(span)),))
                code, message, reply = self._answer(request, metadata)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code != grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, message))
                    context.abort(code, message)
                return reply

        def _answer(self, request, metadata):
            if not api_key_ok(metadata.get("x-api-key")):
                return grpc.StatusCode.UNAUTHENTICATED, "missing or wrong x-api-key", None
            problem = symbol_error(request.symbol)
            if problem:
                return grpc.StatusCode.INVALID_ARGUMENT, problem, None
            try:
                price = front.price(request.symbol)
            except BackError as err:
                return grpc.StatusCode.UNAVAILABLE, str(err), None
            return grpc.StatusCode.OK, "", quotes_pb2.QuoteReply(symbol=request.symbol, price=price)

    return Quotes()


def route_of(path):
    """A bounded set of route labels, whatever paths clients send."""
    path = path.split("?", 1)[0]
    return path if path in ("/v2/quote", "/healthz") else "other"


def make_http_handler(front):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self):
            return "quote-front"
        # Idle or slow clients lose their connection instead of holding a thread.
        timeout = 30

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def _serve(self, method):
            started = time.perf_counter()
            route = route_of(self.path)
            carrier = {k.lower(): v for k, v in self.headers.items()}
            if route == "/v2/quote" and front.should_reset(carrier, front.reset_http):
                self._reset()
                return
            if route == "/v2/quote" and method == "POST":
                status = self._quote(carrier)
            elif route == "/healthz" and method == "GET":
                status = self._send(200, {"status": "ok"})
            elif route == "other":
                status = self._send(404, {"error": "not found"})
            else:
                status = self._send(405, {"error": "method not allowed"})
            times = 2 if "count-twice" in front.faults else 1
            for _ in range(times):
                front.metrics.http_requests.labels(method, route, str(status)).inc()
            front.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)

        def _quote(self, carrier):
            parent = propagate.extract(carrier)
            with front.tracer.start_as_current_span(
                "POST /v2/quote", context=parent, kind=SpanKind.SERVER,
                attributes={"http.request.method": "POST", "http.route": "/v2/quote",
                            "url.path": "/v2/quote"},
            ) as span:
                trace_id = trace_id_hex(span)
                status, body = self._quote_answer(carrier)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return self._send(status, body, trace_id)

        def _quote_answer(self, carrier):
            body, problem = self._read_body()
            if problem:
                return problem
            if not api_key_ok(carrier.get("x-api-key")):
                return 401, {"error": "missing or wrong x-api-key"}
            try:
                request = json.loads(body)
            except (ValueError, UnicodeDecodeError) as err:
                return 400, {"error": f"body is not JSON: {err}"}
            symbol = request.get("symbol") if isinstance(request, dict) else None
            problem = symbol_error(symbol)
            if problem:
                return 400, {"error": problem}
            try:
                price = front.price(symbol)
            except BackError as err:
                return 502, {"error": str(err)}
            return 200, {"symbol": symbol, "price": price}

        def _read_body(self):
            """The body, bounded; or (None, (status, answer)) when it cannot be read."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
                return None, (411, {"error": "send a Content-Length, not a chunked body"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self.close_connection = True
                return None, (400, {"error": "Content-Length is not a number"})
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                return None, (413, {"error": f"body over {MAX_BODY} bytes"})
            return self.rfile.read(length), None

        def _send(self, status, body, trace_id=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if trace_id:
                self.send_header("X-Trace-ID", trace_id)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            return status

        def _reset(self):
            """Closes the connection with a TCP reset (SO_LINGER 0), answering nothing."""
            self.close_connection = True
            try:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

    return Handler


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, up to MAX_CONNECTIONS; beyond that a connection gets 503 and is
    closed, so that a flood cannot exhaust the process."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(OVERLOADED)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        # The base class prints a traceback, for resets that clients cause too.
        pass


# --- process --------------------------------------------------------------------------------


def tracer_provider(service_name):
    """The SDK provider exporting by OTLP/gRPC, or one that exports nothing without an endpoint.

    The sampler and OTEL_SDK_DISABLED come from the environment, as the SDK reads them."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        delay = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "200"))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=delay))
    return provider


def grpc_server(servicer_adders, service_names):
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        # Beyond this many calls at once, RESOURCE_EXHAUSTED rather than an unbounded queue.
        maximum_concurrent_rpcs=MAX_CONNECTIONS,
        options=[("grpc.max_receive_message_length", MAX_BODY), ("grpc.so_reuseport", 0)],
    )
    for add in servicer_adders:
        add(server)
    add_reflection(server, service_names)
    return server


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def add_reflection(server, service_names):
    """Server reflection, both v1alpha (what grpcio-reflection ships) and v1: the v1 protocol is
    v1alpha's under another package name, the same messages on the wire, so one servicer serves
    both."""
    servicer = reflection.ReflectionServicer(
        (*service_names, reflection.SERVICE_NAME, REFLECTION_V1))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),))


def bind_grpc(server, port):
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        raise SystemExit(f"quote_service: cannot bind gRPC on 127.0.0.1:{port}")
    return bound


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["front", "back"])
    parser.add_argument("--http-port", type=int, default=0, help="front only; 0 picks a free port")
    parser.add_argument("--grpc-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--metrics-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--back", metavar="ADDR", help="front only: the back's HOST:PORT")
    parser.add_argument("--service-name", help="default quote-front or quote-back")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS),
                        help="misbehave on purpose (repeatable): " +
                        "; ".join(f"{k}: {v}" for k, v in FAULTS.items()))
    args = parser.parse_args(argv)
    if args.role == "front" and not args.back:
        parser.error("front needs --back HOST:PORT")
    return args


def main(argv=None):
    args = parse_args(argv)
    provider = tracer_provider(args.service_name or f"quote-{args.role}")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("quote_service")
    metrics = Metrics()
    faults = frozenset(args.fault)

    metrics_server, _ = start_http_server(args.metrics_port, addr="127.0.0.1",
                                          registry=metrics.registry)
    ports = {}
    http_server = None
    if args.role == "back":
        servicer = make_prices_servicer(metrics, tracer)
        server = grpc_server(
            [lambda s: quotes_pb2_grpc.add_PricesServicer_to_server(servicer, s)],
            [quotes_pb2.DESCRIPTOR.services_by_name["Prices"].full_name])
    else:
        front = Front(args.back, metrics, tracer, faults)
        servicer = make_quotes_servicer(front)
        server = grpc_server(
            [lambda s: quotes_pb2_grpc.add_QuotesServicer_to_server(servicer, s)],
            [quotes_pb2.DESCRIPTOR.services_by_name["Quotes"].full_name])
        http_server = BoundedHTTPServer(("127.0.0.1", args.http_port), make_http_handler(front))
        ports["http"] = http_server.server_address[1]
        threading.Thread(target=http_server.serve_forever, name="http", daemon=True).start()
    ports["grpc"] = bind_grpc(server, args.grpc_port)
    server.start()
    ports["metrics"] = metrics_server.server_port

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps(ports), flush=True)
    while not stop.wait(0.5):
        pass

    server.stop(grace=1).wait()
    if http_server is not None:
        http_server.shutdown()
    provider.shutdown()
    metrics_server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
