//! The fleet's metrics end to end: two shards load one external bundled system that a real
//! Prometheus scrapes, and `harness merge --prometheus` reconciles the services' counters, read
//! at two past instants, with the fleet's merged counts; a shard result that claims more answers
//! than the services gave fails that reconciliation; and without a Prometheus the merge says
//! that the metrics were not reconciled.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::prometheus::{PrometheusServer, ScrapeTarget};
use support::run::Run;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

fn merge(files: &[PathBuf], out: &Path, prometheus: Option<&str>) -> (Output, Value) {
    let mut command = std::process::Command::new(support::run::HARNESS);
    command.arg("merge").args(files).arg("--out").arg(out);
    if let Some(url) = prometheus {
        command.args(["--prometheus", url]);
    }
    let output = command.output().expect("merge runs");
    let result = read(&out.join("smoke").join("result.json"));
    (output, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_s_metrics_are_reconciled_from_prometheus() {
    let Some(binary) = support::prometheus::binary("shard_metrics") else {
        return;
    };
    let logs = Run::new("shard-metrics-services");
    let system = support::run::bundled_services(&logs).await;
    let targets = [
        ScrapeTarget {
            job: engine::gateway::DEFAULT_SERVICE_NAME,
            address: system.gateway.address("http").expect("gateway address"),
            metrics_path: "/api/v1/metrics",
            credentials_file: None,
        },
        ScrapeTarget {
            job: engine::core_engine::DEFAULT_SERVICE_NAME,
            address: system.engine.address("metrics").expect("metrics address"),
            metrics_path: "/metrics",
            credentials_file: None,
        },
    ];
    let prometheus = PrometheusServer::start(&binary, &targets).await;
    let gateway = format!(
        "http://{}",
        system.gateway.address("http").expect("gateway address")
    );
    let url = prometheus.url.clone();
    let checked = tokio::task::spawn_blocking(move || check(&gateway, &url)).await;
    system.stop().await;
    drop(prometheus);
    checked.expect("the fleet's metrics were checked as expected");
    logs.assert_no_leftovers();
}

fn check(gateway: &str, prometheus: &str) {
    let run = Run::new("shard-metrics");
    let children: Vec<_> = [1, 2]
        .iter()
        .map(|i| {
            let shard = format!("{i}/2");
            run.command(&[
                "run",
                "scenarios/smoke.yaml",
                "--gateway",
                gateway,
                "--prometheus",
                prometheus,
                "--shard",
                &shard,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("shard starts")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("shard ends");
        assert_eq!(
            output.status.code(),
            Some(0),
            "shard {}: {}",
            i + 1,
            text(&output)
        );
    }
    let files: Vec<PathBuf> = (1..=2)
        .map(|i| {
            run.out
                .join("smoke")
                .join(format!("shard-{i}"))
                .join("result.json")
        })
        .collect();
    for file in &files {
        let shard = read(file);
        assert_eq!(shard["shard"]["metrics_checks"], true, "{shard:#}");
        assert!(shard["shard"]["warmed_up_at_unix_us"].is_u64(), "{shard:#}");
        assert!(
            shard["shard"]["load_ended_at_unix_us"].is_u64(),
            "{shard:#}"
        );
        assert!(shard["verification"]["metrics"].is_null(), "{shard:#}");
    }

    // The whole fleet against the services' counters: reconciled, the gate applied.
    let merged_dir = run.out.join("merged");
    let (output, merged) = merge(&files, &merged_dir, Some(prometheus));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let metrics = &merged["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], true, "{metrics:#}");
    assert!(
        metrics["sources"][0]["checks"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{metrics:#}"
    );
    assert!(
        merged["fleet"]["metrics_not_reconciled"].is_null(),
        "{merged:#}"
    );
    let gates: Vec<&str> = merged["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .filter_map(|t| t["expression"].as_str())
        .collect();
    assert!(gates.contains(&"metrics.reconciled"), "{gates:?}");

    // A shard that claims answers the services never gave: the fleet does not reconcile.
    let mut forged = read(&files[0]);
    let count = forged["kinds"][0]["outcomes"]["200"]
        .as_u64()
        .expect("a count of 200s");
    forged["kinds"][0]["outcomes"]["200"] = Value::from(count + 7);
    let forged_file = run.out.join("forged-shard-1.json");
    std::fs::write(&forged_file, forged.to_string()).expect("forged shard");
    let forged_dir = run.out.join("forged");
    let (output, merged) = merge(
        &[forged_file, files[1].clone()],
        &forged_dir,
        Some(prometheus),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(
        merged["verification"]["metrics"]["reconciled"], false,
        "{merged:#}"
    );

    // A fleet whose last warm-up ended at its first send: no scrape can be its baseline, and
    // the merge says so rather than count warm-up requests as the fleet's.
    let mut late = read(&files[1]);
    let first_send = [&read(&files[0]), &late]
        .iter()
        .filter_map(|s| s["shard"]["load_started_at_unix_us"].as_u64())
        .min()
        .expect("the shards' starts");
    late["shard"]["warmed_up_at_unix_us"] = Value::from(first_send);
    let late_file = run.out.join("late-shard-2.json");
    std::fs::write(&late_file, late.to_string()).expect("late shard");
    let late_dir = run.out.join("late");
    let (output, merged) = merge(&[files[0].clone(), late_file], &late_dir, Some(prometheus));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let source = &merged["verification"]["metrics"]["sources"][0];
    assert!(
        source["error"]
            .as_str()
            .is_some_and(|e| e.contains("the fleet's baseline")),
        "{source:#}"
    );

    // No Prometheus named: the merge says the metrics were not reconciled, as before.
    let plain_dir = run.out.join("plain");
    let (output, merged) = merge(&files, &plain_dir, None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(merged["verification"]["metrics"].is_null(), "{merged:#}");
    assert!(
        merged["fleet"]["metrics_not_reconciled"]
            .as_str()
            .is_some_and(|t| t.contains("--prometheus")),
        "{merged:#}"
    );
}
