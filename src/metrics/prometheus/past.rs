//! Snapshots of the past: the services' series as Prometheus held them at an earlier instant, for
//! a load that no single process watched from start to end (a fleet of shards). An instant query
//! at `time=T` answers each series' latest sample at or before `T`, so a past snapshot is exact
//! when a successful scrape of every target falls where the caller needs it: after everything
//! the snapshot must include, and before anything it must not.

use std::time::{Duration, SystemTime};

use super::{POLL_INTERVAL, PrometheusSource, QueryData, TIMESTAMP_SLACK, scrape_state};
use crate::metrics::{MetricsError, Snapshot};

/// How far past a moment [`PrometheusSource::first_scrape_after`] looks for the first scrape:
/// longer than any scrape interval a service is watched with.
const LOOK_AHEAD: Duration = Duration::from_secs(300);

/// Unix seconds of `t`, as Prometheus writes its timestamps.
pub(super) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl PrometheusSource {
    /// One snapshot per service as Prometheus held it at `time` (Unix seconds).
    pub async fn snapshot_at(&self, time: f64) -> Result<Vec<Snapshot>, MetricsError> {
        let mut snapshots = Vec::with_capacity(self.targets.len());
        for (service, selector) in &self.targets {
            snapshots.push(self.series(service, selector, Some(time)).await?);
        }
        Ok(snapshots)
    }

    /// Checks that the latest scrape of every target at or before `time` succeeded and started
    /// after `after`: a snapshot at `time` then includes everything the services counted by
    /// `after`.
    pub async fn scraped_between(&self, after: SystemTime, time: f64) -> Result<(), MetricsError> {
        let mark = unix_seconds(after + TIMESTAMP_SLACK);
        for (_, selector) in &self.targets {
            let promql = format!("timestamp(up{selector}) * up{selector}");
            let response = self.query_at(&promql, Some(time)).await?;
            if let Err(state) = scrape_state(&response.data, mark) {
                return Err(MetricsError::NoScrapeInWindow {
                    url: self.base.to_string(),
                    selector: selector.clone(),
                    after: mark,
                    before: time,
                    detail: state,
                });
            }
        }
        Ok(())
    }

    /// The earliest instant (Unix seconds) by which every target has been scraped successfully
    /// after `after`: a snapshot then includes everything counted by `after`, and no more of what
    /// came later than the scrape interval lets in. Waits, up to `timeout` past `after`, for
    /// scrapes that have not happened yet.
    pub async fn first_scrape_after(
        &self,
        after: SystemTime,
        timeout: Duration,
    ) -> Result<f64, MetricsError> {
        let deadline = after + timeout;
        loop {
            match self.first_scrapes(after).await? {
                Ok(at) => return Ok(at),
                Err(error) if SystemTime::now() + POLL_INTERVAL > deadline => return Err(error),
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }

    /// [`Self::first_scrape_after`] as Prometheus knows it now: the instant, or what is missing.
    async fn first_scrapes(
        &self,
        after: SystemTime,
    ) -> Result<Result<f64, MetricsError>, MetricsError> {
        let mark = unix_seconds(after + TIMESTAMP_SLACK);
        let horizon = mark + LOOK_AHEAD.as_secs_f64();
        let mut latest = mark;
        for (_, selector) in &self.targets {
            // Every scrape in (mark - look-ahead, mark + look-ahead]: those after the mark count.
            let promql = format!("up{selector}[{}s]", 2 * LOOK_AHEAD.as_secs());
            let response = self.query_at(&promql, Some(horizon)).await?;
            let no_scrape = |detail: String| MetricsError::NoScrapeInWindow {
                url: self.base.to_string(),
                selector: selector.clone(),
                after: mark,
                before: horizon,
                detail,
            };
            let QueryData::Matrix(series) = response.data else {
                return Err(no_scrape("a range selector did not answer a matrix".into()));
            };
            if series.is_empty() {
                return Ok(Err(no_scrape("no target matches (no `up` series)".into())));
            }
            for one in &series {
                let first = one
                    .points
                    .iter()
                    .filter(|p| p.timestamp > mark && p.value == 1.0)
                    .map(|p| p.timestamp)
                    .fold(f64::INFINITY, f64::min);
                if !first.is_finite() {
                    let instance = one.labels.get("instance").map_or("?", String::as_str);
                    return Ok(Err(no_scrape(format!(
                        "{instance}: no successful scrape yet"
                    ))));
                }
                latest = latest.max(first);
            }
        }
        Ok(Ok(latest))
    }
}
