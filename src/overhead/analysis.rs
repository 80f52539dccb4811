//! From trials to effects and a verdict.

use std::collections::{BTreeMap, BTreeSet};

use stats::median;

use super::{
    ArmName, Effect, FaultCounts, InstructionCount, InstructionCounts, PointAnalysis,
    ServiceEffect, Spread, StepEffect, TrialResult, Verdict,
};
use crate::scenario::{Claim, ClaimMetric};

/// One arm's trials that sent anything, by pair.
fn by_pair(trials: &[TrialResult], arm: ArmName) -> BTreeMap<usize, &TrialResult> {
    trials
        .iter()
        .filter(|t| t.arm == arm && t.sent > 0)
        .map(|t| (t.pair, t))
        .collect()
}

/// Where the cost goes: along the chain of arms (control, `steps` arms, treatment), what each
/// adds to the one before it, pair by pair, in µs and as a share of the control's CPU. Empty
/// without steps.
pub(super) fn attribute(trials: &[TrialResult], steps: usize) -> Vec<StepEffect> {
    if steps == 0 {
        return Vec::new();
    }
    let chain = ArmName::chain(steps);
    let arms: Vec<BTreeMap<usize, &TrialResult>> =
        chain.iter().map(|&arm| by_pair(trials, arm)).collect();
    let control = &arms[0];
    arms.windows(2)
        .zip(&chain[1..])
        .map(|(w, &arm)| {
            let (before, after) = (&w[0], &w[1]);
            // Pairs in which the arm, the one before it and the control all ran.
            let pairs: Vec<(&TrialResult, &TrialResult, &TrialResult)> = after
                .iter()
                .filter_map(|(pair, a)| Some((*before.get(pair)?, *a, *control.get(pair)?)))
                .collect();
            let of = |value: &dyn Fn(&TrialResult) -> f64, relative: bool| {
                let differences: Vec<f64> = pairs
                    .iter()
                    .map(|(b, a, c)| {
                        let added = value(a) - value(b);
                        if relative {
                            added / c.cpu_us_total
                        } else {
                            added
                        }
                    })
                    .collect();
                Effect::of(&differences)
            };
            let names: BTreeSet<&String> =
                pairs.iter().flat_map(|(_, a, _)| a.cpu_us.keys()).collect();
            StepEffect {
                arm,
                cost_us: of(&|t| t.cpu_us_total, false),
                share: of(&|t| t.cpu_us_total, true),
                services: names
                    .into_iter()
                    .map(|name| {
                        let used =
                            |t: &TrialResult| t.cpu_us.get(name).copied().unwrap_or(f64::NAN);
                        (name.clone(), of(&used, false))
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The effects of one point's trials and the claim's verdict on them. Trials pair up by their
/// `pair` number; a pair missing either arm (an interrupted run) is left out.
pub(crate) fn analyse(trials: &[TrialResult], claim: Claim) -> PointAnalysis {
    let (control, treatment) = (
        by_pair(trials, ArmName::Control),
        by_pair(trials, ArmName::Treatment),
    );
    let pairs: Vec<(&TrialResult, &TrialResult)> = control
        .iter()
        .filter_map(|(pair, c)| treatment.get(pair).map(|t| (*c, *t)))
        .collect();
    let relative = |value: &dyn Fn(&TrialResult) -> f64| {
        let differences: Vec<f64> = pairs
            .iter()
            .map(|(c, t)| value(t) / value(c) - 1.0)
            .collect();
        Effect::of(&differences)
    };
    let cpu = relative(&|t| t.cpu_us_total);
    let cost: Vec<f64> = pairs
        .iter()
        .map(|(c, t)| t.cpu_us_total - c.cpu_us_total)
        .collect();
    let cpu_cost_us = Effect::of(&cost);
    let service_names: BTreeSet<&String> = trials.iter().flat_map(|t| t.cpu_us.keys()).collect();
    let services = service_names
        .into_iter()
        .map(|name| {
            let used = |t: &TrialResult| t.cpu_us.get(name).copied().unwrap_or(f64::NAN);
            let cost: Vec<f64> = pairs.iter().map(|(c, t)| used(t) - used(c)).collect();
            let faults = |t: &TrialResult| t.minor_faults.get(name).copied().unwrap_or(f64::NAN);
            let effect = ServiceEffect {
                control_cpu_us: median(pairs.iter().map(|(c, _)| used(c))),
                relative: relative(&used),
                cost_us: Effect::of(&cost),
                faults: median(pairs.iter().map(|(c, _)| faults(c)))
                    .zip(median(pairs.iter().map(|(_, t)| faults(t))))
                    .map(|(control, treatment)| FaultCounts { control, treatment }),
            };
            (name.clone(), effect)
        })
        .collect();
    let p50 = relative(&|t| t.p50_us as f64);
    let p90 = relative(&|t| t.p90_us as f64);
    let p99 = relative(&|t| t.p99_us as f64);
    let judged = match claim.metric {
        ClaimMetric::Cpu => cpu,
        ClaimMetric::P50 => p50,
        ClaimMetric::P90 => p90,
        ClaimMetric::P99 => p99,
    };
    let control_cpu_us = median(pairs.iter().map(|(c, _)| c.cpu_us_total));
    // The request size at which the cost is the bound: cost / bound. Only a positive cost has one.
    let break_even = |cost: f64| (cost > 0.0).then(|| cost / claim.bound);
    PointAnalysis {
        steps: Vec::new(),
        pairs: pairs.len(),
        control_cpu_us,
        treatment_cpu_us: median(pairs.iter().map(|(_, t)| t.cpu_us_total)),
        cpu,
        cpu_cost_us,
        services,
        p50,
        p90,
        p99,
        verdict: Verdict::judge(judged.as_ref(), claim.bound),
        smallest_detectable: judged.map(|e| e.resolution),
        // A CPU cost over a latency bound would mean nothing.
        break_even_us: cpu_cost_us
            .filter(|_| claim.metric == ClaimMetric::Cpu)
            .and_then(|e| break_even(e.estimate)),
        break_even_range_us: cpu_cost_us
            .filter(|_| claim.metric == ClaimMetric::Cpu)
            .and_then(|e| Some((break_even(e.low).unwrap_or(0.0), break_even(e.high)?))),
    }
}

/// The instruction counts' medians and ranges over their repeats.
pub(super) fn count_instructions(
    requests: u64,
    rate: f64,
    counts: Vec<InstructionCount>,
) -> InstructionCounts {
    let totals: Vec<(f64, f64)> = counts.iter().map(InstructionCount::totals).collect();
    let relative: Vec<f64> = totals.iter().map(|(c, t)| t / c - 1.0).collect();
    let cost: Vec<f64> = totals.iter().map(|(c, t)| t - c).collect();
    let names: BTreeSet<&String> = counts.iter().flat_map(|c| c.control.keys()).collect();
    let services = names
        .into_iter()
        .filter_map(|name| {
            let ratios: Vec<f64> = counts
                .iter()
                .filter_map(|c| Some(c.treatment.get(name)? / c.control.get(name)? - 1.0))
                .collect();
            Some((name.clone(), Spread::of(&ratios)?))
        })
        .collect();
    InstructionCounts {
        requests,
        rate,
        control: median(totals.iter().map(|(c, _)| *c)),
        treatment: median(totals.iter().map(|(_, t)| *t)),
        relative: Spread::of(&relative),
        cost: Spread::of(&cost),
        services,
        counts,
    }
}

impl Spread {
    /// `None` when no value is finite.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let finite = || values.iter().copied().filter(|x| x.is_finite());
        Some(Spread {
            median: median(finite())?,
            low: finite().fold(f64::INFINITY, f64::min),
            high: finite().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(arm: ArmName, pair: usize, engine_us: f64, gateway_us: f64, p99: u64) -> TrialResult {
        TrialResult {
            arm,
            pair,
            sent: 1000,
            unexpected: 0,
            dropped: 0,
            achieved_rate: 200.0,
            cpu_us: [
                ("core-engine".to_owned(), engine_us),
                ("api-gateway".to_owned(), gateway_us),
            ]
            .into(),
            cpu_us_total: engine_us + gateway_us,
            minor_faults: BTreeMap::new(),
            p50_us: p99 / 2,
            p90_us: p99 * 9 / 10,
            p99_us: p99,
            peak_rss_bytes: BTreeMap::new(),
        }
    }

    /// Control around 100 µs per request; the treatment adds `cost` to the engine, with a little
    /// noise either way.
    fn experiment(cost: f64) -> Vec<TrialResult> {
        let noise = [0.4, -0.3, 0.1, -0.5, 0.2, 0.0, -0.1, 0.3];
        noise
            .iter()
            .enumerate()
            .flat_map(|(pair, n)| {
                [
                    trial(ArmName::Control, pair, 60.0 + n, 40.0, 1000),
                    trial(ArmName::Treatment, pair, 60.0 + cost - n, 40.0, 1000),
                ]
            })
            .collect()
    }

    const CLAIM: Claim = Claim {
        metric: ClaimMetric::Cpu,
        bound: 0.01,
    };

    #[test]
    fn a_cost_well_over_the_bound_fails_and_is_inside_the_interval() {
        let analysis = analyse(&experiment(20.0), CLAIM);
        assert_eq!(analysis.pairs, 8);
        assert_eq!(analysis.verdict, Verdict::Fail);
        let cost = analysis.cpu_cost_us.expect("eight pairs");
        assert!(cost.contains(20.0), "{cost:?}");
        assert!(analysis.cpu.expect("eight pairs").contains(0.2));
        let engine = &analysis.services["core-engine"];
        assert!(engine.relative.expect("eight pairs").contains(20.0 / 60.0));
        assert!(engine.cost_us.expect("eight pairs").contains(20.0));
        assert!((engine.control_cpu_us.expect("eight pairs") - 60.0).abs() < 0.1);
        let gateway = &analysis.services["api-gateway"];
        assert_eq!(gateway.relative.map(|e| e.estimate), Some(0.0));
        assert_eq!(gateway.cost_us.map(|e| e.estimate), Some(0.0));
        // 20 µs is 1% of a 2 ms request.
        let break_even = analysis.break_even_us.expect("a positive cost");
        assert!((break_even - 2000.0).abs() < 100.0, "{break_even}");
    }

    #[test]
    fn page_faults_are_compared_per_service_where_both_arms_counted_them() {
        let mut trials = experiment(0.0);
        for t in &mut trials {
            let engine = if t.arm == ArmName::Treatment {
                2.0
            } else {
                16.5
            };
            t.minor_faults = BTreeMap::from([("core-engine".to_owned(), engine)]);
        }
        let a = analyse(&trials, CLAIM);
        let engine = a.services["core-engine"].faults.expect("both arms counted");
        assert_eq!((engine.control, engine.treatment), (16.5, 2.0));
        assert!(engine.differ());
        assert_eq!(a.services["api-gateway"].faults, None, "never counted");

        for t in &mut trials {
            t.minor_faults = BTreeMap::from([("core-engine".to_owned(), 0.4)]);
        }
        let a = analyse(&trials, CLAIM);
        assert!(!a.services["core-engine"].faults.expect("counted").differ());
    }

    #[test]
    fn no_difference_is_not_a_failure_and_its_interval_holds_zero() {
        let analysis = analyse(&experiment(0.0), CLAIM);
        assert_ne!(analysis.verdict, Verdict::Fail);
        assert!(analysis.cpu.expect("eight pairs").contains(0.0));
        assert!(analysis.smallest_detectable.expect("eight pairs") > 0.0);
    }

    #[test]
    fn a_claim_on_latency_is_judged_on_latency() {
        let mut trials = experiment(20.0);
        let claim = Claim {
            metric: ClaimMetric::P99,
            bound: 0.05,
        };
        // CPU went up 20%, p99 did not move at all.
        assert_eq!(analyse(&trials, claim).verdict, Verdict::Pass);
        for t in trials.iter_mut().filter(|t| t.arm == ArmName::Treatment) {
            t.p99_us = 1500;
        }
        assert_eq!(analyse(&trials, claim).verdict, Verdict::Fail);
    }

    #[test]
    fn unpaired_and_empty_trials_are_left_out() {
        let mut trials = experiment(20.0);
        trials.pop(); // the last treatment trial never ran
        trials[0].sent = 0; // and the first control trial sent nothing
        let analysis = analyse(&trials, CLAIM);
        assert_eq!(analysis.pairs, 6);
        assert_eq!(analysis.verdict, Verdict::Fail);
        trials.truncate(6);
        let analysis = analyse(&trials, CLAIM);
        assert_eq!(analysis.pairs, 2);
        assert_eq!(analysis.verdict, Verdict::Inconclusive);
        assert_eq!(analysis.cpu, None);
    }

    #[test]
    fn instruction_counts_give_medians_and_ranges_per_repeat() {
        let count = |control: f64, treatment: f64| InstructionCount {
            control: [("a".to_owned(), control), ("b".to_owned(), 100.0)].into(),
            treatment: [("a".to_owned(), treatment), ("b".to_owned(), 100.0)].into(),
        };
        let counts = count_instructions(
            400,
            20.0,
            vec![
                count(100.0, 110.0),
                count(100.0, 130.0),
                count(100.0, 120.0),
            ],
        );
        assert_eq!(counts.control, Some(200.0));
        assert_eq!(counts.treatment, Some(220.0));
        let relative = counts.relative.expect("three counts");
        assert!((relative.median - 0.10).abs() < 1e-12);
        assert!((relative.low - 0.05).abs() < 1e-12 && (relative.high - 0.15).abs() < 1e-12);
        assert_eq!(
            counts.cost,
            Some(Spread {
                median: 20.0,
                low: 10.0,
                high: 30.0
            })
        );
        assert!((counts.services["a"].median - 0.2).abs() < 1e-12);
        assert_eq!(counts.services["b"].median, 0.0);
        let none = count_instructions(400, 20.0, Vec::new());
        assert_eq!((none.control, none.relative), (None, None));
    }

    #[test]
    fn attribution_gives_what_each_arm_adds_to_the_one_before() {
        // Control 100 µs; step 0 adds 5 µs to the engine, step 1 another 10, the treatment 20
        // more in the gateway; a little noise on every arm.
        let noise = [0.4, -0.3, 0.1, -0.5, 0.2, 0.0, -0.1, 0.3];
        let trials: Vec<TrialResult> = noise
            .iter()
            .enumerate()
            .flat_map(|(pair, n)| {
                [
                    trial(ArmName::Control, pair, 60.0 + n, 40.0, 1000),
                    trial(ArmName::Step(0), pair, 65.0 - n, 40.0, 1000),
                    trial(ArmName::Step(1), pair, 75.0 + n, 40.0, 1000),
                    trial(ArmName::Treatment, pair, 75.0 - n, 60.0, 1000),
                ]
            })
            .collect();
        assert!(attribute(&trials, 0).is_empty());
        let steps = attribute(&trials, 2);
        let arms: Vec<ArmName> = steps.iter().map(|s| s.arm).collect();
        assert_eq!(
            arms,
            [ArmName::Step(0), ArmName::Step(1), ArmName::Treatment]
        );
        for (step, added, service) in [
            (0, 5.0, "core-engine"),
            (1, 10.0, "core-engine"),
            (2, 20.0, "api-gateway"),
        ] {
            let cost = steps[step].cost_us.expect("eight pairs");
            assert!(cost.contains(added), "{step}: {cost:?}");
            assert!(
                steps[step]
                    .share
                    .expect("eight pairs")
                    .contains(added / 100.0)
            );
            let own = steps[step].services[service].expect("eight pairs");
            assert!(own.contains(added), "{step}: {own:?}");
        }
        // The steps add up to the whole cost.
        let whole = analyse(&trials, CLAIM).cpu_cost_us.expect("eight pairs");
        let sum: f64 = steps
            .iter()
            .map(|s| s.cost_us.expect("pairs").estimate)
            .sum();
        assert!(whole.contains(sum), "{sum} against {whole:?}");
    }
}
