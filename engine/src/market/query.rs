use super::Source;
use crate::proto::{FetchMarketDataRequest, StreamMarketDataRequest};

/// Close of the reference session (2026-01-02 21:00 UTC), used when a request gives no `as_of`.
pub const REFERENCE_AS_OF_UNIX_MS: i64 = 1_767_387_600_000;
const DEFAULT_WINDOW: u32 = 1_000;
const DEFAULT_MA_PERIODS: [u32; 2] = [5, 20];
const MAX_SYMBOL_LEN: usize = 12;
const DEFAULT_INTERVAL_MS: u32 = 1_000;
/// Bounds on a stream's interval: faster would be a busy loop per stream, slower a stream that
/// looks dead.
const MIN_INTERVAL_MS: u32 = 10;
const MAX_INTERVAL_MS: u32 = 60_000;

/// Bounds on what one request may ask, so that no request can take unbounded CPU or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_symbols: usize,
    pub max_window: u32,
    /// Bound on `symbols × window`, the ticks held in memory at once.
    pub max_total_ticks: u64,
    pub max_ma_periods: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_symbols: 50,
            max_window: 100_000,
            max_total_ticks: 1_000_000,
            max_ma_periods: 8,
        }
    }
}

/// A request that passed validation: every field known good, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketDataQuery {
    pub symbols: Vec<String>,
    pub source: Source,
    pub window: u32,
    pub ma_periods: Vec<u32>,
    pub as_of_unix_ms: i64,
}

/// A field that fails validation; maps to gRPC `INVALID_ARGUMENT` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidArgument {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidArgument {
    InvalidArgument {
        field: field.into(),
        message: message.into(),
    }
}

impl MarketDataQuery {
    pub fn from_request(
        request: &FetchMarketDataRequest,
        limits: &Limits,
    ) -> Result<Self, InvalidArgument> {
        let source = parse_source(&request.source_id)?;
        let symbols = parse_symbols(&request.symbols, limits)?;
        let window = match request.window {
            0 => DEFAULT_WINDOW,
            w if w > limits.max_window => {
                return Err(invalid(
                    "window",
                    format!("at most {} ticks, got {w}", limits.max_window),
                ));
            }
            w => w,
        };
        let total = symbols.len() as u64 * u64::from(window);
        if total > limits.max_total_ticks {
            return Err(invalid(
                "window",
                format!(
                    "{} symbols × {window} ticks = {total} ticks, more than the limit of {}",
                    symbols.len(),
                    limits.max_total_ticks
                ),
            ));
        }
        let ma_periods = parse_periods(&request.ma_periods, window, limits)?;
        let as_of_unix_ms = match request.as_of_unix_ms {
            0 => REFERENCE_AS_OF_UNIX_MS,
            t if t < 0 => {
                return Err(invalid(
                    "as_of_unix_ms",
                    format!("must not be negative, got {t}"),
                ));
            }
            t => t,
        };
        Ok(MarketDataQuery {
            symbols,
            source,
            window,
            ma_periods,
            as_of_unix_ms,
        })
    }

    /// Ticks this query loads: what its CPU cost is proportional to.
    pub fn total_ticks(&self) -> u64 {
        self.symbols.len() as u64 * u64::from(self.window)
    }
}

/// A stream request that passed validation: symbols and source as for a fetch, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamQuery {
    pub symbols: Vec<String>,
    pub source: Source,
    pub interval: std::time::Duration,
    /// Updates per symbol before the stream ends; `None`: until the caller cancels.
    pub max_updates: Option<u32>,
}

impl StreamQuery {
    /// Validates as [`MarketDataQuery::from_request`] does for the fields they share.
    pub fn from_request(
        request: &StreamMarketDataRequest,
        limits: &Limits,
    ) -> Result<Self, InvalidArgument> {
        let source = parse_source(&request.source_id)?;
        let symbols = parse_symbols(&request.symbols, limits)?;
        let interval_ms = match request.interval_ms {
            0 => DEFAULT_INTERVAL_MS,
            ms if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) => {
                return Err(invalid(
                    "interval_ms",
                    format!("must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}, got {ms}"),
                ));
            }
            ms => ms,
        };
        Ok(StreamQuery {
            symbols,
            source,
            interval: std::time::Duration::from_millis(u64::from(interval_ms)),
            max_updates: (request.max_updates > 0).then_some(request.max_updates),
        })
    }
}

fn parse_source(id: &str) -> Result<Source, InvalidArgument> {
    if id.is_empty() {
        return Err(invalid("source_id", "is required"));
    }
    Source::from_id(id).ok_or_else(|| {
        let known: Vec<_> = Source::ALL.iter().map(|s| s.id()).collect();
        invalid(
            "source_id",
            format!(
                "unknown source {}; known sources: {}",
                quoted(id),
                known.join(", ")
            ),
        )
    })
}

fn parse_symbols(symbols: &[String], limits: &Limits) -> Result<Vec<String>, InvalidArgument> {
    if symbols.is_empty() {
        return Err(invalid("symbols", "at least one symbol is required"));
    }
    if symbols.len() > limits.max_symbols {
        return Err(invalid(
            "symbols",
            format!(
                "at most {} symbols are allowed, got {}",
                limits.max_symbols,
                symbols.len()
            ),
        ));
    }
    symbols
        .iter()
        .enumerate()
        .map(|(i, symbol)| {
            parse_symbol(symbol).map_err(|message| invalid(format!("symbols[{i}]"), message))
        })
        .collect()
}

/// Symbols are normalised to upper case: `aapl` and `AAPL` are the same instrument.
fn parse_symbol(symbol: &str) -> Result<String, String> {
    if symbol.is_empty() {
        return Err("must not be empty".into());
    }
    if symbol.chars().count() > MAX_SYMBOL_LEN {
        return Err(format!(
            "{} is longer than {MAX_SYMBOL_LEN} characters",
            quoted(symbol)
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '=');
    if let Some(bad) = symbol.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "{symbol:?} contains {bad:?}; allowed are A-Z, 0-9, '.', '-', '^' and '='"
        ));
    }
    Ok(symbol.to_ascii_uppercase())
}

/// `text` quoted for an error message, cut to a few characters: messages travel in gRPC trailers,
/// logs and response bodies, none of which should carry a client's megabytes back.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 16;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}… ({} characters)", &text[..cut], text.chars().count()),
        None => format!("{text:?}"),
    }
}

fn parse_periods(
    periods: &[u32],
    window: u32,
    limits: &Limits,
) -> Result<Vec<u32>, InvalidArgument> {
    if periods.is_empty() {
        let mut periods: Vec<u32> = DEFAULT_MA_PERIODS.iter().map(|&p| p.min(window)).collect();
        periods.dedup();
        return Ok(periods);
    }
    if periods.len() > limits.max_ma_periods {
        return Err(invalid(
            "ma_periods",
            format!(
                "at most {} periods are allowed, got {}",
                limits.max_ma_periods,
                periods.len()
            ),
        ));
    }
    for (i, &period) in periods.iter().enumerate() {
        if period == 0 || period > window {
            return Err(invalid(
                format!("ma_periods[{i}]"),
                format!("must be between 1 and the window ({window}), got {period}"),
            ));
        }
    }
    Ok(periods.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(symbols: &[&str], source: &str) -> FetchMarketDataRequest {
        FetchMarketDataRequest {
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            source_id: source.into(),
            ..Default::default()
        }
    }

    fn error(request: FetchMarketDataRequest) -> String {
        MarketDataQuery::from_request(&request, &Limits::default())
            .expect_err("request should be rejected")
            .to_string()
    }

    #[test]
    fn defaults_are_filled_in() {
        let query = MarketDataQuery::from_request(
            &request(&["aapl", "BRK.B"], "yahoo_finance"),
            &Limits::default(),
        )
        .expect("valid request");
        assert_eq!(query.symbols, ["AAPL", "BRK.B"]);
        assert_eq!(query.source, Source::YahooFinance);
        assert_eq!(query.window, 1_000);
        assert_eq!(query.ma_periods, [5, 20]);
        assert_eq!(query.as_of_unix_ms, REFERENCE_AS_OF_UNIX_MS);
        assert_eq!(query.total_ticks(), 2_000);
    }

    #[test]
    fn default_periods_shrink_to_a_small_window() {
        let mut req = request(&["AAPL"], "polygon");
        req.window = 10;
        let query = MarketDataQuery::from_request(&req, &Limits::default()).expect("valid");
        assert_eq!(query.ma_periods, [5, 10]);
        req.window = 3;
        let query = MarketDataQuery::from_request(&req, &Limits::default()).expect("valid");
        assert_eq!(query.ma_periods, [3]);
    }

    #[test]
    fn long_input_is_not_echoed_whole() {
        let long = "X".repeat(10_000);
        let message = error(request(&[&long], "polygon"));
        assert_eq!(
            message,
            "symbols[0]: \"XXXXXXXXXXXXXXXX\"… (10000 characters) is longer than 12 characters"
        );
        let message = error(request(&["AAPL"], &long));
        assert!(
            message
                .starts_with("source_id: unknown source \"XXXXXXXXXXXXXXXX\"… (10000 characters);"),
            "{message}"
        );
    }

    #[test]
    fn a_stream_request_is_validated_as_a_fetch_is() {
        let stream = |symbols: &[&str], source: &str, interval_ms, max_updates| {
            StreamQuery::from_request(
                &StreamMarketDataRequest {
                    symbols: symbols.iter().map(|s| s.to_string()).collect(),
                    source_id: source.into(),
                    interval_ms,
                    max_updates,
                },
                &Limits::default(),
            )
        };
        let query = stream(&["aapl", "V"], "polygon", 0, 0).expect("valid");
        assert_eq!(query.symbols, ["AAPL", "V"]);
        assert_eq!(query.interval, std::time::Duration::from_secs(1));
        assert_eq!(query.max_updates, None);
        let query = stream(&["V"], "polygon", 10, 3).expect("valid");
        assert_eq!(
            (query.interval, query.max_updates),
            (std::time::Duration::from_millis(10), Some(3))
        );
        assert!(stream(&["V"], "polygon", 60_000, 0).is_ok());
        for (symbols, source, interval, expected) in [
            (
                &["V"][..],
                "polygon",
                9,
                "interval_ms: must be between 10 and 60000, got 9",
            ),
            (
                &["V"],
                "polygon",
                60_001,
                "interval_ms: must be between 10 and 60000, got 60001",
            ),
            (
                &[],
                "polygon",
                100,
                "symbols: at least one symbol is required",
            ),
            (
                &["A B"],
                "polygon",
                100,
                "symbols[0]: \"A B\" contains ' '; allowed are A-Z, 0-9, '.', '-', '^' and '='",
            ),
            (&["V"], "", 100, "source_id: is required"),
        ] {
            let error = stream(symbols, source, interval, 0).expect_err("refused");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let long = "A".repeat(13);
        let many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases: Vec<(FetchMarketDataRequest, &str)> = vec![
            (request(&["AAPL"], ""), "source_id: is required"),
            (
                request(&["AAPL"], "bloomberg"),
                "source_id: unknown source \"bloomberg\"; known sources: yahoo_finance, alpha_vantage, polygon, iex_cloud",
            ),
            (
                request(&[], "polygon"),
                "symbols: at least one symbol is required",
            ),
            (
                request(&many, "polygon"),
                "symbols: at most 50 symbols are allowed, got 51",
            ),
            (
                request(&["AAPL", ""], "polygon"),
                "symbols[1]: must not be empty",
            ),
            (
                request(&[&long], "polygon"),
                "symbols[0]: \"AAAAAAAAAAAAA\" is longer than 12 characters",
            ),
            (
                request(&["AA PL"], "polygon"),
                "symbols[0]: \"AA PL\" contains ' '; allowed are A-Z, 0-9, '.', '-', '^' and '='",
            ),
            (
                FetchMarketDataRequest {
                    window: 100_001,
                    ..request(&["AAPL"], "polygon")
                },
                "window: at most 100000 ticks, got 100001",
            ),
            (
                FetchMarketDataRequest {
                    window: 100_000,
                    ..request(&many[..11], "polygon")
                },
                "window: 11 symbols × 100000 ticks = 1100000 ticks, more than the limit of 1000000",
            ),
            (
                FetchMarketDataRequest {
                    ma_periods: vec![5; 9],
                    ..request(&["AAPL"], "polygon")
                },
                "ma_periods: at most 8 periods are allowed, got 9",
            ),
            (
                FetchMarketDataRequest {
                    window: 50,
                    ma_periods: vec![5, 51],
                    ..request(&["AAPL"], "polygon")
                },
                "ma_periods[1]: must be between 1 and the window (50), got 51",
            ),
            (
                FetchMarketDataRequest {
                    ma_periods: vec![0],
                    ..request(&["AAPL"], "polygon")
                },
                "ma_periods[0]: must be between 1 and the window (1000), got 0",
            ),
            (
                FetchMarketDataRequest {
                    as_of_unix_ms: -1,
                    ..request(&["AAPL"], "polygon")
                },
                "as_of_unix_ms: must not be negative, got -1",
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(error(req), expected);
        }
    }
}
