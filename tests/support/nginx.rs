//! A real nginx in front of a service, for end-to-end tests against a proxy this project did not
//! write: one process (`master_process off`, in the foreground, as the current user) with its
//! configuration, temporary files and logs in a scratch directory, listening on three free
//! loopback ports:
//!
//! - plain HTTP/1.1,
//! - h2c (HTTP/2 with prior knowledge on a plain listener; nginx before 1.25.1 speaks only HTTP/2
//!   there, later ones both),
//! - TLS with ALPN offering h2 and http/1.1, with the certificate and key given as files.
//!
//! Each ends a connection after its third request, as servers limiting requests per connection
//! do (`Connection: close` on HTTP/1.1, GOAWAY on HTTP/2).
//!
//! Each proxies `/v2/` to the upstream with every request header (underscores too), gRPC calls
//! (`/package.Service/Method`) to the gRPC upstream if one is given, and serves `GET /static.json`
//! itself (`{"ok":true}`, `application/json`). Stopped (SIGTERM, then SIGKILL
//! after a grace period), and its directory removed, when dropped.
//!
//! Where `nginx` is not installed, [`binary`] returns `None` and the caller skips, unless
//! `HARNESS_REQUIRE_NGINX=1` (set by `scripts/test`, so CI) makes that a failure.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const REQUIRE_VAR: &str = "HARNESS_REQUIRE_NGINX";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The largest request body nginx passes on, as the quote service accepts.
const MAX_BODY: &str = "64k";

/// The `nginx` executable on `PATH` (or in `/usr/sbin`, where Debian puts it and which a
/// non-root `PATH` often lacks), if any; panics instead of returning `None` when the environment
/// requires nginx.
pub(crate) fn binary(test: &str) -> Option<PathBuf> {
    let sbin = Path::new("/usr/sbin/nginx");
    if super::find_on_path("nginx").is_none() && sbin.is_file() {
        return Some(sbin.to_path_buf());
    }
    super::tool("nginx", test, REQUIRE_VAR, "nginx")
}

/// What nginx serves and where it sends `/v2/`.
pub(crate) struct NginxConfig<'a> {
    /// The service `/v2/` is proxied to (plain HTTP/1.1 with keep-alive).
    pub upstream: SocketAddr,
    /// The gRPC service (plain HTTP/2) that gRPC calls are proxied to, if any.
    pub grpc_upstream: Option<SocketAddr>,
    /// PEM certificate chain and private key for the TLS listener.
    pub cert_pem: &'a Path,
    pub key_pem: &'a Path,
}

pub(crate) struct NginxServer {
    child: Child,
    dir: ScratchDir,
    /// Plain HTTP/1.1, e.g. `127.0.0.1:40123`.
    pub http: SocketAddr,
    /// h2c with prior knowledge.
    pub h2c: SocketAddr,
    /// TLS; ALPN offers h2 and http/1.1.
    pub tls: SocketAddr,
    /// The `nginx -v` version, e.g. `(1, 22, 1)`.
    pub version: (u32, u32, u32),
}

impl NginxServer {
    /// Starts nginx and returns once all three listeners accept connections.
    pub(crate) fn start(binary: &Path, config: &NginxConfig<'_>) -> NginxServer {
        let version = version(binary);
        let dir = ScratchDir::new();
        std::fs::create_dir_all(dir.0.join("temp")).expect("nginx temp directory");

        // The ports are free when chosen; should another process take one before nginx binds
        // it, nginx exits and the next attempt picks others.
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let ports = Ports {
                http: free_port(),
                h2c: free_port(),
                tls: free_port(),
            };
            let conf = dir.0.join("nginx.conf");
            std::fs::write(&conf, config_text(&dir.0, config, &ports, version))
                .expect("nginx configuration");
            let mut child = spawn(binary, &dir.0, &conf);
            let addrs = ports.addrs();
            match wait_ready(&mut child, &addrs) {
                Ok(()) => {
                    return NginxServer {
                        child,
                        dir,
                        http: addrs[0],
                        h2c: addrs[1],
                        tls: addrs[2],
                        version,
                    };
                }
                Err(exited) if attempt < ATTEMPTS => {
                    eprintln!(
                        "nginx exited ({exited}); trying other ports:\n{}",
                        dir.log()
                    );
                }
                Err(exited) => panic!("nginx did not start ({exited}):\n{}", dir.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The end of nginx's error log, for failure messages.
    pub(crate) fn log(&self) -> String {
        self.dir.log()
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ports {
    http: u16,
    h2c: u16,
    tls: u16,
}

impl Ports {
    fn addrs(&self) -> [SocketAddr; 3] {
        [self.http, self.h2c, self.tls].map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// Waits until every listener accepts a connection; `Err` if nginx exits first.
fn wait_ready(child: &mut Child, addrs: &[SocketAddr]) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status.to_string());
        }
        let all = addrs
            .iter()
            .all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok());
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("not listening within {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `nginx -v` says e.g. `nginx version: nginx/1.22.1` on stderr.
fn version(binary: &Path) -> (u32, u32, u32) {
    let output = Command::new(binary)
        .arg("-v")
        .output()
        .expect("running nginx -v");
    let text = String::from_utf8_lossy(&output.stderr);
    parse_version(&text).unwrap_or_else(|| panic!("unexpected `nginx -v` output: {text:?}"))
}

/// The version in `nginx -v`'s output.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("nginx/").nth(1)?;
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The configuration, with `@NAME@` placeholders. All three servers share [`LOCATIONS`].
const TEMPLATE: &str = r#"# Generated for one test: everything stays in @DIR@.
master_process off;
worker_processes 1;
error_log @DIR@/error.log info;
events {
    worker_connections 512;
}
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/temp/body;
    proxy_temp_path @DIR@/temp/proxy;
    fastcgi_temp_path @DIR@/temp/fastcgi;
    uwsgi_temp_path @DIR@/temp/uwsgi;
    scgi_temp_path @DIR@/temp/scgi;
    client_max_body_size @MAX_BODY@;
    # Pass every request header on, those with underscores too.
    underscores_in_headers on;
    upstream front {
        server @UPSTREAM@;
        keepalive 16;
    }
    # Every third request on a connection ends it (`Connection: close` on HTTP/1.1, GOAWAY on
    # HTTP/2): a client's pool must notice, and not lose the requests sent meanwhile.
    keepalive_requests 3;
    server {
        listen 127.0.0.1:@HTTP@;
@LOCATIONS@
    }
    server {
        listen 127.0.0.1:@H2C@@LISTEN_H2@;
@SERVER_H2@
@LOCATIONS@
    }
    server {
        listen 127.0.0.1:@TLS@ ssl@LISTEN_H2@;
@SERVER_H2@
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        ssl_protocols TLSv1.2 TLSv1.3;
@LOCATIONS@
    }
}
"#;

const LOCATIONS: &str = r#"        location /v2/ {
            proxy_pass http://front;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
@GRPC@
        location = /static.json {
            default_type application/json;
            return 200 '{"ok":true}';
        }"#;

/// The configuration. From 1.25.1 on, HTTP/2 is switched on per server with `http2 on;` (a plain
/// listener then takes HTTP/1.1 and h2c); before that, with the `http2` listen parameter (a plain
/// listener then takes h2c only).
fn config_text(
    dir: &Path,
    config: &NginxConfig<'_>,
    ports: &Ports,
    version: (u32, u32, u32),
) -> String {
    let (listen_h2, server_h2) = if version >= (1, 25, 1) {
        ("", "        http2 on;")
    } else {
        (" http2", "")
    };
    let grpc = config.grpc_upstream.map_or(String::new(), |upstream| {
        format!(
            "        location ~ ^/[A-Za-z0-9_.]+\\.[A-Za-z0-9_]+/[A-Za-z0-9_]+$ {{\n            \
             grpc_pass grpc://{upstream};\n        }}"
        )
    });
    TEMPLATE
        .replace("@LOCATIONS@", LOCATIONS)
        .replace("@GRPC@", &grpc)
        .replace("@LISTEN_H2@", listen_h2)
        .replace("@SERVER_H2@", server_h2)
        .replace("@DIR@", &dir.display().to_string())
        .replace("@MAX_BODY@", MAX_BODY)
        .replace("@UPSTREAM@", &config.upstream.to_string())
        .replace("@HTTP@", &ports.http.to_string())
        .replace("@H2C@", &ports.h2c.to_string())
        .replace("@TLS@", &ports.tls.to_string())
        .replace("@CERT@", &config.cert_pem.display().to_string())
        .replace("@KEY@", &config.key_pem.display().to_string())
}

fn spawn(binary: &Path, dir: &Path, conf: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr.log")).expect("nginx stderr file");
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        // The log nginx writes before it has read its configuration.
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-g")
        .arg(format!(
            "daemon off; pid {};",
            dir.join("nginx.pid").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: runs between fork and exec and only makes async-signal-safe system calls. nginx
    // (one process: no workers to outlive it) dies with the test process even if the test is
    // killed before its drop runs.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    command.spawn().expect("starting nginx")
}

/// nginx's configuration, temporary files and logs, removed at the end of the test.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("harness-nginx-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&path).expect("scratch directory");
        ScratchDir(path)
    }

    fn log(&self) -> String {
        let mut text = std::fs::read_to_string(self.0.join("stderr.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.0.join("error.log")).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
