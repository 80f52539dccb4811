use super::Tick;

/// What the engine computes over one symbol's window.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub vwap: f64,
    pub volume: u64,
    pub moving_averages: Vec<MovingAverage>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovingAverage {
    pub period: u32,
    pub sma: f64,
    pub ema: f64,
}

/// OHLC, VWAP and, per period, the simple and exponential moving averages of the closes.
///
/// Each EMA walks the whole window, so the cost is `ticks × (1 + periods)`. Callers guarantee a
/// non-empty window and periods within it (see [`super::MarketDataQuery`]).
pub fn analyse(ticks: &[Tick], periods: &[u32]) -> Analysis {
    let first = ticks.first().map_or(0.0, |t| t.price);
    let (mut high, mut low) = (first, first);
    let (mut notional, mut volume) = (0.0, 0u64);
    for tick in ticks {
        high = high.max(tick.price);
        low = low.min(tick.price);
        notional += tick.price * f64::from(tick.volume);
        volume += u64::from(tick.volume);
    }
    let moving_averages = periods
        .iter()
        .map(|&period| moving_average(ticks, period))
        .collect();
    Analysis {
        open: first,
        high,
        low,
        close: ticks.last().map_or(0.0, |t| t.price),
        vwap: if volume == 0 {
            0.0
        } else {
            notional / volume as f64
        },
        volume,
        moving_averages,
    }
}

fn moving_average(ticks: &[Tick], period: u32) -> MovingAverage {
    let n = (period as usize).clamp(1, ticks.len().max(1));
    let tail = &ticks[ticks.len().saturating_sub(n)..];
    let sma = tail.iter().map(|t| t.price).sum::<f64>() / n as f64;
    let alpha = 2.0 / (f64::from(period) + 1.0);
    let ema = ticks
        .iter()
        .skip(1)
        .fold(ticks.first().map_or(0.0, |t| t.price), |ema, t| {
            ema + alpha * (t.price - ema)
        });
    MovingAverage { period, sma, ema }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(prices: &[(f64, u32)]) -> Vec<Tick> {
        prices
            .iter()
            .map(|&(price, volume)| Tick { price, volume })
            .collect()
    }

    #[test]
    fn ohlc_and_vwap_by_hand() {
        let a = analyse(
            &ticks(&[(10.0, 100), (12.0, 300), (9.0, 100), (11.0, 500)]),
            &[],
        );
        assert_eq!((a.open, a.high, a.low, a.close), (10.0, 12.0, 9.0, 11.0));
        assert_eq!(a.volume, 1_000);
        // (1000 + 3600 + 900 + 5500) / 1000
        assert!((a.vwap - 11.0).abs() < 1e-12);
    }

    #[test]
    fn moving_averages_by_hand() {
        let a = analyse(
            &ticks(&[(1.0, 100), (2.0, 100), (3.0, 100), (4.0, 100)]),
            &[2, 4],
        );
        let [short, long] = a.moving_averages[..] else {
            panic!("two periods asked, got {:?}", a.moving_averages)
        };
        assert_eq!((short.period, short.sma), (2, 3.5));
        assert_eq!((long.period, long.sma), (4, 2.5));
        // EMA with alpha = 2/3 over 1, 2, 3, 4: 1 -> 5/3 -> 23/9 -> 95/27.
        assert!((short.ema - 95.0 / 27.0).abs() < 1e-12);
    }

    #[test]
    fn a_constant_series_averages_to_itself() {
        let a = analyse(&ticks(&[(7.5, 200); 50]), &[1, 10, 50]);
        assert_eq!(a.vwap, 7.5);
        for ma in a.moving_averages {
            assert_eq!((ma.sma, ma.ema), (7.5, 7.5));
        }
    }
}
