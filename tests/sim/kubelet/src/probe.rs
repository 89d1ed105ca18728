//! Probes as the kubelet runs them (pkg/kubelet/prober): `httpGet` (a status from 200 to 399
//! succeeds), `tcpSocket` (a connection succeeds), with `timeoutSeconds`; the thresholds and
//! periods are kept by the caller in `Tracker`. `exec` and `grpc` probes are not run here:
//! they fail with a message that says so.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One probe of one container, with its counters (pkg/kubelet/prober/worker.go).
#[derive(Debug)]
pub struct Tracker {
    pub probe: Probe,
    /// Whether the probe's verdict stands (readiness starts false, liveness and startup true).
    pub ok: bool,
    successes: i32,
    failures: i32,
    next: Instant,
    pub last_error: Option<String>,
}

impl Tracker {
    pub fn new(probe: Probe, started: Instant, initially: bool) -> Tracker {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        Tracker {
            probe,
            ok: initially,
            successes: 0,
            failures: 0,
            next: started + delay,
            last_error: None,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    fn period(&self) -> Duration {
        Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64)
    }

    /// Counts one result; returns whether the verdict changed.
    pub fn record(&mut self, now: Instant, result: Result<(), String>) -> bool {
        self.next = now + self.period();
        let before = self.ok;
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                self.last_error = None;
                if self.successes >= self.probe.success_threshold.unwrap_or(1).max(1) {
                    self.ok = true;
                }
            }
            Err(e) => {
                self.successes = 0;
                self.failures += 1;
                self.last_error = Some(e);
                if self.failures >= self.probe.failure_threshold.unwrap_or(3).max(1) {
                    self.ok = false;
                }
            }
        }
        before != self.ok
    }
}

/// Runs `probe` once against the container at `ip`.
pub async fn run(probe: &Probe, container: &Container, ip: IpAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = async {
        if let Some(h) = &probe.http_get {
            let port = port(&h.port, container)?;
            let host = h
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .and_then(|h| h.parse().ok())
                .unwrap_or(ip);
            if h.scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
            {
                return Err("https probes are not supported by the simulated kubelet".to_string());
            }
            let headers: Vec<(String, String)> = h
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            http_get(
                SocketAddr::new(host, port),
                h.path.as_deref().unwrap_or("/"),
                &headers,
            )
            .await
        } else if let Some(t) = &probe.tcp_socket {
            let port = port(&t.port, container)?;
            TcpStream::connect(SocketAddr::new(ip, port))
                .await
                .map(drop)
                .map_err(|e| format!("dial tcp {ip}:{port}: {e}"))
        } else if probe.exec.is_some() {
            Err("exec probes are not supported by the simulated kubelet".to_string())
        } else {
            Err("grpc probes are not supported by the simulated kubelet".to_string())
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "probe timed out after {}s (timeoutSeconds)",
            timeout.as_secs()
        )),
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
pub fn port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok())
            .ok_or_else(|| format!("container has no port named {name:?}")),
    }
}

async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("Get \"http://{addr}{path}\": dial tcp {addr}: {e}"))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.34\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("Get \"http://{addr}{path}\": {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("Get \"http://{addr}{path}\": {e}"))?;
        if n == 0 {
            return Err(format!("Get \"http://{addr}{path}\": EOF"));
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get \"http://{addr}{path}\": malformed response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }

    #[test]
    fn thresholds_flip_the_verdict() {
        let now = Instant::now();
        let mut t = Tracker::new(
            probe(json!({"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 1})),
            now,
            false,
        );
        assert!(t.due(now));
        assert!(t.record(now, Ok(())), "one success makes it ready");
        assert!(!t.due(now), "next one a period later");
        assert!(
            !t.record(now, Err("x".into())),
            "one failure is below the threshold"
        );
        assert!(
            t.record(now, Err("x".into())),
            "the second failure flips it"
        );
        assert!(!t.ok);
        assert_eq!(t.last_error.as_deref(), Some("x"));
    }

    #[test]
    fn initial_delay_postpones_the_first_probe() {
        let now = Instant::now();
        let t = Tracker::new(probe(json!({"initialDelaySeconds": 5})), now, true);
        assert!(!t.due(now + Duration::from_secs(4)));
        assert!(t.due(now + Duration::from_secs(5)));
    }

    #[tokio::test]
    async fn http_probes_read_the_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            for code in [200, 503] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let c: Container = serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "http", "containerPort": addr.port()}]}),
        )
        .expect("container");
        let p = probe(json!({"httpGet": {"path": "/readyz", "port": "http"}}));
        assert_eq!(run(&p, &c, addr.ip()).await, Ok(()));
        assert_eq!(
            run(&p, &c, addr.ip()).await,
            Err("HTTP probe failed with statuscode: 503".to_string())
        );
        server.await.expect("server task");
        let refused = run(&p, &c, addr.ip())
            .await
            .expect_err("nothing listens any more");
        assert!(refused.contains("dial tcp"), "{refused}");
    }
}
