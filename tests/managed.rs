//! The managed system and the load core against the real services: lifecycle, readiness errors,
//! and an open-loop run whose every request is answered and counted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::load::{
    Arrivals, HttpDriver, HttpRequest, HttpVersion, LoadKind, LoadPlan, Outcome, RatePhase,
    Sampling, Stop, run,
};
use harness::system::{ManagedSystem, ServiceLaunch, SystemError};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

fn tracing_off() -> BTreeMap<String, String> {
    BTreeMap::from([("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())])
}

/// Running, and not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
}

fn log_dir() -> tempdir::Dir {
    tempdir::Dir::new()
}

/// A scratch directory removed at the end of the test.
mod tempdir {
    pub(crate) struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub(crate) fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "harness-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).expect("scratch directory");
            Dir(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn start_default(dir: &tempdir::Dir) -> ManagedSystem {
    ManagedSystem::start(
        Path::new(HARNESS),
        &tracing_off(),
        &ServiceLaunch::default(),
        &ServiceLaunch::default(),
        &dir.0,
    )
    .await
    .expect("system starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_load_through_the_managed_gateway() {
    let dir = log_dir();
    let system = start_default(&dir).await;
    let pids = [system.engine.pid(), system.gateway.pid()].map(|p| p.expect("running"));
    let base = format!("http://{}", system.gateway.address("http").expect("http"));
    let driver = Arc::new(
        HttpDriver::new(&base.parse().expect("url"), tls(), HttpVersion::Auto, 2)
            .expect("an absolute base"),
    );
    let body = |json: &str| {
        Arc::new(HttpRequest::json(
            hyper::Method::POST,
            hyper::Uri::from_static("/api/v1/market-data/fetch"),
            Bytes::from(json.to_owned()),
        ))
    };
    let plan = LoadPlan {
        kinds: vec![
            LoadKind {
                name: "quote".into(),
                weight: 4,
                payloads: vec![
                    body(r#"{"symbols":["AAPL"],"source_id":"yahoo_finance","window":100}"#),
                    body(r#"{"symbols":["MSFT"],"source_id":"polygon","window":100}"#),
                ],
                expect: Outcome::Status(200),
                sampling: Sampling::NONE,
            },
            LoadKind {
                name: "bad_symbol".into(),
                weight: 1,
                payloads: vec![body(r#"{"symbols":[""],"source_id":"yahoo_finance"}"#)],
                expect: Outcome::Status(400),
                sampling: Sampling::NONE,
            },
        ],
        phases: vec![RatePhase::constant(100.0, Duration::from_secs(2))],
        arrivals: Arrivals::Uniform,
        seed: 3,
        max_in_flight: 1_000,
        timeout: Duration::from_secs(5),
        batch_window: Duration::from_micros(50),
        drain_timeout: Duration::from_secs(10),
        announce: None,
        samples: None,
        segment: None,
    };
    let report = run(driver, plan, CancellationToken::new(), |_, _| {})
        .await
        .expect("valid plan");
    assert_eq!(report.stop, Stop::Completed);
    assert_eq!(report.scheduled, 200);
    let sent: u64 = report.recorder.kinds.iter().map(|k| k.sent).sum();
    let completed: u64 = report.recorder.kinds.iter().map(|k| k.completed).sum();
    assert_eq!((sent, completed), (200, 200));
    for kind in &report.recorder.kinds {
        assert_eq!(kind.unexpected, 0, "{}: {:?}", kind.name, kind.outcomes);
    }

    system.stop().await;
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the stop");
    }
    let engine_log = std::fs::read_to_string(dir.0.join("engine.log")).expect("engine log");
    assert!(
        engine_log.lines().any(|l| l.contains("core engine ready")),
        "{engine_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_to_start_is_reported_with_its_log() {
    let dir = log_dir();
    let bad = ServiceLaunch {
        args: vec!["--fault-error-ratio".into(), "2".into()],
        ..ServiceLaunch::default()
    };
    let error = ManagedSystem::start(
        Path::new(HARNESS),
        &tracing_off(),
        &bad,
        &ServiceLaunch::default(),
        &dir.0,
    )
    .await
    .err()
    .expect("the engine refuses a ratio of 2");
    let SystemError::Exited { service, tail, .. } = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(*service, "core engine");
    assert!(tail.contains("not a ratio between 0 and 1"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_system_leaves_no_process_behind() {
    let dir = log_dir();
    let system = start_default(&dir).await;
    let pids = [system.engine.pid(), system.gateway.pid()].map(|p| p.expect("running"));
    drop(system);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(
            std::time::Instant::now() < deadline,
            "children still alive after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TLS configuration the plain-HTTP drivers ignore.
fn tls() -> rustls::ClientConfig {
    harness::tls::client_config(&harness::tls::TlsSpec::default()).expect("TLS configuration")
}
