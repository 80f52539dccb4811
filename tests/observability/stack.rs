//! Agreement between `docker-compose-observability.yml`, `observability/prometheus.yml`, the
//! Grafana data sources and dashboard provider, `observability/jaeger.yaml`, and the services'
//! own defaults: the mistakes that would only show once the stack runs (a scrape on the wrong
//! port, a data source pointing at a service that does not exist, a port open beyond loopback).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;

mod token;

use token::{TOKEN_EXAMPLE, TOKEN_SOURCE};

/// What the services listen on when nothing is configured, from the engine crate itself.
pub(crate) struct Defaults {
    pub engine_job: &'static str,
    pub engine_grpc_port: u16,
    pub engine_metrics_port: u16,
    pub engine_metrics_path: &'static str,
    pub gateway_job: &'static str,
    pub gateway_port: u16,
    pub gateway_metrics_path: &'static str,
}

impl Defaults {
    pub(crate) fn of_the_services() -> Defaults {
        use engine::{core_engine, gateway};
        let port = |addr: &str| -> u16 {
            addr.parse::<SocketAddr>()
                .expect("a default listen address")
                .port()
        };
        Defaults {
            engine_job: core_engine::DEFAULT_SERVICE_NAME,
            engine_grpc_port: port(core_engine::DEFAULT_GRPC_LISTEN),
            engine_metrics_port: port(core_engine::DEFAULT_METRICS_LISTEN),
            engine_metrics_path: core_engine::METRICS_ROUTE,
            gateway_job: gateway::DEFAULT_SERVICE_NAME,
            gateway_port: port(gateway::DEFAULT_LISTEN),
            gateway_metrics_path: gateway::METRICS_ROUTE,
        }
    }
}

/// Ports of the third-party services: their own defaults, which the harness's flags and the
/// README use (`--jaeger http://127.0.0.1:16686 --prometheus http://127.0.0.1:9090`).
const OTLP_GRPC_PORT: u16 = 4317;
const OTLP_HTTP_PORT: u16 = 4318;
const JAEGER_QUERY_PORT: u16 = 16686;
const PROMETHEUS_PORT: u16 = 9090;
const GRAFANA_PORT: u16 = 3000;

/// The files, as text, so that tests can hand in altered copies.
pub(crate) struct Files {
    pub compose: String,
    pub prometheus: String,
    pub jaeger: String,
    pub datasources: String,
    pub dashboard_provider: String,
    pub env_example: String,
    pub gitignore: String,
    /// Whether `observability/metrics-token.example` exists beside the (ignored) token file.
    pub token_example: bool,
}

impl Files {
    pub(crate) fn read(root: &Path) -> Files {
        let read = |path: &str| {
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        Files {
            compose: read("docker-compose-observability.yml"),
            prometheus: read("observability/prometheus.yml"),
            jaeger: read("observability/jaeger.yaml"),
            datasources: read("observability/grafana/provisioning/datasources/datasources.yml"),
            dashboard_provider: read(
                "observability/grafana/provisioning/dashboards/dashboards.yml",
            ),
            env_example: read(".env.example"),
            gitignore: read(".gitignore"),
            token_example: root.join(TOKEN_EXAMPLE).is_file(),
        }
    }
}

#[derive(Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Service {
    image: Option<String>,
    build: Option<IgnoredAny>,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    ports: Vec<String>,
    volumes: Vec<Volume>,
}

/// A mount in the short syntax (`./a:/b:ro`) or the long one (`{type: bind, source, target}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Volume {
    Short(String),
    Long { source: String, target: String },
}

impl Volume {
    /// (host source, container target).
    fn parts(&self) -> Option<(&str, &str)> {
        match self {
            Volume::Short(text) => {
                let mut parts = text.split(':');
                Some((parts.next()?, parts.next()?))
            }
            Volume::Long { source, target } => Some((source, target)),
        }
    }
}

#[derive(Deserialize)]
struct PrometheusConfig {
    #[serde(default)]
    rule_files: Vec<String>,
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    #[serde(default)]
    metrics_path: Option<String>,
    #[serde(default)]
    authorization: Option<Authorization>,
    static_configs: Vec<StaticConfig>,
}

#[derive(Deserialize)]
struct Authorization {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    credentials_file: Option<String>,
}

#[derive(Deserialize)]
struct StaticConfig {
    targets: Vec<String>,
}

#[derive(Deserialize)]
struct Datasources {
    datasources: Vec<Datasource>,
}

#[derive(Deserialize)]
struct Datasource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

#[derive(Deserialize)]
struct DashboardProviders {
    providers: Vec<DashboardProvider>,
}

#[derive(Deserialize)]
struct DashboardProvider {
    name: String,
    options: DashboardProviderOptions,
}

#[derive(Deserialize)]
struct DashboardProviderOptions {
    path: String,
}

/// `host:port` of a URL such as `http://core-engine:50051` or an address such as `0.0.0.0:8080`.
fn host_port(text: &str) -> Option<(&str, u16)> {
    let authority = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = authority.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// A published port in the short syntax: (host address, host port, container port).
fn published(mapping: &str) -> Option<(Option<&str>, u16, u16)> {
    let mapping = mapping.split('/').next()?;
    let parts: Vec<&str> = mapping.split(':').collect();
    match parts[..] {
        [ip, host, container] => Some((Some(ip), host.parse().ok()?, container.parse().ok()?)),
        [host, container] => Some((None, host.parse().ok()?, container.parse().ok()?)),
        _ => None,
    }
}

/// Every disagreement found, as sentences; empty when the files agree.
pub(crate) fn check(files: &Files, defaults: &Defaults, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let parsed = (
        serde_saphyr::from_str::<Compose>(&files.compose),
        serde_saphyr::from_str::<PrometheusConfig>(&files.prometheus),
        serde_saphyr::from_str::<serde_json::Value>(&files.jaeger),
        serde_saphyr::from_str::<Datasources>(&files.datasources),
        serde_saphyr::from_str::<DashboardProviders>(&files.dashboard_provider),
    );
    let (compose, prometheus, jaeger, datasources, providers) = match parsed {
        (Ok(c), Ok(p), Ok(j), Ok(d), Ok(g)) => (c, p, j, d, g),
        (c, p, j, d, g) => {
            for (file, error) in [
                ("compose file", c.err()),
                ("prometheus.yml", p.err()),
                ("jaeger.yaml", j.err()),
                ("Grafana data sources", d.err()),
                ("Grafana dashboard provider", g.err()),
            ] {
                if let Some(error) = error {
                    problems.push(format!("{file}: {error}"));
                }
            }
            return problems;
        }
    };
    let mut stack = Stack {
        compose: &compose,
        problems: &mut problems,
    };
    stack.services(defaults);
    stack.scrapes(&prometheus, defaults);
    stack.jaeger(&jaeger);
    stack.prometheus_server(&prometheus);
    stack.grafana(&datasources, &providers);
    stack.published_ports(defaults);
    stack.images_and_secrets(&files.env_example);
    stack.metrics_token(&prometheus, defaults, files);
    stack.mounts(root);
    problems
}

struct Stack<'a> {
    compose: &'a Compose,
    problems: &'a mut Vec<String>,
}

/// The compose service whose command runs `program` (ours) or whose image is `program` at some
/// version (theirs).
fn running<'c>(compose: &'c Compose, program: &str) -> Option<(&'c str, &'c Service)> {
    compose
        .services
        .iter()
        .find(|(_, s)| {
            s.command.first().map(String::as_str) == Some(program)
                || s.image.as_deref().is_some_and(|image| {
                    image.rsplit_once(':').map_or(image, |(name, _)| name) == program
                })
        })
        .map(|(name, s)| (name.as_str(), s))
}

impl<'a> Stack<'a> {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn require(&mut self, program: &str) -> Option<(&'a str, &'a Service)> {
        let found = running(self.compose, program);
        if found.is_none() {
            self.problem(format!("no compose service runs {program}"));
        }
        found
    }

    /// Our services listen on all interfaces of their container, on their default ports, and
    /// reach each other and Jaeger by compose service name.
    fn services(&mut self, defaults: &Defaults) {
        let compose = self.compose;
        let engine = running(compose, defaults.engine_job);
        let gateway = running(compose, defaults.gateway_job);
        let jaeger = running(compose, "jaegertracing/jaeger");
        for (program, found) in [
            (defaults.engine_job, &engine),
            (defaults.gateway_job, &gateway),
            ("jaegertracing/jaeger", &jaeger),
        ] {
            if found.is_none() {
                self.problem(format!("no compose service runs {program}"));
            }
        }
        if let Some((name, service)) = engine {
            self.listen(
                name,
                service,
                "ENGINE_GRPC_LISTEN",
                defaults.engine_grpc_port,
            );
            self.listen(
                name,
                service,
                "ENGINE_METRICS_LISTEN",
                defaults.engine_metrics_port,
            );
            if let Some((gateway_name, gateway)) = gateway {
                self.points_at(
                    &format!("{gateway_name}'s GATEWAY_ENGINE_URL"),
                    gateway.environment.get("GATEWAY_ENGINE_URL"),
                    name,
                    defaults.engine_grpc_port,
                );
            }
        }
        if let Some((name, service)) = gateway {
            self.listen(name, service, "GATEWAY_LISTEN", defaults.gateway_port);
        }
        if let Some((jaeger_name, _)) = jaeger {
            for (name, service) in [engine, gateway].into_iter().flatten() {
                self.points_at(
                    &format!("{name}'s OTEL_EXPORTER_OTLP_ENDPOINT"),
                    service.environment.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
                    jaeger_name,
                    OTLP_GRPC_PORT,
                );
            }
        }
    }

    fn listen(&mut self, name: &str, service: &Service, var: &str, port: u16) {
        match service.environment.get(var).map(|v| (v, host_port(v))) {
            Some((_, Some(("0.0.0.0", p)))) if p == port => {}
            Some((value, _)) => self.problem(format!(
                "{name}: {var}={value}, expected 0.0.0.0:{port} (all interfaces of the container, the service's default port)"
            )),
            None => self.problem(format!(
                "{name}: {var} is not set; the default 127.0.0.1 is unreachable from other containers"
            )),
        }
    }

    fn points_at(&mut self, what: &str, url: Option<&String>, service: &str, port: u16) {
        let expected = format!("http://{service}:{port}");
        if url.map(String::as_str) != Some(expected.as_str()) {
            self.problem(format!("{what} is {url:?}, expected {expected}"));
        }
    }

    /// Each service is scraped under its own name as the job, on its default metrics port and
    /// path, at the compose service that runs it.
    fn scrapes(&mut self, prometheus: &PrometheusConfig, defaults: &Defaults) {
        for (job, port, path, listen_var) in [
            (
                defaults.engine_job,
                defaults.engine_metrics_port,
                defaults.engine_metrics_path,
                "ENGINE_METRICS_LISTEN",
            ),
            (
                defaults.gateway_job,
                defaults.gateway_port,
                defaults.gateway_metrics_path,
                "GATEWAY_LISTEN",
            ),
        ] {
            let Some(scrape) = prometheus.scrape_configs.iter().find(|s| s.job_name == job) else {
                self.problem(format!(
                    "prometheus.yml has no job {job:?} (the harness selects {{job=\"{job}\"}})"
                ));
                continue;
            };
            let scraped_path = scrape.metrics_path.as_deref().unwrap_or("/metrics");
            if scraped_path != path {
                self.problem(format!(
                    "prometheus.yml job {job}: metrics_path {scraped_path}, but the service serves {path}"
                ));
            }
            let targets: Vec<&String> = scrape
                .static_configs
                .iter()
                .flat_map(|c| &c.targets)
                .collect();
            let Some((service_name, service)) = running(self.compose, job) else {
                self.problem(format!(
                    "prometheus.yml job {job}: no compose service runs {job}"
                ));
                continue;
            };
            let expected = format!("{service_name}:{port}");
            if targets.len() != 1 || targets[0] != &expected {
                self.problem(format!(
                    "prometheus.yml job {job}: targets {targets:?}, expected [{expected:?}]"
                ));
            }
            let listens = service
                .environment
                .get(listen_var)
                .and_then(|v| host_port(v))
                .map(|(_, p)| p);
            if listens != Some(port) {
                self.problem(format!(
                    "prometheus.yml job {job} scrapes port {port}, but {service_name} listens on {listens:?} ({listen_var})"
                ));
            }
        }
        for scrape in &prometheus.scrape_configs {
            for target in scrape.static_configs.iter().flat_map(|c| &c.targets) {
                match host_port(target) {
                    Some((host, _)) if self.compose.services.contains_key(host) => {}
                    _ => self.problem(format!(
                        "prometheus.yml job {}: target {target} is not a compose service",
                        scrape.job_name
                    )),
                }
            }
        }
    }

    /// Jaeger receives OTLP on the standard ports and serves its UI and API on 16686, from a
    /// bounded memory store, with the configuration the compose file mounts.
    fn jaeger(&mut self, config: &serde_json::Value) {
        for (pointer, port) in [
            ("/receivers/otlp/protocols/grpc/endpoint", OTLP_GRPC_PORT),
            ("/receivers/otlp/protocols/http/endpoint", OTLP_HTTP_PORT),
            ("/extensions/jaeger_query/http/endpoint", JAEGER_QUERY_PORT),
        ] {
            let endpoint = config.pointer(pointer).and_then(|v| v.as_str());
            if endpoint.and_then(host_port) != Some(("0.0.0.0", port)) {
                self.problem(format!(
                    "jaeger.yaml {pointer} is {endpoint:?}, expected 0.0.0.0:{port}"
                ));
            }
        }
        let store = config
            .pointer("/extensions/jaeger_query/storage/traces")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let bound = config
            .pointer(&format!(
                "/extensions/jaeger_storage/backends/{store}/memory/max_traces"
            ))
            .and_then(|v| v.as_u64());
        if bound.is_none_or(|n| n == 0) {
            self.problem(format!(
                "jaeger.yaml: the query's trace store {store:?} is not a memory store with max_traces"
            ));
        }
        let exported_to = config
            .pointer("/exporters/jaeger_storage_exporter/trace_storage")
            .and_then(|v| v.as_str());
        if exported_to != Some(store) {
            self.problem(format!(
                "jaeger.yaml: spans are stored in {exported_to:?} but queried from {store:?}"
            ));
        }
        if let Some((name, service)) = running(self.compose, "jaegertracing/jaeger") {
            let config_path = match &service.command[..] {
                [flag, path] if flag == "--config" => Some(path.clone()),
                _ => None,
            };
            let mounted = config_path
                .as_deref()
                .and_then(|path| mount_targets(service).get(path).copied());
            if mounted != Some("./observability/jaeger.yaml") {
                self.problem(format!(
                    "{name}: observability/jaeger.yaml is not mounted where --config ({config_path:?}) reads it"
                ));
            }
        }
    }

    /// Prometheus listens on its default port and reads the mounted configuration and rules.
    fn prometheus_server(&mut self, config: &PrometheusConfig) {
        let Some((name, service)) = self.require("prom/prometheus") else {
            return;
        };
        let flag = |key: &str| {
            service
                .command
                .iter()
                .find_map(|a| a.strip_prefix(&format!("--{key}=")).map(str::to_owned))
        };
        let listen = flag("web.listen-address").unwrap_or_else(|| format!(":{PROMETHEUS_PORT}"));
        if host_port(&listen).map(|(_, p)| p) != Some(PROMETHEUS_PORT) {
            self.problem(format!(
                "{name}: listens on {listen}, expected port {PROMETHEUS_PORT}"
            ));
        }
        let config_file =
            flag("config.file").unwrap_or_else(|| "/etc/prometheus/prometheus.yml".into());
        let mounts = mount_targets(service);
        let Some(config_dir) = Path::new(&config_file).parent() else {
            return;
        };
        let mut wanted = vec![(
            "./observability/prometheus.yml".to_owned(),
            config_file.clone(),
        )];
        for rules in &config.rule_files {
            wanted.push((
                format!("./observability/{rules}"),
                config_dir.join(rules).display().to_string(),
            ));
        }
        for (source, target) in wanted {
            if mounts.get(target.as_str()) != Some(&source.as_str()) {
                self.problem(format!("{name}: {source} is not mounted at {target}"));
            }
        }
    }

    /// The data sources reach Prometheus and Jaeger by compose service name and port; the
    /// dashboards directory is mounted where the provider reads it.
    fn grafana(&mut self, datasources: &Datasources, providers: &DashboardProviders) {
        for (kind, program, port) in [
            ("prometheus", "prom/prometheus", PROMETHEUS_PORT),
            ("jaeger", "jaegertracing/jaeger", JAEGER_QUERY_PORT),
        ] {
            let Some(source) = datasources.datasources.iter().find(|d| d.kind == kind) else {
                self.problem(format!("no Grafana data source of type {kind}"));
                continue;
            };
            let Some((service, _)) = running(self.compose, program) else {
                continue;
            };
            let expected = format!("http://{service}:{port}");
            if source.url.trim_end_matches('/') != expected {
                self.problem(format!(
                    "Grafana data source {}: url {}, expected {expected}",
                    source.name, source.url
                ));
            }
        }
        let Some((name, service)) = self.require("grafana/grafana") else {
            return;
        };
        let mounts = mount_targets(service);
        if mounts.get("/etc/grafana/provisioning") != Some(&"./observability/grafana/provisioning")
        {
            self.problem(format!(
                "{name}: observability/grafana/provisioning is not mounted at /etc/grafana/provisioning"
            ));
        }
        for provider in &providers.providers {
            if mounts.get(provider.options.path.as_str())
                != Some(&"./observability/grafana/dashboards")
            {
                self.problem(format!(
                    "{name}: dashboard provider {} reads {}, where observability/grafana/dashboards is not mounted",
                    provider.name, provider.options.path
                ));
            }
        }
        let home = service
            .environment
            .get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH");
        if let Some(home) = home {
            let inside = providers
                .providers
                .iter()
                .any(|p| home.starts_with(&format!("{}/", p.options.path)));
            if !inside {
                self.problem(format!(
                    "{name}: the home dashboard {home} is not a provisioned one"
                ));
            }
        }
    }

    /// Every published port is bound to loopback; the ports the README and the harness's flags
    /// use are published as themselves.
    fn published_ports(&mut self, defaults: &Defaults) {
        let compose = self.compose;
        for (name, service) in &compose.services {
            for mapping in &service.ports {
                match published(mapping) {
                    Some((Some("127.0.0.1"), _, _)) => {}
                    _ => self.problem(format!(
                        "{name}: port {mapping:?} is not published on 127.0.0.1 only"
                    )),
                }
            }
        }
        for (program, ports) in [
            (
                "jaegertracing/jaeger",
                &[OTLP_GRPC_PORT, OTLP_HTTP_PORT, JAEGER_QUERY_PORT][..],
            ),
            ("prom/prometheus", &[PROMETHEUS_PORT][..]),
            ("grafana/grafana", &[GRAFANA_PORT][..]),
            (defaults.gateway_job, &[defaults.gateway_port][..]),
        ] {
            let Some((name, service)) = running(compose, program) else {
                continue;
            };
            for port in ports {
                let open = service
                    .ports
                    .iter()
                    .filter_map(|m| published(m))
                    .any(|(_, host, container)| host == *port && container == *port);
                if !open {
                    self.problem(format!(
                        "{name}: port {port} is not published as 127.0.0.1:{port}"
                    ));
                }
            }
        }
    }

    /// Images are pinned to a version; no credential is written into the file, and every
    /// variable it takes from the environment is documented in `.env.example`.
    fn images_and_secrets(&mut self, env_example: &str) {
        let compose = self.compose;
        for (name, service) in &compose.services {
            match (&service.image, &service.build) {
                (Some(image), _) => {
                    let tag = image.rsplit_once(':').map(|(_, tag)| tag);
                    if !tag.is_some_and(|t| t != "latest" && t.chars().any(|c| c.is_ascii_digit()))
                    {
                        self.problem(format!("{name}: image {image} is not pinned to a version"));
                    }
                }
                (None, Some(_)) => {}
                (None, None) => self.problem(format!("{name}: neither an image nor a build")),
            }
            for (key, value) in &service.environment {
                // A `_FILE` variable names where a secret is mounted, not the secret.
                let sensitive = ["PASSWORD", "SECRET", "TOKEN", "API_KEY"]
                    .iter()
                    .any(|word| key.contains(word))
                    && !key.ends_with("_FILE");
                if sensitive && !(value.starts_with("${") && value.ends_with('}')) {
                    self.problem(format!(
                        "{name}: {key} is written into the file; take it from the environment"
                    ));
                }
                for variable in interpolated(value) {
                    let documented = env_example
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{variable}=")));
                    if !documented {
                        self.problem(format!(
                            "{name}: {key} uses ${{{variable}}}, which .env.example does not document"
                        ));
                    }
                }
            }
        }
    }

    /// Bind-mounted files and directories exist in the repository, but for the metrics token,
    /// which whoever runs the stack makes (its example is checked instead).
    fn mounts(&mut self, root: &Path) {
        let compose = self.compose;
        for (name, service) in &compose.services {
            for volume in &service.volumes {
                let source = volume.parts().map_or("", |(source, _)| source);
                if source == TOKEN_SOURCE {
                    continue;
                }
                if source.starts_with("./") && !root.join(source).exists() {
                    self.problem(format!("{name}: mounts {source}, which does not exist"));
                }
            }
        }
    }
}

/// Container path -> host source of a service's bind mounts.
fn mount_targets(service: &Service) -> BTreeMap<&str, &str> {
    service
        .volumes
        .iter()
        .filter_map(|v| v.parts().map(|(source, target)| (target, source)))
        .collect()
}

/// The names of `${NAME}`, `${NAME:-default}` and `${NAME:?message}` in a compose value.
fn interpolated(value: &str) -> Vec<&str> {
    value
        .split("${")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            Some(&rest[..end])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_port_mappings_are_read() {
        assert_eq!(host_port("http://jaeger:4317"), Some(("jaeger", 4317)));
        assert_eq!(host_port("0.0.0.0:8080"), Some(("0.0.0.0", 8080)));
        assert_eq!(
            host_port("http://prometheus:9090/"),
            Some(("prometheus", 9090))
        );
        assert_eq!(
            published("127.0.0.1:16686:16686"),
            Some((Some("127.0.0.1"), 16686, 16686))
        );
        assert_eq!(published("8080:8080/tcp"), Some((None, 8080, 8080)));
        assert_eq!(
            interpolated("${GRAFANA_ADMIN_PASSWORD:?set it} and ${USER:-admin}"),
            vec!["GRAFANA_ADMIN_PASSWORD", "USER"]
        );
    }
}
