//! The load profile's target rate as the report needs it: at a moment, cut where the run stopped,
//! and averaged over the part that ran. A run that stopped early must be compared with what it
//! was asked for until then, not with the whole profile.

use crate::result::PhaseResult;

/// The phase's target at `t` seconds into the profile (not checked to be inside the phase).
fn rate_in(phase: &PhaseResult, t: f64) -> f64 {
    let along = if phase.duration_s > 0.0 {
        ((t - phase.start_s) / phase.duration_s).clamp(0.0, 1.0)
    } else {
        0.0
    };
    phase.from_rate + (phase.to_rate - phase.from_rate) * along
}

/// The target rate at `t` seconds into the load profile; `None` outside it.
pub(super) fn target_at(phases: &[PhaseResult], t: f64) -> Option<f64> {
    phases
        .iter()
        .find(|p| p.start_s <= t && t < p.start_s + p.duration_s)
        .map(|p| rate_in(p, t))
}

/// The target line up to `end` seconds: each phase from its start to its end or `end`, whichever
/// comes first, at the rate it asked for there. Phases that start at or after `end` are left out.
pub(super) fn target_line(phases: &[PhaseResult], end: f64) -> Vec<(f64, f64)> {
    phases
        .iter()
        .filter(|p| p.start_s < end)
        .flat_map(|p| {
            let stop = (p.start_s + p.duration_s).min(end);
            [(p.start_s, p.from_rate), (stop, rate_in(p, stop))]
        })
        .collect()
}

/// The mean target rate over the first `seconds` of the profile: requests asked for divided by
/// time. `None` without phases or time.
pub(super) fn mean_target(phases: &[PhaseResult], seconds: f64) -> Option<f64> {
    if phases.is_empty() || !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    let mut requests = 0.0;
    let mut covered = 0.0;
    for phase in phases.iter().filter(|p| p.start_s < seconds) {
        let stop = (phase.start_s + phase.duration_s).min(seconds);
        let span = stop - phase.start_s;
        // A linear ramp: the mean of its ends is its mean.
        requests += span * (phase.from_rate + rate_in(phase, stop)) / 2.0;
        covered += span;
    }
    (covered > 0.0).then(|| requests / covered)
}

/// Whether the profile asks for one rate throughout: then "target rate" needs no "mean".
pub(super) fn is_constant(phases: &[PhaseResult]) -> bool {
    phases
        .iter()
        .all(|p| p.from_rate == p.to_rate && p.from_rate == phases[0].from_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(start_s: f64, duration_s: f64, from_rate: f64, to_rate: f64) -> PhaseResult {
        PhaseResult {
            start_s,
            duration_s,
            from_rate,
            to_rate,
        }
    }

    #[test]
    fn a_ramp_cut_short_ends_at_the_rate_it_had_reached() {
        let ramp = [phase(0.0, 60.0, 100.0, 1_000.0)];
        assert_eq!(target_line(&ramp, 20.0), [(0.0, 100.0), (20.0, 400.0)]);
        assert_eq!(target_line(&ramp, 60.0), [(0.0, 100.0), (60.0, 1_000.0)]);
        // 100 rising to 400 over the 20 s that ran: 250/s on average, not the profile's 550/s.
        assert_eq!(mean_target(&ramp, 20.0), Some(250.0));
        assert_eq!(mean_target(&ramp, 60.0), Some(550.0));
        assert_eq!(mean_target(&ramp, 0.0), None);
        assert_eq!(mean_target(&[], 20.0), None);
    }

    #[test]
    fn phases_that_never_started_are_left_out() {
        let phases = [
            phase(0.0, 10.0, 50.0, 50.0),
            phase(10.0, 10.0, 200.0, 200.0),
        ];
        assert_eq!(target_line(&phases, 5.0), [(0.0, 50.0), (5.0, 50.0)]);
        assert_eq!(target_line(&phases, 10.0), [(0.0, 50.0), (10.0, 50.0)]);
        assert_eq!(target_line(&phases, 15.0).len(), 4);
        assert_eq!(mean_target(&phases, 10.0), Some(50.0));
        assert_eq!(mean_target(&phases, 20.0), Some(125.0));
        assert_eq!(target_at(&phases, 15.0), Some(200.0));
        assert_eq!(target_at(&phases, 20.0), None);
        assert!(!is_constant(&phases));
        assert!(is_constant(&phases[..1]));
        assert!(!is_constant(&[phase(0.0, 10.0, 1.0, 2.0)]));
        assert!(is_constant(&[]));
    }
}
