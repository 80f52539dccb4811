//! The parts of `result.json` that a sharded run adds: a shard's identity (`shard`), and in a
//! merged result the fleet it was merged from (`fleet`).

use serde::{Deserialize, Serialize};

/// Which shard of a fleet a result is, and what `harness merge` needs to put the fleet back
/// together: the scenario's hash, and when this shard's schedule began on the wall clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardResult {
    /// From 1 to `count`.
    pub index: u64,
    /// Shards in the fleet.
    pub count: u64,
    /// SHA-256 (hex) of the scenario as it was read and of its `--set` overrides: see
    /// [`scenario_hash`].
    pub scenario_sha256: String,
    /// The fleet's common start (Unix ms), from `--start-at` or from the first shard to start;
    /// `None` in a shard that failed before it got there.
    #[serde(default)]
    pub planned_start_unix_ms: Option<u64>,
    /// When this shard's schedule began (Unix µs): its timeline's second 0.
    #[serde(default)]
    pub load_started_at_unix_us: Option<u64>,
    /// How late this shard began against the common start, in ms (0 when on time).
    #[serde(default)]
    pub start_lag_ms: u64,
    /// The send lag as an HdrHistogram (V2, base64), so that the fleet's is merged exactly.
    #[serde(default)]
    pub send_lag_histogram: Option<String>,
    /// The scenario asks for metrics checks, which a shard leaves to the fleet: the services
    /// count every shard's requests.
    #[serde(default)]
    pub metrics_checks: bool,
    /// When this shard's warm-up ended (Unix µs): the fleet's metrics baseline must be a scrape
    /// after every shard's warm-up and before the first send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_up_at_unix_us: Option<u64>,
    /// When this shard's measured load ended, its last answer received or given up on (Unix
    /// µs): the fleet's second metrics snapshot is the first scrape after every shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ended_at_unix_us: Option<u64>,
}

/// A merged result's fleet: what was merged, and what could not be merged exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetResult {
    /// Shards in the fleet.
    pub count: u64,
    /// The scenario hash every shard carried.
    pub scenario_sha256: String,
    /// Each shard, in index order.
    pub shards: Vec<FleetShard>,
    /// Why the services' metrics were not reconciled for the fleet, when the scenario asks for
    /// metrics checks: each shard sees only its own share of the requests the services counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_not_reconciled: Option<String>,
}

/// One shard as the merged result lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetShard {
    /// From 1.
    pub index: u64,
    /// The result file it was read from.
    pub path: String,
    /// `completed`, `interrupted` or `failed`.
    pub state: String,
    /// Why it did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Requests it sent.
    pub sent: u64,
    /// Its own achieved rate, requests per second.
    pub achieved_rate: f64,
    /// How late it began against the common start, in ms.
    pub start_lag_ms: u64,
}

/// SHA-256 (lowercase hex) of a scenario as read (`source`, the file's text) and of the `--set`
/// overrides applied to it, each ended by a NUL so that no two lists hash alike.
pub fn scenario_hash(source: &str, overrides: &[String]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(source.as_bytes());
    context.update(&[0]);
    for o in overrides {
        context.update(o.as_bytes());
        context.update(&[0]);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_text_and_every_override() {
        let base = scenario_hash("name: a\n", &[]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, scenario_hash("name: a\n", &[]));
        assert_ne!(base, scenario_hash("name: b\n", &[]));
        let set = |o: &[&str]| o.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let one = scenario_hash("name: a\n", &set(&["load.seed=2"]));
        assert_ne!(base, one);
        assert_ne!(
            scenario_hash("x", &set(&["ab", "c"])),
            scenario_hash("x", &set(&["a", "bc"]))
        );
        // The SHA-256 of the empty string, with its terminator: a known value.
        assert_eq!(
            scenario_hash("", &[]),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
