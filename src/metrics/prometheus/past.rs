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
        // Never past `timeout` from now, whatever `after` says (a shard result may be edited).
        let deadline = (after + timeout).min(SystemTime::now() + timeout);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::RawQuery;

    use super::*;
    use crate::testing::serve;

    /// The moment the server's series were scraped at, and the scrapes after it.
    const T: f64 = 1_700_000_000.0;

    /// A Prometheus API answering a range selector with scrapes at `T - 1` (up), `T + 0.5`
    /// (failed) and `T + 1` (up), and anything else with one sample taken at `T`; every query
    /// string it was sent is kept.
    async fn prometheus() -> (String, Arc<Mutex<Vec<String>>>) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let app = Router::new().fallback(move |RawQuery(query): RawQuery| {
            let query = query.unwrap_or_default();
            seen.lock().expect("lock").push(query.clone());
            async move {
                let body = if query.contains("%5B") {
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"job":"a","instance":"i"}},"values":[[{},"1"],[{},"0"],[{},"1"]]}}]}}}}"#,
                        T - 1.0,
                        T + 0.5,
                        T + 1.0
                    )
                } else {
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"requests_total","job":"a"}},"value":[{T},"{T}"]}}]}}}}"#
                    )
                };
                ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
            }
        });
        (serve(app).await, asked)
    }

    fn at(seconds: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    #[tokio::test]
    async fn past_snapshots_ask_for_their_instant_and_check_the_scrape_before_it() {
        let (url, asked) = prometheus().await;
        let source =
            PrometheusSource::new(&url, vec![("a".into(), r#"{job="a"}"#.into())]).expect("source");
        let snapshot = source.snapshot_at(T + 0.25).await.expect("snapshot");
        assert_eq!(snapshot[0].sum("requests_total", &[]), T);
        assert!(
            asked.lock().expect("lock")[0].ends_with("&time=1700000000.250"),
            "{:?}",
            asked.lock().expect("lock")
        );
        // The scrape at T follows a warm-up that ended a second before it: a baseline.
        source
            .scraped_between(at(T - 1.0), T + 0.25)
            .await
            .expect("a scrape between");
        // A warm-up that ended after it: no scrape in between, and the error says where.
        let error = source
            .scraped_between(at(T + 0.1), T + 0.25)
            .await
            .expect_err("no scrape between");
        assert!(
            matches!(&error, MetricsError::NoScrapeInWindow { selector, .. } if selector == r#"{job="a"}"#),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_first_scrape_after_a_moment_is_the_first_that_succeeded() {
        let (url, _) = prometheus().await;
        let source =
            PrometheusSource::new(&url, vec![("a".into(), r#"{job="a"}"#.into())]).expect("source");
        let first = source
            .first_scrape_after(at(T), Duration::from_secs(1))
            .await
            .expect("found");
        assert_eq!(
            first,
            T + 1.0,
            "the failed scrape at T + 0.5 does not count"
        );
        // Nothing after T + 1 succeeded, and the wait for it is long over.
        let error = source
            .first_scrape_after(at(T + 1.0), Duration::from_secs(1))
            .await
            .expect_err("none after");
        assert!(
            error.to_string().contains("no successful scrape"),
            "{error}"
        );
    }
}
