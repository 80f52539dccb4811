use super::Source;

/// Spacing of synthetic ticks.
pub const TICK_INTERVAL_MS: i64 = 1_000;

/// One trade in a synthetic series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    pub price: f64,
    pub volume: u32,
}

/// Fills `out` with the `window` ticks of `symbol` at `source` that end at `as_of_unix_ms`.
///
/// The series is a seeded random walk: the same arguments give the same ticks on every machine and
/// every version, which is what lets tests and scenarios assert on results.
pub fn load_ticks(
    source: Source,
    symbol: &str,
    window: u32,
    as_of_unix_ms: i64,
    out: &mut Vec<Tick>,
) {
    let mut series = Series::new(source, symbol, as_of_unix_ms);
    out.clear();
    out.reserve(window as usize);
    out.extend((0..window).map(|_| series.next_tick()));
}

/// The synthetic series of one symbol at one source, tick by tick: what [`load_ticks`] windows
/// and what a stream sends one tick per update.
pub struct Series {
    rng: SplitMix64,
    price: f64,
    step: f64,
}

impl Series {
    /// The series seeded by `source`, `symbol` and `as_of_unix_ms`.
    pub fn new(source: Source, symbol: &str, as_of_unix_ms: i64) -> Self {
        let seed = fnv1a(source.id().as_bytes())
            ^ fnv1a(symbol.as_bytes()).rotate_left(29)
            ^ (as_of_unix_ms as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Series {
            rng: SplitMix64(seed),
            // A price between 5 and 1000, fixed per (source, symbol) so series stay comparable
            // over time.
            price: 5.0 + (fnv1a(symbol.as_bytes()) % 99_500) as f64 / 100.0,
            step: 0.002 * source.volatility(),
        }
    }

    pub fn next_tick(&mut self) -> Tick {
        self.price *= 1.0 + self.step * (2.0 * self.rng.next_unit() - 1.0);
        // Round lots of 100 shares, 1 to 50 lots.
        let volume = 100 * (1 + (self.rng.next_u64() % 50) as u32);
        Tick {
            price: self.price,
            volume,
        }
    }
}

/// FNV-1a: a stable hash, unlike `std`'s, whose output may change between Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64 (Steele, Lea and Flood): tiny, fast and fully specified, so the series never
/// depends on a dependency's choice of algorithm.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(source: Source, symbol: &str, window: u32, as_of: i64) -> Vec<Tick> {
        let mut out = Vec::new();
        load_ticks(source, symbol, window, as_of, &mut out);
        out
    }

    #[test]
    fn series_is_deterministic_and_seeded_by_every_input() {
        let base = series(Source::YahooFinance, "AAPL", 500, 0);
        assert_eq!(base.len(), 500);
        assert_eq!(base, series(Source::YahooFinance, "AAPL", 500, 0));
        assert_ne!(base, series(Source::Polygon, "AAPL", 500, 0));
        assert_ne!(base, series(Source::YahooFinance, "MSFT", 500, 0));
        assert_ne!(base, series(Source::YahooFinance, "AAPL", 500, 1_000));
    }

    #[test]
    fn known_values_do_not_drift() {
        // Pinned so that a change to the generator, which would silently change every scenario's
        // expected results, fails here first.
        assert_eq!(fnv1a(b"AAPL"), 0x8910_6b8b_9f08_6ccb);
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn a_series_read_tick_by_tick_is_the_window() {
        let window = series(Source::IexCloud, "MSFT", 50, 7_000);
        let mut one_by_one = Series::new(Source::IexCloud, "MSFT", 7_000);
        let ticks: Vec<Tick> = (0..50).map(|_| one_by_one.next_tick()).collect();
        assert_eq!(ticks, window);
    }

    #[test]
    fn prices_stay_positive_and_volumes_are_round_lots() {
        for tick in series(Source::Polygon, "TSLA", 100_000, 0) {
            assert!(tick.price > 0.0 && tick.price.is_finite());
            assert!(tick.volume % 100 == 0 && (100..=5_000).contains(&tick.volume));
        }
    }
}
