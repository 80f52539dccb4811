//! `harness run --shard I/N`: one shard of a fleet. The shard sends every N-th arrival of the
//! schedule (the load core's [`Segment`]), takes its share of the traced sample, and starts its
//! schedule at the fleet's common wall-clock time: `--start-at`, or the time the first shard to
//! get there wrote beside the shards' results.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::exit::RunError;
use crate::load::Segment;

/// `--shard I/N`: shard `index` (from 1) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 1 to `count`.
    pub index: u64,
    /// Shards in the fleet.
    pub count: u64,
}

/// The most shards a fleet may have: far more than any cluster runs, few enough that a typo
/// such as `1/10000000` is refused.
const MAX_SHARDS: u64 = 10_000;

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?}: expected I/N, shard I of N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 2/4"
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = index.trim().parse().map_err(|_| bad())?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The load core's share of the schedule.
    pub(crate) fn segment(&self) -> Segment {
        Segment::new(self.index - 1, self.count).expect("1 <= index <= count, checked on parsing")
    }

    /// The shard's output directory below the scenario's: `shard-I`.
    pub(crate) fn dir_name(&self) -> String {
        format!("shard-{}", self.index)
    }
}

/// `--start-at`: an RFC 3339 time (`2026-12-06T10:00:00Z`) or Unix seconds (`1796551200`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl FromStr for StartAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<u64>() {
            return SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(seconds))
                .map(StartAt)
                .ok_or_else(|| format!("{text}: beyond any clock"));
        }
        let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            format!(
                "{text:?}: expected an RFC 3339 time (2026-12-06T10:00:00Z) or Unix seconds: {e}"
            )
        })?;
        let ms =
            u64::try_from(time.timestamp_millis()).map_err(|_| format!("{text}: before 1970"))?;
        Ok(StartAt(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)))
    }
}

/// How far ahead of itself the first shard to get there sets the fleet's start, without
/// `--start-at`: time for shards started together to finish their warm-up and join.
pub(crate) const RENDEZVOUS_LEAD: Duration = Duration::from_secs(3);

/// The file beside the shards' directories in which the first shard writes the common start.
pub(crate) const RENDEZVOUS_FILE: &str = "start-at";

/// What a shard's run needs to start with its fleet, and what it learnt doing so.
#[derive(Debug)]
pub(crate) struct Sharding {
    pub(crate) shard: Shard,
    given: Option<SystemTime>,
    /// `OUT/<scenario>/start-at`.
    rendezvous: PathBuf,
    /// A start older than this was another fleet's.
    length: Duration,
    /// The common start, and when this shard's schedule began.
    pub(crate) started: Mutex<Option<(SystemTime, SystemTime)>>,
    /// When the warm-up ended and when the measured load ended: the window in which the fleet's
    /// metrics are read (see `crate::merge`).
    window: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl Sharding {
    pub(crate) fn new(
        shard: Shard,
        given: Option<SystemTime>,
        scenario_dir: &Path,
        length: Duration,
    ) -> Self {
        Sharding {
            shard,
            given,
            rendezvous: scenario_dir.join(RENDEZVOUS_FILE),
            length,
            started: Mutex::new(None),
            window: Mutex::new((None, None)),
        }
    }

    /// Waits for the fleet's common start (returned at once when it has passed: the lateness is
    /// recorded rather than the schedule bunched up), and remembers both times.
    pub(crate) async fn wait_for_start(&self, stop: &CancellationToken) -> Result<(), RunError> {
        // The warm-up is over when the shard comes to wait for the others.
        if let Ok(mut window) = self.window.lock() {
            window.0 = Some(SystemTime::now());
        }
        let planned = match self.given {
            Some(time) => time,
            None => self.rendezvous().map_err(|error| {
                RunError::Incomplete(anyhow::anyhow!(
                    "the fleet's start time in {}: {error}",
                    self.rendezvous.display()
                ))
            })?,
        };
        if let Ok(wait) = planned.duration_since(SystemTime::now()) {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Ok(mut started) = self.started.lock() {
            *started = Some((planned, SystemTime::now()));
        }
        Ok(())
    }

    /// The start another shard of this fleet wrote, or one written now (`RENDEZVOUS_LEAD`
    /// ahead) by the first shard to get here. A start that ended before this fleet could have
    /// begun (more than the scenario's length ago) was an earlier fleet's and is replaced.
    fn rendezvous(&self) -> std::io::Result<SystemTime> {
        use std::io::Write as _;
        let now = SystemTime::now();
        let read = || -> std::io::Result<Option<SystemTime>> {
            match crate::bounded::read_text(&self.rendezvous, 64) {
                Ok(text) => Ok(text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        };
        let current = |time: &SystemTime| {
            now.duration_since(*time)
                .map_or(true, |ago| ago <= self.length + RENDEZVOUS_LEAD)
        };
        if let Some(time) = read()?.filter(current) {
            return Ok(time);
        }
        let planned = now + RENDEZVOUS_LEAD;
        let ms = planned
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        // Written whole under a name of its own, then renamed: a reader sees no half of it.
        // Two shards that both find no current start each write one; both then read back the
        // last written, so they agree.
        let temporary = self
            .rendezvous
            .with_extension(format!("{}.partial", std::process::id()));
        let mut file = std::fs::File::create(&temporary)?;
        writeln!(file, "{ms}")?;
        drop(file);
        std::fs::rename(&temporary, &self.rendezvous)?;
        Ok(read()?.unwrap_or(planned))
    }

    /// Records that the measured load has ended: every answer received or given up on.
    pub(crate) fn load_ended(&self) {
        if let Ok(mut window) = self.window.lock() {
            window.1 = Some(SystemTime::now());
        }
    }

    /// When the warm-up ended and when the measured load ended, as far as the shard got.
    pub(crate) fn load_window(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        self.window.lock().map_or((None, None), |w| *w)
    }

    /// The common start and this shard's lateness against it, once it started.
    pub(crate) fn times(&self) -> Option<(SystemTime, SystemTime)> {
        self.started.lock().ok().and_then(|s| *s)
    }
}

/// Unix milliseconds of `time`.
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Unix microseconds of `time`.
pub(crate) fn unix_us(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_start_times_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(
            "2/4".parse::<Shard>().map(|s| s.segment()),
            Ok(Segment::new(1, 4).expect("in range"))
        );
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "1/100000", "-1/2"] {
            let error = bad.parse::<Shard>().expect_err(bad);
            assert!(error.contains("expected I/N"), "{error}");
        }
        let at: StartAt = "2026-12-06T10:00:00Z".parse().expect("RFC 3339");
        let unix: StartAt = "1796551200".parse().expect("Unix seconds");
        assert_eq!(at, unix);
        let error = "tomorrow".parse::<StartAt>().expect_err("words");
        assert!(error.contains("RFC 3339"), "{error}");
    }

    #[tokio::test]
    async fn the_first_shard_sets_the_start_and_the_others_take_it() {
        let dir = std::env::temp_dir().join(format!("harness-rendezvous-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let _ = std::fs::remove_file(dir.join(RENDEZVOUS_FILE));
        let length = Duration::from_secs(2);
        let first = Sharding::new(Shard { index: 1, count: 2 }, None, &dir, length);
        let second = Sharding::new(Shard { index: 2, count: 2 }, None, &dir, length);
        let planned = first.rendezvous().expect("written");
        assert!(planned > SystemTime::now());
        assert_eq!(second.rendezvous().expect("read"), planned);
        // An earlier fleet's start is replaced, not joined.
        let old = SystemTime::now() - Duration::from_secs(600);
        std::fs::write(dir.join(RENDEZVOUS_FILE), format!("{}\n", unix_ms(old))).expect("write");
        assert!(second.rendezvous().expect("replaced") > SystemTime::now());
        // A start given on the command line is kept, and one already past starts at once.
        let given = Sharding::new(
            Shard { index: 1, count: 2 },
            Some(SystemTime::now() - Duration::from_secs(1)),
            &dir,
            length,
        );
        given
            .wait_for_start(&CancellationToken::new())
            .await
            .expect("starts");
        let (planned, started) = given.times().expect("started");
        assert!(started.duration_since(planned).expect("late") >= Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
