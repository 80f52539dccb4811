//! Process metrics under the names every Prometheus client library uses, so that the memory and
//! CPU alerts of `observability/alerts.yml` have something to watch. Read from `/proc` on each
//! scrape (nothing runs between scrapes). Linux only: where `/proc/self/stat` cannot be read, the
//! collector writes nothing rather than failing the whole exposition.

use std::fmt;

use nix::unistd::{SysconfVar, sysconf};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(stat) = read_stat() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let mut gauges = vec![
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                stat.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads", stat.threads),
        ];
        if let Some(open) = open_fds() {
            gauges.push(("process_open_fds", "Number of open file descriptors", open));
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| max_open_files(&text))
        {
            gauges.push((
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            ));
        }
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// What `/proc/self/stat` says, in Prometheus units.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    threads: f64,
}

fn read_stat() -> Option<Stat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let ticks = sysconf(SysconfVar::CLK_TCK).ok()??;
    let page_size = sysconf(SysconfVar::PAGE_SIZE).ok()??;
    parse_stat(&stat, ticks as f64, page_size as f64, boot_time)
}

/// Parses `/proc/<pid>/stat` (proc(5)). The command name may hold spaces and parentheses, so
/// fields are counted from its closing parenthesis: field 3 (state) is the first after it.
fn parse_stat(text: &str, ticks_per_second: f64, page_size: f64, boot_time: f64) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    if ticks_per_second <= 0.0 {
        return None;
    }
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        threads: field(20)?,
        start_time_seconds: boot_time + field(22)? / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

/// `btime` of `/proc/stat`: when the machine booted, in seconds since the Unix epoch.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// The soft limit on open files from `/proc/self/limits`; `unlimited` gives none.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text;
    use prometheus_client::registry::Registry;

    #[test]
    fn stat_fields_are_counted_past_the_command_name() {
        // A command name with a space and a parenthesis, as a thread name can have.
        let line = "4242 (core (engine) R 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 \
                    7 0 1000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(line, 100.0, 4096.0, 1_700_000_000.0).expect("parses");
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                threads: 7.0,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 123_456_789.0,
                resident_bytes: 2048.0 * 4096.0,
            }
        );
        assert_eq!(
            parse_stat("4242 (truncated) R 1 2", 100.0, 4096.0, 0.0),
            None
        );
    }

    #[test]
    fn limits_and_boot_time_are_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             95000                95000                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000.0)
        );
    }

    /// The value of an unlabelled sample in the exposition.
    fn sample(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .expect("a number")
    }

    #[test]
    fn this_process_is_described_plausibly() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("encodes");

        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
        assert!(sample(&text, "process_cpu_seconds_total") >= 0.0);
        let resident = sample(&text, "process_resident_memory_bytes");
        assert!(
            resident > 1e6,
            "a test binary uses more than 1 MB: {resident}"
        );
        assert!(sample(&text, "process_virtual_memory_bytes") >= resident);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let started = sample(&text, "process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started}"
        );
        assert!(sample(&text, "process_threads") >= 1.0);
        let open = sample(&text, "process_open_fds");
        assert!(open >= 3.0, "stdin, stdout and stderr at least: {open}");
        assert!(sample(&text, "process_max_fds") >= open);
    }
}
