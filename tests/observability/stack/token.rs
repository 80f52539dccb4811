//! The metrics token across the stack: both services require it, Prometheus sends it, all from
//! one git-ignored file with a committed example beside it.

use super::{Defaults, Files, PrometheusConfig, Stack, mount_targets, running};

/// The metrics token: made by whoever runs the stack, ignored by git, with an example beside it.
pub(super) const TOKEN_SOURCE: &str = "./observability/metrics-token";
pub(super) const TOKEN_EXAMPLE: &str = "observability/metrics-token.example";

impl Stack<'_> {
    /// Both services require the token, and Prometheus sends it, from one file: each names a
    /// path where `observability/metrics-token` is mounted. That file is ignored by git and has
    /// its example beside it.
    pub(super) fn metrics_token(
        &mut self,
        prometheus: &PrometheusConfig,
        defaults: &Defaults,
        files: &Files,
    ) {
        let compose = self.compose;
        for (program, variable) in [
            (defaults.engine_job, "ENGINE_METRICS_TOKEN_FILE"),
            (defaults.gateway_job, "GATEWAY_METRICS_TOKEN_FILE"),
        ] {
            let Some((name, service)) = running(compose, program) else {
                continue;
            };
            match service.environment.get(variable) {
                None => self.problem(format!(
                    "{name}: {variable} is not set, so its metrics are open to anyone"
                )),
                Some(path) if mount_targets(service).get(path.as_str()) != Some(&TOKEN_SOURCE) => {
                    self.problem(format!(
                        "{name}: {variable}={path}, where {TOKEN_SOURCE} is not mounted"
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some((name, service)) = running(compose, "prom/prometheus") {
            let config_dir = service
                .command
                .iter()
                .find_map(|a| a.strip_prefix("--config.file="))
                .unwrap_or("/etc/prometheus/prometheus.yml")
                .rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_owned());
            let mounts = mount_targets(service);
            for job in [defaults.engine_job, defaults.gateway_job] {
                let Some(scrape) = prometheus.scrape_configs.iter().find(|s| s.job_name == job)
                else {
                    continue;
                };
                let auth = scrape.authorization.as_ref();
                let bearer = auth
                    .and_then(|a| a.kind.as_deref())
                    .is_none_or(|kind| kind.eq_ignore_ascii_case("bearer"));
                match auth.and_then(|a| a.credentials_file.as_deref()) {
                    Some(file) if bearer => {
                        let in_container = if file.starts_with('/') {
                            file.to_owned()
                        } else {
                            format!("{config_dir}/{file}")
                        };
                        if mounts.get(in_container.as_str()) != Some(&TOKEN_SOURCE) {
                            self.problem(format!(
                                "prometheus.yml job {job}: credentials_file {file} is \
                                 {in_container} in {name}, where {TOKEN_SOURCE} is not mounted"
                            ));
                        }
                    }
                    _ => self.problem(format!(
                        "prometheus.yml job {job}: sends no bearer token (authorization: \
                         {{type: Bearer, credentials_file: ...}}), but the service requires one"
                    )),
                }
            }
        }
        let ignored = format!("/{}", TOKEN_SOURCE.trim_start_matches("./"));
        if !files.gitignore.lines().any(|line| line.trim() == ignored) {
            self.problem(format!(
                "{TOKEN_SOURCE} is not ignored by git: .gitignore has no line {ignored}"
            ));
        }
        if !files.token_example {
            self.problem(format!(
                "{TOKEN_EXAMPLE} does not exist, to show the form of {TOKEN_SOURCE}"
            ));
        }
    }
}
