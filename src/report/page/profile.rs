//! The load profile's target rate as the report needs it: cut where the run stopped, and
//! averaged over the part that ran or over a stretch of the timeline. A run that stopped early must be compared with what it
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
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    mean_target_over(phases, 0.0, seconds)
}

/// The mean target rate over `from..to` seconds into the profile, counting only the time some
/// phase covers (a second of one phase is its rate at mid-second); `None` where none does.
pub(super) fn mean_target_over(phases: &[PhaseResult], from: f64, to: f64) -> Option<f64> {
    let mut requests = 0.0;
    let mut covered = 0.0;
    for phase in phases {
        let low = phase.start_s.max(from);
        let high = (phase.start_s + phase.duration_s).min(to);
        if high > low {
            // A linear ramp: the mean of its ends is its mean.
            requests += (high - low) * (rate_in(phase, low) + rate_in(phase, high)) / 2.0;
            covered += high - low;
        }
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
        // A second of the ramp is its rate at mid-second.
        assert_eq!(mean_target_over(&ramp, 19.0, 20.0), Some(392.5));
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
        assert_eq!(mean_target_over(&phases, 15.0, 16.0), Some(200.0));
        assert_eq!(mean_target_over(&phases, 20.0, 21.0), None);
        // Across the boundary: five seconds at each rate.
        assert_eq!(mean_target_over(&phases, 5.0, 15.0), Some(125.0));
        // Half a second past the profile's end counts only the half it covers.
        assert_eq!(mean_target_over(&phases, 19.5, 20.5), Some(200.0));
        assert!(!is_constant(&phases));
        assert!(is_constant(&phases[..1]));
        assert!(!is_constant(&[phase(0.0, 10.0, 1.0, 2.0)]));
        assert!(is_constant(&[]));
    }
}
