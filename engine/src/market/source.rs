/// A data source the engine can serve. Each one gives its series a different character, so that the
/// same symbol differs by source as it would with real vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    YahooFinance,
    AlphaVantage,
    Polygon,
    IexCloud,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::YahooFinance,
        Source::AlphaVantage,
        Source::Polygon,
        Source::IexCloud,
    ];

    /// The identifier clients send as `source_id`.
    pub fn id(self) -> &'static str {
        match self {
            Source::YahooFinance => "yahoo_finance",
            Source::AlphaVantage => "alpha_vantage",
            Source::Polygon => "polygon",
            Source::IexCloud => "iex_cloud",
        }
    }

    pub fn from_id(id: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Relative size of a tick's price move.
    pub(crate) fn volatility(self) -> f64 {
        match self {
            Source::YahooFinance => 1.0,
            Source::AlphaVantage => 0.8,
            Source::Polygon => 1.3,
            Source::IexCloud => 0.6,
        }
    }

    /// Half the quoted bid/ask spread, as a fraction of the price.
    pub(crate) fn half_spread(self) -> f64 {
        match self {
            Source::YahooFinance => 0.0002,
            Source::AlphaVantage => 0.0003,
            Source::Polygon => 0.0001,
            Source::IexCloud => 0.00025,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for source in Source::ALL {
            assert_eq!(Source::from_id(source.id()), Some(source));
        }
        assert_eq!(Source::from_id("bloomberg"), None);
        assert_eq!(Source::from_id("YAHOO_FINANCE"), None);
    }
}
