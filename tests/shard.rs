//! Sharded runs end to end: shard processes of the harness load one external bundled system
//! together, and `harness merge` makes one run of them: counts that add up, percentiles that are
//! exactly those of the union of the shards' histograms, thresholds judged on the whole fleet,
//! and fleets that are not whole refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::run::Run;

/// Runs shards `indices` of `count` at once against `gateway`, each with `args` besides; their
/// outputs in shard order.
fn fleet(run: &Run, gateway: &str, count: u64, indices: &[u64], args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = indices
        .iter()
        .map(|i| {
            let shard = format!("{i}/{count}");
            let mut all = vec!["run", "scenarios/smoke.yaml", "--gateway", gateway];
            all.extend_from_slice(&["--shard", &shard]);
            all.extend_from_slice(args);
            run.command(&all)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("shard starts")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("shard ends"))
        .collect()
}

fn shard_file(run: &Run, index: u64) -> PathBuf {
    run.out
        .join("smoke")
        .join(format!("shard-{index}"))
        .join("result.json")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

fn merge(files: &[PathBuf], out: &Path) -> Output {
    let mut command = std::process::Command::new(support::run::HARNESS);
    command.arg("merge").args(files).arg("--out").arg(out);
    command.output().expect("merge runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A free loopback port (free when chosen): where no gateway listens.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn histogram(text: &Value) -> hdrhistogram::Histogram<u64> {
    harness::result::decode_histogram(text.as_str().expect("histogram")).expect("decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_against_one_system_merge_into_the_exact_fleet() {
    let logs = Run::new("shard-services");
    let system = support::run::bundled_services(&logs).await;
    let gateway = format!(
        "http://{}",
        system.gateway.address("http").expect("gateway address")
    );
    let checked = tokio::task::spawn_blocking(move || check_fleets(&gateway)).await;
    system.stop().await;
    checked.expect("fleets ran as expected");
    logs.assert_no_leftovers();
}

fn check_fleets(gateway: &str) {
    // Fleet A: 3 shards at 150/s in all, meeting at the time the first of them wrote. Each
    // shard alone holds `rps < 100` (50/s); the fleet (150/s) does not.
    let a = Run::new("shard-a");
    let outputs = fleet(
        &a,
        gateway,
        3,
        &[1, 2, 3],
        &[
            "--set",
            "load.phases.0.constant.rate=150",
            "--set",
            "thresholds.0=rps < 100",
        ],
    );
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(
            output.status.code(),
            Some(0),
            "shard {}: {}",
            i + 1,
            text(output)
        );
    }
    let files: Vec<PathBuf> = (1..=3).map(|i| shard_file(&a, i)).collect();
    let shards: Vec<Value> = files.iter().map(|f| read(f)).collect();
    for shard in &shards {
        assert_eq!(
            shard["thresholds"][0]["passed"], true,
            "{:#}",
            shard["thresholds"]
        );
    }
    let merged_dir = a.out.join("merged");
    let output = merge(&files, &merged_dir);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let merged = read(&merged_dir.join("smoke").join("result.json"));
    assert_eq!(
        merged["thresholds"][0]["passed"], false,
        "{:#}",
        merged["thresholds"]
    );
    assert!(merged.get("shard").is_none());
    assert_eq!(merged["fleet"]["count"], 3);
    // Every arrival of the schedule once: 150/s for 2 s.
    let sum = |key: &str| -> u64 {
        shards
            .iter()
            .map(|s| s["load"][key].as_u64().expect(key))
            .sum()
    };
    assert_eq!(sum("sent"), 300);
    assert_eq!(merged["load"]["sent"], 300);
    assert_eq!(merged["load"]["completed"], sum("completed"));
    assert_eq!(merged["load"]["unexpected"], sum("unexpected"));
    let per_second: u64 = merged["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["sent"].as_u64().expect("sent"))
        .sum();
    assert_eq!(per_second, 300);
    // The fleet's percentiles are those of the union of the shards' histograms, bit for bit.
    for (k, kind) in merged["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .enumerate()
    {
        let mut union =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        for shard in &shards {
            union
                .add(histogram(&shard["kinds"][k]["latency_histogram"]))
                .expect("adds");
        }
        assert_eq!(
            histogram(&kind["latency_histogram"]),
            union,
            "{}",
            kind["name"]
        );
        for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            assert_eq!(kind["latency"][key], union.value_at_quantile(q), "{key}");
        }
        assert_eq!(kind["latency"]["max"], union.max());
        assert_eq!(kind["sent"], union.len());
    }
    assert!(merged_dir.join("smoke").join("report.html").is_file());

    // Fleet B: 2 shards, the start given; `rps > 100` fails on each shard (75/s) and holds
    // for the fleet.
    let b = Run::new("shard-b");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3;
    let b_args = [
        "--set",
        "load.phases.0.constant.rate=150",
        "--set",
        "thresholds.0=rps > 100",
    ];
    let start_at = start.to_string();
    let mut with_start = b_args.to_vec();
    with_start.extend_from_slice(&["--start-at", &start_at]);
    let outputs = fleet(&b, gateway, 2, &[1, 2], &with_start);
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
    }
    let b_files: Vec<PathBuf> = (1..=2).map(|i| shard_file(&b, i)).collect();
    for file in &b_files {
        let shard = read(file);
        assert_eq!(shard["thresholds"][0]["passed"], false);
        assert_eq!(
            shard["shard"]["planned_start_unix_ms"].as_u64(),
            Some(start * 1_000)
        );
    }
    let output = merge(&b_files, &b.out.join("merged"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Shards of different scenarios (the threshold differs): refused, both named.
    let output = merge(
        &[files[0].clone(), b_files[1].clone()],
        &b.out.join("mixed"),
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("not of one fleet"), "{said}");
    assert!(
        said.contains("shard-a") && said.contains("shard-b"),
        "{said}"
    );

    // A missing shard: refused, named.
    let output = merge(&files[..2], &a.out.join("partial"));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("shard 3/3 missing"),
        "{}",
        text(&output)
    );

    // A shard that failed (its gateway was not there): an incomplete fleet, exit 3.
    let c = Run::new("shard-c");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let outputs = fleet(&c, &dead, 2, &[2], &b_args);
    assert_eq!(outputs[0].status.code(), Some(3), "{}", text(&outputs[0]));
    let output = merge(
        &[b_files[0].clone(), shard_file(&c, 2)],
        &c.out.join("merged"),
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("incomplete fleet") && said.contains("shard 2/2 failed"),
        "{said}"
    );
}
