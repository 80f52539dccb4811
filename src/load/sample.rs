//! Trace sampling at the source: which requests carry the harness's own W3C `traceparent`, so that
//! their traces can be looked up afterwards by an id the harness chose. The load core only stamps
//! and records; what the traces must look like is the verifier's business.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use super::outcome::Outcome;

/// The context a sampled request is sent with: a fresh trace, with the harness's own span as the
/// parent of whatever the system creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The fresh trace's id.
    pub trace_id: u128,
    /// The harness's own span, which the system's first span names as its parent.
    pub parent_span_id: u64,
}

impl TraceParent {
    /// Random non-zero ids (all-zero ids are invalid in W3C trace context).
    pub fn random(rng: &mut impl Rng) -> Self {
        TraceParent {
            trace_id: rng.random_range(1..=u128::MAX),
            parent_span_id: rng.random_range(1..=u64::MAX),
        }
    }

    /// The `traceparent` header value, version 00, with the sampled flag set.
    pub fn header(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.parent_span_id)
    }
}

/// Which share of one kind's requests is sampled: `ratio` of them, evenly spread, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// In `[0, 1]`.
    pub ratio: f64,
    /// At most this many of the kind's requests are sampled.
    pub max: u64,
}

impl Sampling {
    /// No request sampled.
    pub const NONE: Sampling = Sampling { ratio: 0.0, max: 0 };
}

/// Receives each sampled request when it completes, so that its trace can be looked for while the
/// load goes on.
pub type SampleSink = tokio::sync::mpsc::UnboundedSender<SampledRequest>;

/// Called with each sampled trace id just before its request leaves, so that a trace store can
/// start keeping that trace's spans.
pub type Announce = Arc<dyn Fn(u128) + Send + Sync>;

/// Decides, request by request, which ones are sampled. Deterministic: the `n`-th request of a kind
/// is sampled when `floor(n * ratio)` steps up, so a ratio of 10% samples exactly every tenth.
#[derive(Debug)]
pub(crate) struct Sampler {
    kinds: Vec<KindSampler>,
}

#[derive(Debug)]
struct KindSampler {
    sampling: Sampling,
    seen: u64,
    sampled: u64,
}

impl Sampler {
    pub(crate) fn new(per_kind: impl IntoIterator<Item = Sampling>) -> Self {
        Sampler {
            kinds: per_kind
                .into_iter()
                .map(|sampling| KindSampler {
                    sampling,
                    seen: 0,
                    sampled: 0,
                })
                .collect(),
        }
    }

    /// Whether the next request of `kind` is sampled. Kinds without an entry never are.
    pub(crate) fn decide(&mut self, kind: usize) -> bool {
        let Some(k) = self.kinds.get_mut(kind) else {
            return false;
        };
        // In parts per million, in integers: float products would round 29% of 100 down to 28.
        let ppm = (k.sampling.ratio.clamp(0.0, 1.0) * 1e6).round() as u128;
        let before = u128::from(k.seen) * ppm / 1_000_000;
        k.seen += 1;
        let after = u128::from(k.seen) * ppm / 1_000_000;
        let take = after > before && k.sampled < k.sampling.max;
        if take {
            k.sampled += 1;
        }
        take
    }
}

/// A sampled request and how it ended: what the verifier needs to find and judge its trace.
#[derive(Clone, Debug)]
pub struct SampledRequest {
    /// Index of the request kind in the plan.
    pub kind: usize,
    /// The trace context it was sent with.
    pub trace: TraceParent,
    /// When the schedule wanted it sent.
    pub intended: Instant,
    /// When it left.
    pub sent: Instant,
    /// When it ended.
    pub finished: Instant,
    /// How it ended.
    pub outcome: Outcome,
    /// The trace id response header (HTTP) or metadata (gRPC), as received.
    pub trace_header: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_ratio_samples_evenly_and_exactly() {
        let mut sampler = Sampler::new([Sampling {
            ratio: 0.1,
            max: u64::MAX,
        }]);
        let picks: Vec<usize> = (0..100).filter(|_| sampler.decide(0)).collect();
        assert_eq!(picks.len(), 10);
        assert!(picks.windows(2).all(|w| w[1] - w[0] == 10), "{picks:?}");
        for percent in 1..=100u32 {
            let mut sampler = Sampler::new([Sampling {
                ratio: f64::from(percent) / 100.0,
                max: u64::MAX,
            }]);
            let taken = (0..100).filter(|_| sampler.decide(0)).count();
            assert_eq!(taken, percent as usize, "{percent}%");
        }
    }

    #[test]
    fn the_cap_and_unknown_kinds_limit_sampling() {
        let mut sampler = Sampler::new([Sampling { ratio: 1.0, max: 3 }, Sampling::NONE]);
        assert_eq!((0..10).filter(|_| sampler.decide(0)).count(), 3);
        assert_eq!((0..10).filter(|_| sampler.decide(1)).count(), 0);
        assert!(!sampler.decide(7));
    }

    #[test]
    fn the_header_is_w3c_version_00_and_sampled() {
        let parent = TraceParent {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            parent_span_id: 0x00f0_67aa_0ba9_02b7,
        };
        assert_eq!(
            parent.header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let random = TraceParent::random(&mut rng);
        assert!(random.trace_id != 0 && random.parent_span_id != 0);
        assert_ne!(random, TraceParent::random(&mut rng));
    }
}
