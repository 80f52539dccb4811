//! Progress while a run goes: one live line on a terminal, plain periodic lines otherwise (CI logs),
//! nothing with `--quiet`. Written to stderr, so stdout carries only the summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::format::duration_terse;
use crate::load::Recorder;

/// The live progress of a load on stderr: a line per second with the rate, p99 and failures so
/// far, and a note where each phase begins; silent with `--quiet`.
pub(crate) struct Progress {
    mode: Mode,
    /// Start offset and label of each phase, in order.
    phases: Vec<(Duration, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Live,
    Lines,
}

impl Progress {
    /// Progress over `phases` (each one's start offset and label), or none when `quiet`.
    pub(crate) fn new(quiet: bool, phases: Vec<(Duration, String)>) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        };
        Progress { mode, phases }
    }

    /// A one-off message (warm-up starting, ...).
    pub(crate) fn note(&self, message: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{message}");
        }
    }

    /// Called by the load core as it runs: prints when a second or a phase has turned.
    pub(crate) fn tick(&self, recorder: &Recorder, elapsed: Duration) {
        if self.mode == Mode::Quiet {
            return;
        }
        let phase = self
            .phases
            .iter()
            .rev()
            .find(|(start, _)| *start <= elapsed)
            .map_or("", |(_, label)| label.as_str());
        // The last complete second's sends: the rate now, not the average so far.
        let second = elapsed.as_secs() as usize;
        let rate = second
            .checked_sub(1)
            .and_then(|s| recorder.timeline.get(s))
            .map_or(0, |s| s.sent);
        let (unexpected, dropped) = recorder
            .kinds
            .iter()
            .fold((0, 0), |(u, d), k| (u + k.unexpected, d + k.dropped));
        let p99 = duration_terse(recorder.merged_latency().value_at_quantile(0.99));
        let line = format!(
            "{phase} {:>6.1}s  {rate:>6}/s  p99 {p99:>8}  unexpected {unexpected}  dropped {dropped}",
            elapsed.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Live => write!(err, "\r\x1b[2K{line}"),
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }

    /// Ends the live line so that what follows starts on a fresh one.
    pub(crate) fn finish(&self) {
        if self.mode == Mode::Live {
            eprintln!();
        }
    }
}
