//! The services' JSON logs, indexed by `trace_id`: a sampled request whose trace is complete but
//! whose id appears in no log line means logs and traces cannot be joined in an incident.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use super::model::TraceId;

/// The trace ids each service's log mentions.
#[derive(Debug, Default)]
pub struct LogIndex {
    services: BTreeMap<String, HashSet<TraceId>>,
}

impl LogIndex {
    /// Reads one service's log file. Lines that are not JSON objects (a panic message, output of a
    /// dependency) are skipped: they carry no trace id either way.
    /// A line that is not valid UTF-8 is read lossily, so one bad byte cannot hide the rest.
    pub fn add_file(&mut self, service: &str, path: &Path) -> std::io::Result<()> {
        let mut reader = BufReader::new(std::fs::File::open(path)?);
        let ids = self.services.entry(service.to_owned()).or_default();
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line)? > 0 {
            if let Some(id) = trace_id_of(&String::from_utf8_lossy(&line)) {
                ids.insert(id);
            }
            line.clear();
        }
        Ok(())
    }

    /// The services, among those indexed, whose logs never mention `id`.
    pub fn missing(&self, id: TraceId) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, ids)| !ids.contains(&id))
            .map(|(service, _)| service.as_str())
            .collect()
    }
}

fn trace_id_of(line: &str) -> Option<TraceId> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("trace_id")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_services_whose_logs_miss_a_trace() {
        let dir = std::env::temp_dir().join(format!("harness-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let gateway = dir.join("gateway.log");
        let engine = dir.join("engine.log");
        std::fs::write(
            &gateway,
            // A line of bad UTF-8 first: the lines after it are still read.
            b"not json \xff\n{\"level\":\"INFO\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n{\"level\":\"INFO\"}\n",
        )
        .expect("write");
        std::fs::write(
            &engine,
            "{\"trace_id\":\"00000000000000000000000000000001\"}\n",
        )
        .expect("write");
        let mut index = LogIndex::default();
        index.add_file("api-gateway", &gateway).expect("read");
        index.add_file("core-engine", &engine).expect("read");
        let both: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().expect("id");
        assert_eq!(index.missing(both), ["core-engine"]);
        assert_eq!(index.missing(TraceId(1)), ["api-gateway"]);
        assert!(index.add_file("x", &dir.join("absent.log")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
