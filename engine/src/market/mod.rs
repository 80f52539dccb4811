//! The engine's business logic: deterministic synthetic market data and the analytics computed over it.
//!
//! Nothing here touches the network or the clock, so that a request's result depends only on its
//! fields and its CPU cost grows linearly with `symbols × window × (1 + periods)`.

mod analytics;
mod query;
mod source;
mod ticks;

pub use analytics::{Analysis, MovingAverage, analyse};
pub use query::{InvalidArgument, Limits, MarketDataQuery, StreamQuery};
pub use source::Source;
pub use ticks::{Series, TICK_INTERVAL_MS, Tick, load_ticks};
