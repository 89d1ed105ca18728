//! The real servers the tests talk to: Debian's Prometheus and Alertmanager, each on a free
//! loopback port in a temporary directory, killed when the test ends however it ends.
//!
//! Prometheus runs under the route prefix `/prom`, scrapes itself, evaluates [`RULES`] every
//! second and sends alerts to the Alertmanager, which routes everything to [`RECEIVER`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platformctl::prom::{self, alertmanager};

pub const RECEIVER: &str = "platformctl-test-receiver";
/// The alerting rule of [`RULES`].
pub const FIRING: &str = "PlatformctlAlwaysFiring";
/// How long a server may take to become ready, or a condition to come true.
const LIMIT: Duration = Duration::from_secs(30);

/// A recording rule over the self-scrape, an alerting rule that fires at once, and a rule that
/// fails at every evaluation: two series that differ only in `a`, which the rule's own label
/// then overwrites.
const RULES: &str = r#"groups:
  - name: platformctl-test
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: PlatformctlAlwaysFiring
        expr: vector(1)
        for: 0s
        labels: {severity: none, team: platform}
        annotations: {summary: fires at once}
      - record: platformctl:broken
        expr: label_replace(vector(1), "a", "1", "", "") or label_replace(vector(1), "a", "2", "", "")
        labels: {a: same}
"#;

/// A server process, killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus and Alertmanager, started.
pub struct Servers {
    dir: tempfile::TempDir,
    prometheus: Killed,
    _alertmanager: Killed,
    prom_port: u16,
    am_port: u16,
}

impl Servers {
    pub fn start() -> Servers {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (prom_port, am_port) = (free_port(), free_port());
        let am_config = write(
            d,
            "alertmanager.yml",
            &format!(
                "route:\n  receiver: {RECEIVER}\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: {RECEIVER}\n"
            ),
        );
        let alertmanager = spawn(
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", am_config.display()),
                format!("--storage.path={}", d.join("alertmanager").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                // No gossip: it would listen on every interface.
                "--cluster.listen-address=".into(),
            ],
            &d.join("alertmanager.log"),
        );
        let rules = write(d, "rules.yml", RULES);
        let config = write(
            d,
            "prometheus.yml",
            &format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]
scrape_configs:
  - job_name: prometheus
    metrics_path: /prom/metrics
    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]
",
                rules = rules.display()
            ),
        );
        let prometheus = spawn(
            "prometheus",
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", d.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                format!("--web.external-url=http://127.0.0.1:{prom_port}/prom"),
                "--web.route-prefix=/prom".into(),
                // Alerts are sent before the Alertmanager is discovered (up to 5 s after start)
                // and dropped; by default they are sent again only after a minute.
                "--rules.alert.resend-delay=1s".into(),
            ],
            &d.join("prometheus.log"),
        );
        Servers {
            dir,
            prometheus,
            _alertmanager: alertmanager,
            prom_port,
            am_port,
        }
    }

    /// `http://127.0.0.1:<port>`: Prometheus' origin, without its route prefix.
    pub fn prometheus_origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.prom_port)
    }

    pub fn alertmanager_port(&self) -> u16 {
        self.am_port
    }

    /// A client for Prometheus under its route prefix, and one for Alertmanager, both servers
    /// ready.
    pub async fn clients(&self) -> (prom::Client, alertmanager::Client) {
        let prom = prom::Client::new(&format!("{}/prom/", self.prometheus_origin())).expect("url");
        let am =
            alertmanager::Client::new(&format!("http://127.0.0.1:{}", self.am_port)).expect("url");
        self.eventually("Prometheus ready", || async {
            match prom.ready().await {
                Ok(true) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        self.eventually("Alertmanager ready", || async {
            match am.ready().await {
                Ok(true) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        (prom, am)
    }

    /// Stops (`true`) or resumes Prometheus with SIGSTOP/SIGCONT: a stopped server's port still
    /// accepts connections (the kernel's backlog) and answers nothing.
    pub fn pause_prometheus(&self, stop: bool) {
        let pid = self.prometheus.0.id() as libc::pid_t;
        let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: signalling a child this test started and still owns (not yet reaped).
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal Prometheus");
        // A signal is delivered asynchronously: a request sent right after SIGSTOP could still
        // be answered by a thread not stopped yet. Wait until every thread is.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stop && !all_threads_stopped(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "Prometheus did not stop"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls `check` every 100 ms until it gives a value, or fails the test after `LIMIT` with
    /// its last complaint and the servers' logs.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            match check().await {
                Ok(value) => return value,
                Err(last) if tokio::time::Instant::now() >= deadline => panic!(
                    "{what}: not within {} s; last: {last}{}",
                    LIMIT.as_secs(),
                    self.logs()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The end of both servers' logs, for a failure message (the temporary directory goes with
    /// the test).
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["prometheus.log", "alertmanager.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            // The broken rule logs a warning every second.
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("platformctl:broken"))
                .collect();
            out.push_str(&format!("\n--- {name} (last 15 lines) ---\n"));
            out.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
        }
        out
    }
}

/// Whether every thread of `pid` is stopped (`T` in `/proc/<pid>/task/<tid>/stat`).
fn all_threads_stopped(pid: libc::pid_t) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            // `pid (comm) state ...`: the state follows the last `)`.
            .and_then(|stat| {
                let after = &stat[stat.rfind(')')? + 1..];
                after.split_whitespace().next().map(|s| s == "T")
            })
            .unwrap_or(false)
    })
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("its address").port()
}

fn spawn(program: &str, args: &[String], log: &Path) -> Killed {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the log"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start `{program}` ({e}): tests/run installs Debian's prometheus and prometheus-alertmanager packages")
        });
    Killed(child)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a config file");
    path
}
