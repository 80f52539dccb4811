//! `system.managed.metrics_auth` through `harness run`: the services require a token the harness
//! makes for the run, the harness sends it when it scrapes them and the reconciliation passes, the
//! token's private file is gone when the run ends, and the token is in none of the run's outputs.
//! A scrape without the token is refused before any load (exit 3), never passed.

mod support;

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::run::Run;
use support::scratch::Scratch;

/// `scenarios/verify.yaml` with `edits` applied (each `from` must occur exactly once).
fn scenario(run: &Run, edits: &[(&str, &str)]) -> String {
    let mut text = include_str!("../scenarios/verify.yaml").to_owned();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} not unique");
        text = text.replace(from, to);
    }
    run.write_scenario("verify.yaml", &text)
}

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The files below `dir` that contain `secret`.
fn holding(dir: &Path, secret: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).expect("readable file");
            bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes())
        })
        .collect()
}

/// The token file the run makes below `tmp`, read while the run is going; `None` if the harness
/// exits first.
fn watch_for_token(tmp: &Path, child: &mut std::process::Child) -> Option<(PathBuf, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let made = std::fs::read_dir(tmp)
            .expect("the run's temporary directory")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("token"))
            .find(|path| path.is_file());
        if let Some(path) = made
            && let Ok(token) = std::fs::read_to_string(&path)
            && !token.is_empty()
        {
            return Some((path, token));
        }
        if child.try_wait().expect("wait").is_some() || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_managed_run_with_metrics_auth_reconciles_and_its_token_leaks_nowhere() {
    let run = Run::new("metrics-auth");
    let path = scenario(
        &run,
        &[(
            "    tracing: true\n",
            "    tracing: true\n    metrics_auth: true\n",
        )],
    );
    // The harness's temporary directory, so that the token file can be found (and its removal
    // seen); the outputs go to the run's own directory, elsewhere.
    let tmp_dir = Scratch::new(&format!("{}-tmp", run.marker));
    let tmp = tmp_dir.path();
    let results = run.out.clone();
    let junit = results.join("junit.xml");
    let summary = results.join("summary.json");
    let mut command = run.command(&[
        "run",
        &path,
        "--junit",
        &junit.display().to_string(),
        "--summary-json",
        &summary.display().to_string(),
    ]);
    command
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("harness starts");
    let (token_path, token) = watch_for_token(tmp, &mut child).unwrap_or_else(|| {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        panic!(
            "the run made no token file below {}: {stderr}",
            tmp.display()
        )
    });
    let mode = std::fs::metadata(&token_path)
        .map(|m| m.permissions().mode() & 0o777)
        .ok();
    let output: Output = child.wait_with_output().expect("harness ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result = run.result("verify");
    let metrics = &result["verification"]["metrics"];
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{stderr}\n{metrics:#}"
    );

    // The token: fresh, private, outside the outputs, and gone with the run.
    assert_eq!(token.len(), 64, "256 random bits as hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // Read while the run went on; the file may already be gone by the time its mode is asked.
    assert!(mode.is_none_or(|m| m == 0o600), "{mode:?}");
    assert!(
        !token_path.starts_with(&results),
        "{}",
        token_path.display()
    );
    assert_eq!(
        std::fs::read_dir(tmp).expect("tmp").count(),
        0,
        "the token's directory is left behind"
    );

    // The direct scrape, with the token, reconciled the load.
    assert_eq!(metrics["reconciled"], true, "{metrics:#}");
    let scrape = &metrics["sources"][0];
    assert!(
        scrape["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("direct scrape")),
        "{scrape:#}"
    );
    assert_eq!(scrape["passed"], true, "{scrape:#}");
    assert!(
        scrape["checks"].as_array().is_some_and(|c| c.len() > 5),
        "{scrape:#}"
    );
    // Both services did require it.
    let logs = results.join("verify");
    for log in ["engine.log", "gateway.log"] {
        let text = std::fs::read_to_string(logs.join(log)).expect("service log");
        assert!(text.contains(r#""metrics_auth":true"#), "{log}: {text}");
    }

    // Nowhere in the outputs: result.json, the report, JUnit, the summary, the services' logs,
    // the harness's own output.
    let written: Vec<String> = files(&results)
        .iter()
        .map(|p| {
            p.strip_prefix(&results)
                .expect("below")
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "verify/result.json",
        "verify/report.html",
        "verify/engine.log",
        "verify/gateway.log",
        "junit.xml",
        "summary.json",
    ] {
        assert!(
            written.iter().any(|w| w == expected),
            "{expected} not in {written:?}"
        );
    }
    assert_eq!(holding(&results, &token), Vec::<PathBuf>::new());
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    // The search does find the token where it is.
    let planted = results.join("verify").join("planted.txt");
    std::fs::write(&planted, format!("x {token} y")).expect("planted");
    assert_eq!(holding(&results, &token), vec![planted]);
    run.assert_no_leftovers();
}

#[test]
fn a_scrape_without_the_token_stops_the_run_before_any_load() {
    let run = Run::new("metrics-auth-refused");
    // The services require a token the harness was not told of: its scrape must be refused and
    // the run stopped, not reconciled as if it had read the metrics.
    let token = run.out.join("own-token");
    std::fs::create_dir_all(&run.out).expect("output directory");
    std::fs::write(&token, "a-token-the-harness-does-not-know\n").expect("token file");
    let flag = format!("args: [--metrics-token-file, {}]", token.display());
    let path = scenario(
        &run,
        &[("    engine:\n", &format!("    engine:\n      {flag}\n"))],
    );
    let output = run.run(&["run", &path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the metrics source is not ready") && stderr.contains("401"),
        "{stderr}"
    );
    let result = run.result("verify");
    assert_eq!(
        result["load"]["sent"].as_u64().unwrap_or(0),
        0,
        "{result:#}"
    );
    run.assert_no_leftovers();
}
