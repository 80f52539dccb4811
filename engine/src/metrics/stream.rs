//! The streaming metrics of both services (docs/streaming.md): streams and WebSockets open, updates
//! sent and dropped, and the delivery latency of updates.
//!
//! The `symbol` label takes what clients subscribe to. Symbols are validated (at most 12 characters
//! of a small alphabet) but still countless, so each service keeps a series for the first
//! [`MAX_SYMBOL_SERIES`] symbols it sees and counts the rest under [`OTHER_SYMBOLS`]: a client
//! cycling through made-up symbols cannot grow the exposition without bound.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::latency_histogram;

/// The most distinct `symbol` label values a service exposes.
pub const MAX_SYMBOL_SERIES: usize = 1_000;
/// The `symbol` label of every symbol past the first [`MAX_SYMBOL_SERIES`].
pub const OTHER_SYMBOLS: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SymbolLabels {
    symbol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// A counter family by symbol, bounded to [`MAX_SYMBOL_SERIES`] series plus [`OTHER_SYMBOLS`].
#[derive(Debug)]
struct BySymbol {
    family: Family<SymbolLabels, Counter>,
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl BySymbol {
    fn new(max: usize) -> Self {
        BySymbol {
            family: Family::default(),
            seen: Mutex::new(HashSet::new()),
            max,
        }
    }

    /// The counter of `symbol`'s series; looked up once per stream and symbol, not per update.
    fn counter(&self, symbol: &str) -> Counter {
        // A poisoned lock only means another thread panicked mid-insert: the set is still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let label = if seen.contains(symbol) {
            symbol
        } else if seen.len() < self.max {
            seen.insert(symbol.to_owned());
            symbol
        } else {
            OTHER_SYMBOLS
        };
        self.family
            .get_or_create(&SymbolLabels {
                symbol: label.to_owned(),
            })
            .clone()
    }
}

/// Decrements its gauge when the stream or connection it counts ends.
#[derive(Debug)]
pub struct ActiveGuard(Gauge<i64, AtomicI64>);

impl ActiveGuard {
    fn new(gauge: &Gauge<i64, AtomicI64>) -> Self {
        gauge.inc();
        ActiveGuard(gauge.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The engine's `grpc_streams_active` and `stream_updates_sent_total{symbol}`.
#[derive(Debug)]
pub struct EngineStreamMetrics {
    active: Gauge<i64, AtomicI64>,
    updates_sent: BySymbol,
}

impl EngineStreamMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self::register_bounded(registry, MAX_SYMBOL_SERIES)
    }

    fn register_bounded(registry: &mut Registry, max_symbols: usize) -> Self {
        let metrics = EngineStreamMetrics {
            active: Gauge::default(),
            updates_sent: BySymbol::new(max_symbols),
        };
        registry.register(
            "grpc_streams_active",
            "Server streams open now",
            metrics.active.clone(),
        );
        registry.register(
            "stream_updates_sent",
            "Stream updates handed to gRPC, by symbol",
            metrics.updates_sent.family.clone(),
        );
        metrics
    }

    /// Counts a stream as open until the guard drops.
    pub fn opened(&self) -> ActiveGuard {
        ActiveGuard::new(&self.active)
    }

    /// The `stream_updates_sent_total` counter of `symbol`.
    pub fn updates_sent(&self, symbol: &str) -> Counter {
        self.updates_sent.counter(symbol)
    }
}

/// Why the gateway dropped an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The connection's send queue was full: its client reads slower than the stream sends.
    SlowClient,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::SlowClient => "slow_client",
        }
    }
}

/// The gateway's WebSocket metrics: `ws_connections_active`, `ws_messages_sent_total{symbol}`,
/// `ws_messages_dropped_total{reason}` and `ws_message_delivery_seconds`.
#[derive(Debug)]
pub struct WsMetrics {
    active: Gauge<i64, AtomicI64>,
    sent: BySymbol,
    /// Created at zero, so that a rate over it starts with the first drop.
    dropped_slow_client: Counter,
    delivery: Histogram,
}

impl WsMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self::register_bounded(registry, MAX_SYMBOL_SERIES)
    }

    fn register_bounded(registry: &mut Registry, max_symbols: usize) -> Self {
        let dropped = Family::<ReasonLabels, Counter>::default();
        let metrics = WsMetrics {
            active: Gauge::default(),
            sent: BySymbol::new(max_symbols),
            dropped_slow_client: dropped
                .get_or_create(&ReasonLabels {
                    reason: DropReason::SlowClient.label(),
                })
                .clone(),
            delivery: latency_histogram(),
        };
        registry.register(
            "ws_connections_active",
            "WebSocket connections open now",
            metrics.active.clone(),
        );
        registry.register(
            "ws_messages_sent",
            "Stream updates written to WebSockets, by symbol",
            metrics.sent.family.clone(),
        );
        registry.register(
            "ws_messages_dropped",
            "Stream updates dropped before a WebSocket could take them, by reason",
            dropped,
        );
        registry.register(
            "ws_message_delivery_seconds",
            "From an update's event time at the engine to its write to the WebSocket",
            metrics.delivery.clone(),
        );
        metrics
    }

    /// Counts a WebSocket as open until the guard drops.
    pub fn opened(&self) -> ActiveGuard {
        ActiveGuard::new(&self.active)
    }

    /// The `ws_messages_sent_total` counter of `symbol`.
    pub fn sent(&self, symbol: &str) -> Counter {
        self.sent.counter(symbol)
    }

    pub fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::SlowClient => self.dropped_slow_client.inc(),
        };
    }

    pub fn delivered(&self, seconds: f64) {
        self.delivery.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).expect("encodes");
        out
    }

    #[test]
    fn symbols_past_the_bound_share_one_series() {
        let mut registry = Registry::default();
        let metrics = EngineStreamMetrics::register_bounded(&mut registry, 2);
        for symbol in ["AAPL", "MSFT", "AAPL", "TSLA", "GOOG"] {
            metrics.updates_sent(symbol).inc();
        }
        let text = text(&registry);
        for line in [
            "stream_updates_sent_total{symbol=\"AAPL\"} 2",
            "stream_updates_sent_total{symbol=\"MSFT\"} 1",
            "stream_updates_sent_total{symbol=\"_other\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("TSLA") && !text.contains("GOOG"), "{text}");
    }

    #[test]
    fn within_the_bound_every_symbol_has_its_series() {
        let mut registry = Registry::default();
        let metrics = WsMetrics::register(&mut registry);
        let guard = metrics.opened();
        for i in 0..50 {
            metrics.sent(&format!("S{i}")).inc();
        }
        metrics.dropped(DropReason::SlowClient);
        metrics.delivered(0.002);
        let text = text(&registry);
        assert!(!text.contains(OTHER_SYMBOLS), "{text}");
        for line in [
            "ws_messages_sent_total{symbol=\"S49\"} 1",
            "ws_messages_dropped_total{reason=\"slow_client\"} 1",
            "ws_connections_active 1",
            "ws_message_delivery_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        drop(guard);
        assert!(text_has(&registry, "ws_connections_active 0"));
    }

    fn text_has(registry: &Registry, line: &str) -> bool {
        text(registry).lines().any(|l| l == line)
    }
}
