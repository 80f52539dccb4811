//! The fleet section: which shards a merged result was made of, or which shard a shard's own
//! result is, and what a merge could not make exact.

use serde::Serialize;

use super::{Fact, Table, fact};
use crate::format::{count, rate};
use crate::result::RunResult;

#[derive(Debug, Serialize)]
pub(super) struct FleetView {
    facts: Vec<Fact>,
    /// One row per shard, in a merged result.
    shards: Option<Table>,
    notes: Vec<String>,
}

/// The section for a shard's result or a merged one; `None` for an unsharded run.
pub(super) fn fleet(result: &RunResult) -> Option<FleetView> {
    if let Some(shard) = &result.shard {
        return Some(FleetView {
            facts: vec![
                fact("shard", format!("{} of {}", shard.index, shard.count)),
                fact("scenario sha256", shard.scenario_sha256.clone()),
                fact("start lag", format!("{} ms", shard.start_lag_ms)),
            ],
            shards: None,
            notes: vec![
                "This is one shard: every N-th request of the schedule. Its thresholds describe \
                 its share alone; `harness merge` judges the fleet."
                    .to_owned(),
            ],
        });
    }
    let fleet = result.fleet.as_ref()?;
    let mut table = Table::new(&[
        "shard",
        "state",
        "sent",
        "achieved rate",
        "start lag",
        "file",
    ]);
    for shard in &fleet.shards {
        let state = match &shard.reason {
            Some(reason) => format!("{}: {reason}", shard.state),
            None => shard.state.clone(),
        };
        table.push(
            vec![
                format!("{}/{}", shard.index, fleet.count),
                state,
                count(shard.sent),
                rate(shard.achieved_rate),
                format!("{} ms", shard.start_lag_ms),
                shard.path.clone(),
            ],
            shard.reason.is_some(),
        );
    }
    let mut notes = vec![
        "Counts, latency percentiles and thresholds are the whole fleet's: the shards' \
         histograms added, so each percentile is that of every request any shard sent. The \
         timeline adds the shards' seconds by wall-clock second; its per-second percentiles are \
         the highest of the shards' in that second (an upper bound)."
            .to_owned(),
    ];
    notes.extend(fleet.metrics_not_reconciled.clone());
    Some(FleetView {
        facts: vec![
            fact("shards", count(fleet.count)),
            fact("scenario sha256", fleet.scenario_sha256.clone()),
        ],
        shards: Some(table),
        notes,
    })
}
