//! `result.json`: everything a run measured, in one versioned structure. Reports, gates and
//! comparisons read only this; histograms are stored whole (HdrHistogram V2, base64) so that runs
//! can be merged and compared later without loss.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::exit::{EXIT_FAILED, EXIT_INCOMPLETE, EXIT_PASSED};
use crate::load::{KindStats, RunReport, Stop};
use memory::MemoryResult;
use overhead::OverheadResult;
pub mod memory;
pub mod overhead;
mod pii;
mod shard;
mod stream;
mod stream_traces;
mod threshold;
mod verification;

pub use pii::{PiiFinding, PiiReport, Searched};
pub use shard::{FleetResult, FleetShard, ShardResult, scenario_hash};
pub use stream::{StreamKindResult, StreamResult};
pub(crate) use stream_traces::KEPT_FAILING;
pub use stream_traces::{FailingUpdate, StreamTraceReport};
pub use threshold::Evaluation;
pub(crate) use threshold::Unit;
pub use verification::{
    CheckKind, FailingTrace, Failure, MetricsReport, TraceReport, VerificationResult,
};
pub(crate) use verification::{SPAN_COUNTS, SourceReport};

/// Bumped on any change that an older reader would misread.
pub const SCHEMA_VERSION: u32 = 1;

/// The largest `result.json` read back: a day-long run's timeline and histograms take a few MB.
pub(crate) const MAX_RESULT_BYTES: u64 = 64 << 20;

/// One run, as `result.json` holds it: what was run, on what machine, what the load did, and
/// every verdict on it. Every printer reads this and nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub(crate) schema_version: u32,
    pub(crate) scenario: ScenarioEcho,
    pub(crate) environment: Environment,
    /// `completed`, `interrupted` or `failed`; with `reason` when not completed.
    pub status: RunStatus,
    pub(crate) started_at_unix_ms: u64,
    pub(crate) load: LoadSummary,
    pub(crate) kinds: Vec<KindResult>,
    pub(crate) timeline: Vec<SecondResult>,
    /// The load profile as `timeline` seconds: where each phase starts and the rate it asks for.
    /// Empty for an overhead experiment, whose timeline is its trials one after another.
    #[serde(default)]
    pub phases: Vec<PhaseResult>,
    /// Every threshold of the scenario with what was measured against it.
    pub thresholds: Vec<ThresholdResult>,
    /// Trace and metrics checks, when the scenario asks for them.
    #[serde(default)]
    pub verification: VerificationResult,
    /// The tracing-overhead experiment, when the scenario is one. `load`, `kinds` and `timeline`
    /// then describe its treatment arm's trials, one after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<OverheadResult>,
    /// The messages of a stream load (`websocket:` kinds). `load`, `kinds` and `timeline` then
    /// describe its connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamResult>,
    /// Resident memory of the processes sampled during the load, and its growth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResult>,
    /// In a shard's result (`harness run --shard I/N`): which shard it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardResult>,
    /// In a merged result (`harness merge`): the shards it was merged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetResult>,
}

/// A threshold of the scenario with its verdict, an entry of `thresholds` in `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// `overall`, or the request kind the threshold is declared on.
    pub scope: String,
    #[serde(flatten)]
    pub(crate) evaluation: Evaluation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScenarioEcho {
    pub(crate) name: String,
    pub(crate) path: String,
    /// The file as it was read; with `overrides`, what was run, so that a result explains itself.
    pub source: String,
    pub(crate) overrides: Vec<String>,
    /// The scenario keys whose `tls.insecure` accepts any certificate: nothing the harness read
    /// through them was authenticated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) insecure: Vec<String>,
}

/// How the run ended, the `status` of `result.json`: only a completed run is judged by its
/// thresholds and checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunStatus {
    /// The load ran to its end; thresholds and checks decide the exit code.
    Completed,
    /// Stopped early by SIGINT or SIGTERM; what was measured until then is kept (exit 3).
    Interrupted {
        /// What stopped it.
        reason: String,
    },
    /// The run could not go on, e.g. a service crashed (exit 3).
    Failed {
        /// What went wrong, as the summary and report print it.
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoadSummary {
    pub(crate) target_rate: f64,
    pub(crate) achieved_rate: f64,
    pub(crate) scheduled: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    pub(crate) completed: u64,
    pub(crate) unexpected: u64,
    /// Still in flight when the run gave up waiting for them.
    pub abandoned: u64,
    pub(crate) send_duration_s: f64,
    pub(crate) latency: Percentiles,
    pub(crate) service_time: Percentiles,
    /// Actual minus intended send time: the harness's own lateness, part of every latency.
    pub send_lag: Percentiles,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub(crate) count: u64,
    pub(crate) min: u64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    /// `None` in a result written before p95 was recorded, rather than a false 0.
    #[serde(default)]
    pub(crate) p95: Option<u64>,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
    pub(crate) mean: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p95: Some(h.value_at_quantile(0.95)),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KindResult {
    pub(crate) name: String,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    pub(crate) completed: u64,
    pub(crate) unexpected: u64,
    pub(crate) outcomes: BTreeMap<String, u64>,
    pub(crate) transport_errors: Vec<String>,
    pub(crate) latency: Percentiles,
    pub(crate) service_time: Percentiles,
    /// HdrHistogram V2 serialization, base64: latency from the intended send time, µs.
    pub latency_histogram: String,
    pub(crate) service_time_histogram: String,
}

/// One phase of the load profile: the target rate goes linearly from `from_rate` to `to_rate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseResult {
    pub(crate) start_s: f64,
    pub(crate) duration_s: f64,
    pub(crate) from_rate: f64,
    pub(crate) to_rate: f64,
}

impl PhaseResult {
    /// The phases of a load profile, laid end to end from second 0.
    pub fn of(phases: &[crate::scenario::Phase]) -> Vec<PhaseResult> {
        let mut start_s = 0.0;
        phases
            .iter()
            .map(|phase| {
                let (from_rate, to_rate) = match *phase {
                    crate::scenario::Phase::Constant { rate, .. } => (rate, rate),
                    crate::scenario::Phase::Ramp { from, to, .. } => (from, to),
                };
                let duration_s = phase.duration().as_secs_f64();
                let result = PhaseResult {
                    start_s,
                    duration_s,
                    from_rate,
                    to_rate,
                };
                start_s += duration_s;
                result
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecondResult {
    pub(crate) second: u64,
    pub(crate) sent: u64,
    pub(crate) completed: u64,
    pub(crate) unexpected: u64,
    pub(crate) dropped: u64,
    /// `None` for a second in which nothing completed (a full stall), never a misleading 0.
    pub p50_us: Option<u64>,
    /// Also `None` in a result written before p95 was recorded.
    #[serde(default)]
    pub(crate) p95_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Environment {
    pub(crate) harness_version: String,
    pub(crate) git_sha: Option<String>,
    pub(crate) cpu_model: Option<String>,
    pub(crate) cores: usize,
    pub(crate) kernel: Option<String>,
}

impl Environment {
    pub(crate) fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        let kernel = nix::sys::utsname::uname().ok().map(|u| {
            format!(
                "{} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy()
            )
        });
        let git_sha = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        Environment {
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_sha,
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
        }
    }
}

/// Why a stored histogram (a `*_histogram` field of `result.json`) does not decode.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The text is not base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 serialization.
    #[error("histogram is not a valid HdrHistogram V2 serialization: {0}")]
    Decode(#[from] hdrhistogram::serialization::DeserializeError),
    /// The header asks for more memory than any histogram the harness writes: refused before
    /// anything is allocated.
    #[error("histogram header is not one the harness writes: {0}")]
    Header(&'static str),
    /// The counts hold a number the decoder cannot take without overflowing.
    #[error("histogram counts are not ones the harness writes: {0}")]
    Payload(&'static str),
}

/// A histogram as `result.json` stores it: HdrHistogram V2, base64, whole, so that runs can be
/// merged and compared later without loss.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing a histogram into memory cannot fail");
    BASE64.encode(bytes)
}

/// The histogram `encode_histogram` stored.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = BASE64.decode(text)?;
    check_header(&bytes)?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

/// The most counts a stored histogram may have: the harness's own (1 µs to an hour, three
/// significant digits) have under 30,000; a header claiming more is refused.
const MAX_HISTOGRAM_COUNTS: u64 = 1 << 20;

/// Checks an uncompressed V2 header before the decoder sizes its buffers from it: the payload
/// must be as long as it says, and the bounds and precision must make a counts array of at most
/// `MAX_HISTOGRAM_COUNTS`, so that a forged header cannot make the decoder allocate gigabytes.
fn check_header(bytes: &[u8]) -> Result<(), HistogramError> {
    const V2_COOKIE: u32 = 0x1c84_9313;
    const HEADER: usize = 40;
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| Some(u32::from_be_bytes(b.try_into().ok()?)))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| Some(u64::from_be_bytes(b.try_into().ok()?)))
    };
    let (Some(cookie), Some(payload), Some(digits), Some(low), Some(high)) =
        (u32_at(0), u32_at(4), u32_at(12), u64_at(16), u64_at(24))
    else {
        return Err(HistogramError::Header("shorter than a V2 header"));
    };
    if cookie != V2_COOKIE {
        return Err(HistogramError::Header("not an uncompressed V2 histogram"));
    }
    if u64::from(payload) > (bytes.len().saturating_sub(HEADER)) as u64 {
        return Err(HistogramError::Header(
            "its payload is longer than the data",
        ));
    }
    match counts_len(low, high, digits) {
        Some(len) if len <= MAX_HISTOGRAM_COUNTS => {}
        _ => {
            return Err(HistogramError::Header(
                "its bounds and precision need more than 2^20 counts",
            ));
        }
    }
    let counts = bytes
        .get(HEADER..)
        .and_then(|rest| rest.get(..payload as usize))
        .ok_or(HistogramError::Header("shorter than a V2 header"))?;
    check_counts(counts)
}

/// Refuses a run of 2^63 zeroes among the counts: the V2 decoder negates the number that encodes
/// it, which overflows (a panic where overflow is checked), and no histogram has such a run.
/// The counts are zigzag varints as the decoder reads them: up to eight bytes of seven bits
/// each while the high bit is set, then a ninth byte taken whole.
fn check_counts(mut counts: &[u8]) -> Result<(), HistogramError> {
    while !counts.is_empty() {
        let mut value = 0u64;
        let mut used = counts.len().min(9);
        for (i, &byte) in counts.iter().take(9).enumerate() {
            if i == 8 {
                value |= u64::from(byte) << 56;
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                used = i + 1;
                break;
            }
        }
        // Zigzag: u64::MAX decodes to i64::MIN.
        if value == u64::MAX {
            return Err(HistogramError::Payload("a run of 2^63 zeroes"));
        }
        counts = &counts[used..];
    }
    Ok(())
}

/// How many counts HdrHistogram allocates for `low..=high` at `digits` significant digits (its
/// own sizing), or `None` for bounds it refuses.
fn counts_len(low: u64, high: u64, digits: u32) -> Option<u64> {
    if low == 0 || digits > 5 || high < low.checked_mul(2)? {
        return None;
    }
    let largest_single_unit = 2 * 10u64.pow(digits);
    let sub_bucket_magnitude = u64::BITS - (largest_single_unit - 1).leading_zeros();
    let sub_bucket_count = 1u64 << sub_bucket_magnitude;
    let unit_magnitude = u64::BITS - 1 - low.leading_zeros();
    if unit_magnitude + sub_bucket_magnitude > 63 {
        return None;
    }
    let mut smallest_untrackable = sub_bucket_count << unit_magnitude;
    let mut buckets = 1u64;
    while smallest_untrackable <= high {
        if smallest_untrackable > u64::MAX / 2 {
            buckets += 1;
            break;
        }
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    Some((buckets + 1) * (sub_bucket_count / 2))
}

/// The file a run writes its result to, in its output directory.
pub const FILE_NAME: &str = "result.json";

/// Why a result could not be written; names the file.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct WriteError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Writes `result` to `path` atomically (a sibling temporary file, then a rename), so that a
/// reader never sees half a result and an interrupted write leaves the previous one whole. The
/// JSON goes to the file as it is made: no string of the whole result, whose size would follow
/// the run's length, is built first.
pub fn write(path: &Path, result: &RunResult) -> Result<(), WriteError> {
    use std::io::Write as _;
    let fail = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary).map_err(fail)?);
    serde_json::to_writer_pretty(&mut file, result).map_err(|e| fail(e.into()))?;
    file.flush().map_err(fail)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(fail)
}

/// Why a stored result cannot be read back; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// Not JSON, or not a result; serde's message carries the line and column.
    #[error("{path}: not a harness result: {source}")]
    Json {
        /// The file.
        path: String,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// Written in a schema version this harness does not read.
    #[error(
        "{path}: schema_version is {found}, but this harness reads version {SCHEMA_VERSION}; \
         render it with the harness that wrote it"
    )]
    Schema {
        /// The file.
        path: String,
        /// Its `schema_version`.
        found: u32,
    },
}

/// Reads a `result.json` back, refusing one written in another schema version rather than
/// misreading it.
pub fn read(path: &Path) -> Result<RunResult, ReadError> {
    let text =
        crate::bounded::read_text(path, MAX_RESULT_BYTES).map_err(|source| ReadError::Io {
            path: path.display().to_string(),
            source,
        })?;
    from_text(path, &text)
}

/// A `result.json`'s text, read from `path` (which errors name), as [`read`] takes it.
pub(crate) fn from_text(path: &Path, text: &str) -> Result<RunResult, ReadError> {
    #[derive(Deserialize)]
    struct Versioned {
        schema_version: u32,
    }
    let shown = || path.display().to_string();
    let json = |source| ReadError::Json {
        path: shown(),
        source,
    };
    let Versioned { schema_version } = serde_json::from_str(text).map_err(json)?;
    if schema_version != SCHEMA_VERSION {
        return Err(ReadError::Schema {
            path: shown(),
            found: schema_version,
        });
    }
    serde_json::from_str(text).map_err(json)
}

impl KindResult {
    fn from_stats(stats: &KindStats) -> Self {
        KindResult {
            name: stats.name.clone(),
            sent: stats.sent,
            dropped: stats.dropped,
            completed: stats.completed,
            unexpected: stats.unexpected,
            outcomes: stats.outcomes.clone(),
            transport_errors: stats.transport_errors.clone(),
            latency: Percentiles::of(&stats.latency),
            service_time: Percentiles::of(&stats.service_time),
            latency_histogram: encode_histogram(&stats.latency),
            service_time_histogram: encode_histogram(&stats.service_time),
        }
    }
}

impl LoadSummary {
    /// `target_rate` is what the schedule asked for, in requests per second.
    pub(crate) fn from_report(report: &RunReport, target_rate: f64) -> Self {
        let kinds = &report.recorder.kinds;
        let sum = |f: fn(&KindStats) -> u64| kinds.iter().map(f).sum::<u64>();
        let sent = sum(|k| k.sent);
        let seconds = report.send_duration.as_secs_f64();
        LoadSummary {
            target_rate,
            // Sends per second from the first dispatch to the last: n sends span n − 1 gaps.
            achieved_rate: if seconds > 0.0 {
                (sent.saturating_sub(1)) as f64 / seconds
            } else {
                0.0
            },
            scheduled: report.scheduled,
            sent,
            dropped: sum(|k| k.dropped),
            completed: sum(|k| k.completed),
            unexpected: sum(|k| k.unexpected),
            abandoned: report.abandoned,
            send_duration_s: seconds,
            latency: Percentiles::of(&report.recorder.merged_latency()),
            service_time: Percentiles::of(&report.recorder.merged_service_time()),
            send_lag: Percentiles::of(&report.recorder.send_lag),
        }
    }
}

impl RunResult {
    /// Every threshold passed and, in an overhead experiment, the claim held: with a completed
    /// run, exit 0. Reports that must agree with the exit code ask this rather than repeat it.
    pub fn passed(&self) -> bool {
        let claim_held = self
            .overhead
            .as_ref()
            .is_none_or(|o| o.verdict == overhead::Verdict::Pass);
        claim_held && self.thresholds.iter().all(|t| t.evaluation.is_pass())
    }

    /// The exit code the run calls for: 3 unless it completed, then 0 if it passed and 1 if not.
    /// A shard's thresholds do not decide its exit code: the fleet is judged by `harness merge`,
    /// and a shard that completed exits 0 so that only a shard that failed fails its job.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Completed if self.shard.is_some() => EXIT_PASSED,
            RunStatus::Completed if self.passed() => EXIT_PASSED,
            RunStatus::Completed => EXIT_FAILED,
            RunStatus::Interrupted { .. } | RunStatus::Failed { .. } => EXIT_INCOMPLETE,
        }
    }

    pub(crate) fn new(
        scenario: ScenarioEcho,
        started: SystemTime,
        target_rate: f64,
        report: &RunReport,
        failure: Option<String>,
    ) -> Self {
        let status = match (failure, &report.stop) {
            (Some(reason), _) => RunStatus::Failed { reason },
            (None, Stop::Interrupted) => RunStatus::Interrupted {
                reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
            },
            (None, Stop::Completed) => RunStatus::Completed,
        };
        RunResult {
            schema_version: SCHEMA_VERSION,
            scenario,
            environment: Environment::detect(),
            status,
            started_at_unix_ms: started
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64,
            stream: report.stream.as_deref().map(StreamResult::of),
            load: LoadSummary::from_report(report, target_rate),
            kinds: report
                .recorder
                .kinds
                .iter()
                .map(KindResult::from_stats)
                .collect(),
            timeline: report
                .recorder
                .timeline
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let percentiles = s.percentiles();
                    SecondResult {
                        second: i as u64,
                        sent: s.sent,
                        completed: s.completed,
                        unexpected: s.unexpected,
                        dropped: s.dropped,
                        p50_us: percentiles.map(|p| p.p50),
                        p95_us: percentiles.map(|p| p.p95),
                        p99_us: percentiles.map(|p| p.p99),
                    }
                })
                .collect(),
            phases: Vec::new(),
            thresholds: Vec::new(),
            verification: VerificationResult::default(),
            overhead: None,
            memory: None,
            shard: None,
            fleet: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::new_histogram;

    #[test]
    fn a_histogram_header_claiming_too_much_is_refused_before_allocating() {
        let mut h = new_histogram();
        h.record(1_500).expect("in range");
        let bytes = BASE64
            .decode(encode_histogram(&h))
            .expect("base64 of our own");
        // Our own sizing agrees with the crate's for the harness's histograms.
        assert_eq!(
            counts_len(1, h.high(), u32::from(h.sigfig())),
            Some(h.distinct_values() as u64)
        );
        let forged = |edits: &[(usize, &[u8])]| {
            let mut bytes = bytes.clone();
            for (at, value) in edits {
                bytes[*at..*at + value.len()].copy_from_slice(value);
            }
            BASE64.encode(bytes)
        };
        let cases = [
            // The widest bounds at five digits: millions of counts.
            forged(&[(12, &5u32.to_be_bytes()), (24, &u64::MAX.to_be_bytes())]),
            // A payload of 4 GiB in a few bytes.
            forged(&[(4, &u32::MAX.to_be_bytes())]),
            // No V2 header at all.
            BASE64.encode(&bytes[..20]),
        ];
        for text in cases {
            assert!(
                matches!(decode_histogram(&text), Err(HistogramError::Header(_))),
                "{:?}",
                decode_histogram(&text).map(|h| h.distinct_values())
            );
        }
        // Wide bounds at the usual precision stay small, and are read.
        let wide = forged(&[(24, &u64::MAX.to_be_bytes())]);
        assert_eq!(decode_histogram(&wide).expect("decodes").len(), 1);
    }

    /// Found by the `histogram` fuzz target: the zigzag number of a run of 2^63 zeroes made the
    /// decoder negate i64::MIN.
    #[test]
    fn a_run_of_zeroes_that_overflows_the_decoder_is_refused() {
        let crash = concat!(
            "HISTEwAAAJEAAAAAAAAAAwAAAAAAAAABAAAAANaTpAA/8AAAAAAAANciAukDAlsCCQIHBBUCAwID",
            "AgcCBwIf/vD9/wIAAgIJAgUCAwIC4wsEAAIDBAcCAgMCAAIAAgINAgMCAwICCQIRAgUCAgACAgUC",
            "AwIFAgIDAv//////////////////////////////////////////////AgACBwYABA8CAgMECwID",
            "AiMCNAIJAgsClAJnAq8BAg==",
        );
        let error = decode_histogram(crash).expect_err("refused");
        assert!(matches!(error, HistogramError::Payload(_)), "{error}");
        // Also found there: the header's fields end at byte 32 but it is 40 long, so the counts
        // of 32 bytes start past the end.
        let short = "HISTEwAAAAAAkwAAAAAAAAAEFwIAAgD1BQIJAg8CAQI=";
        assert!(matches!(
            decode_histogram(short),
            Err(HistogramError::Header("shorter than a V2 header"))
        ));
        // The same counts without the overflowing run decode as before.
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        h.record(1).expect("in range");
        h.record(3_600_000_000).expect("in range");
        assert_eq!(
            decode_histogram(&encode_histogram(&h))
                .expect("decodes")
                .len(),
            2
        );
    }

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = new_histogram();
        for v in [1, 150, 2_000, 35_000, 1_000_000] {
            h.record(v).expect("in range");
        }
        let back = decode_histogram(&encode_histogram(&h)).expect("decodes");
        assert_eq!(back, h);
        assert_eq!(Percentiles::of(&back), Percentiles::of(&h));
    }

    #[test]
    fn p95_sits_between_p90_and_p99() {
        let mut h = new_histogram();
        for ms in 1..=100 {
            h.record(ms * 1_000).expect("in range");
        }
        let p = Percentiles::of(&h);
        let near = |value: u64, ms: u64| value.abs_diff(ms * 1_000) <= ms;
        assert!(near(p.p90, 90) && near(p.p99, 99), "{p:?}");
        let p95 = p.p95.expect("recorded");
        assert!(near(p95, 95), "{p:?}");
        let json = serde_json::to_value(&p).expect("serializes");
        assert_eq!(json["p95"], p95);
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    /// Found by the `result_json` fuzz target: serde_json's default float parsing may miss the
    /// nearest double, so a mean read back and written again changed its last digits (here
    /// 3293.1419540229884 read, 3293.141954022989 written, 3293.1419540229886 after a second
    /// round); `float_roundtrip` parses exactly.
    #[test]
    fn a_stored_result_writes_back_what_it_read() {
        let text = include_str!("../../tests/fixtures/fuzz/result-float-digits.json");
        let path = Path::new("result.json");
        let written = serde_json::to_string_pretty(&from_text(path, text).expect("reads"))
            .expect("serializes");
        let again = from_text(path, &written).expect("reads again");
        assert_eq!(
            serde_json::to_string_pretty(&again).expect("serializes"),
            written
        );
    }

    #[test]
    fn a_written_result_reads_back_whole_and_replaces_the_old_one() {
        let dir = std::env::temp_dir().join(format!("harness-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, "an older result").expect("write");
        let mut result: RunResult =
            serde_json::from_str(include_str!("../../tests/fixtures/results/smoke.json"))
                .expect("fixture");
        let second = result.timeline[0].clone();
        result.timeline = (0..3_600)
            .map(|i| SecondResult {
                second: i,
                ..second.clone()
            })
            .collect();
        write(&path, &result).expect("writes");
        let back = read(&path).expect("reads back");
        assert_eq!(back.timeline.len(), 3_600);
        assert_eq!(back.timeline[3_599].second, 3_599);
        assert!(!dir.join("result.json.partial").exists());
        // Into a directory that is not there: the error names the file, and nothing is left.
        let error = write(&dir.join("absent").join(FILE_NAME), &result).expect_err("no dir");
        assert!(error.to_string().contains("absent"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stored_result_reads_back_and_other_versions_are_refused() {
        let dir = std::env::temp_dir().join(format!("harness-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let fixture = include_str!("../../tests/fixtures/results/smoke.json");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let result = read(&write("ok.json", fixture)).expect("a real result reads");
        assert_eq!(result.scenario.name, "smoke");
        // Written before p95 was recorded: it reads as unknown, never as 0.
        assert!(!fixture.contains("\"p95"), "the fixture predates p95");
        assert_eq!(result.load.latency.p95, None);
        assert!(result.kinds.iter().all(|k| k.latency.p95.is_none()));
        assert!(result.timeline.iter().all(|s| s.p95_us.is_none()));

        let newer = fixture.replacen("\"schema_version\": 1", "\"schema_version\": 2", 1);
        let error = read(&write("newer.json", &newer)).expect_err("version 2");
        assert!(
            matches!(error, ReadError::Schema { found: 2, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("newer.json"), "{error}");

        let error = read(&write("broken.json", "{\"schema_version\": 1,")).expect_err("cut");
        assert!(matches!(error, ReadError::Json { .. }), "{error}");
        assert!(error.to_string().contains("line 1 column"), "{error}");

        let error = read(&dir.join("absent.json")).expect_err("no file");
        assert!(matches!(error, ReadError::Io { .. }), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
