//! `--metrics-token-file` on the real processes: the metrics endpoints of both services answer
//! only a scrape with the token (the scheme in any case), health and the API stay open, the token
//! never reaches a log, and a token file that cannot serve is refused at start, naming the file.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::{ENGINE, GATEWAY, Metrics, System, SystemOptions, strings};

/// A fresh token per test process: what the logs are searched for.
fn token() -> String {
    format!("mt-{}-{:x}-secret", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A directory of token files, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("engine-metrics-auth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("scratch directory");
        Scratch(path)
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("token file written");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GET `url` with these `Authorization` values; the status, `WWW-Authenticate` and body.
async fn get(
    http: &reqwest::Client,
    url: &str,
    authorization: &[&str],
) -> (u16, Option<String>, String) {
    let mut request = http.get(url);
    for value in authorization {
        request = request.header("authorization", *value);
    }
    let response = request.send().await.expect("reachable");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, challenge, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_only_the_token_and_health_and_the_api_stay_open() {
    let scratch = Scratch::new("served");
    let secret = token();
    // Surrounding whitespace is not part of the token.
    let file = scratch.file("token", format!("  {secret}\n").as_bytes());
    let flag = strings(&["--metrics-token-file", &file.display().to_string()]);
    let system = System::start(SystemOptions {
        engine_args: flag.clone(),
        gateway_args: flag,
        ..SystemOptions::default()
    })
    .await;
    let urls = [
        format!("http://{}/api/v1/metrics", system.gateway.addr("http")),
        system.engine_metrics_url(),
    ];
    let wrong = format!("Bearer {secret}x");
    let truncated = format!("Bearer {}", &secret[..secret.len() - 1]);
    let right = format!("Bearer {secret}");
    let lower = format!("bearer {secret}");
    let upper = format!("BEARER {secret}");
    for url in &urls {
        for refused in [
            &[][..],
            &[wrong.as_str()],
            &[truncated.as_str()],
            &[secret.as_str()],
            &[format!("Basic {secret}").as_str()],
            // Two headers are ambiguous, even if one is right.
            &[right.as_str(), wrong.as_str()],
        ] {
            let (status, challenge, body) = get(&system.http, url, refused).await;
            assert_eq!(status, 401, "{url} with {refused:?}: {body}");
            assert_eq!(
                challenge.as_deref(),
                Some(r#"Bearer realm="metrics""#),
                "{url}"
            );
            assert!(!body.contains(&secret), "{body}");
        }
        for admitted in [&right, &lower, &upper] {
            let (status, _, body) = get(&system.http, url, &[admitted]).await;
            assert_eq!(status, 200, "{url} with the token: {body}");
            let metrics = Metrics::parse(&body);
            assert!(
                metrics.has_family("process_cpu_seconds_total"),
                "{url}: {body}"
            );
        }
    }

    // Health: the gateway's route and the engine's gRPC service need nothing.
    let (status, _, _) = get(
        &system.http,
        &format!("http://{}/health", system.gateway.addr("http")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", system.engine.addr("grpc")))
            .expect("url")
            .connect()
            .await
            .expect("engine reachable");
    let serving = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "core_engine.v1.CoreEngineService".into(),
        })
        .await
        .expect("health check without a token")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The API: a request through both services, no token needed, counted as before.
    let response = system
        .fetch(
            json!({"symbols": ["AAPL"], "source_id": "yahoo_finance", "window": 100}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, _, gateway_metrics) = get(&system.http, &urls[0], &[&right]).await;
    assert_eq!(
        Metrics::parse(&gateway_metrics).get(
            r#"http_requests_total{method="POST",path="/api/v1/market-data/fetch",status="200"}"#
        ),
        1.0,
        "{gateway_metrics}"
    );

    let (gateway_logs, engine_logs) = system.stop().await;
    for (service, logs) in [("gateway", gateway_logs), ("engine", engine_logs)] {
        let ready = logs
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.ends_with("ready")))
            .unwrap_or_else(|| panic!("{service}: no ready log line: {logs:#?}"));
        assert_eq!(ready["metrics_auth"], true, "{ready}");
        for line in &logs {
            assert!(
                !line.to_string().contains(&secret),
                "{service} logged the token: {line}"
            );
        }
    }
}

/// Starts `program` with `args` and `env`; it must exit with a failure, printing no ready line,
/// within 30 s. Its stderr.
async fn refused_start(program: &str, args: &[String], env: &[(&str, &Path)]) -> String {
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .args(args)
        .env("RUST_LOG", "info")
        .env("OTEL_SDK_DISABLED", "true")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not exit within 30 s"))
        .expect("the service runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{program} started: {stderr}");
    assert!(
        stdout.is_empty(),
        "{program} printed a ready line: {stdout}"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_that_cannot_serve_is_refused_at_start_naming_the_file() {
    let scratch = Scratch::new("refused");
    let secret = token();
    let cases = [
        (scratch.0.join("missing"), "No such file"),
        (scratch.0.clone(), "not a regular file"),
        (scratch.file("empty", b" \n"), "empty"),
        (
            scratch.file("long", "t".repeat(5000).as_bytes()),
            "longer than 4096 bytes",
        ),
        (
            scratch.file("spaced", format!("{secret} and more").as_bytes()),
            "not visible ASCII",
        ),
    ];
    let listen = |program: &str| {
        if program == ENGINE {
            strings(&[
                "--grpc-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
        } else {
            strings(&["--listen", "127.0.0.1:0"])
        }
    };
    for (program, variable) in [
        (ENGINE, "ENGINE_METRICS_TOKEN_FILE"),
        (GATEWAY, "GATEWAY_METRICS_TOKEN_FILE"),
    ] {
        for (file, why) in &cases {
            let expected = format!("metrics token file {}: ", file.display());
            // The flag ...
            let mut args = listen(program);
            args.extend(strings(&[
                "--metrics-token-file",
                &file.display().to_string(),
            ]));
            let stderr = refused_start(program, &args, &[]).await;
            assert!(
                stderr.contains(&expected) && stderr.contains(why),
                "{program} {file:?}: {stderr}"
            );
            assert!(!stderr.contains(&secret), "{program}: {stderr}");
            // ... and its environment variable.
            let stderr = refused_start(program, &listen(program), &[(variable, file)]).await;
            assert!(
                stderr.contains(&expected) && stderr.contains(why),
                "{program} {variable}: {stderr}"
            );
        }
    }
}
