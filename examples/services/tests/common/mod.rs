//! What the service tests share: a running service binary, found by its "listening" line and
//! killed when dropped, and an HTTP client that never goes through a proxy.
#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::Value;

/// One running service binary; killed (SIGKILL) and reaped on drop.
pub struct Service {
    name: &'static str,
    child: Child,
    pub base: String,
}

impl Service {
    /// Starts `bin` with `env`, waits for its "listening" line and for `/healthz` to answer.
    pub async fn start(name: &'static str, bin: &str, env: &[(&str, String)]) -> Service {
        let mut child = Command::new(bin)
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("PLATFORM_PORT", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({bin}): {e}"));
        // A thread reads stdout: it reports the address, then keeps draining the pipe so the
        // service never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["msg"] == "listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20));
        let addr = addr.unwrap_or_else(|_| panic!("{name} did not log a listening line"));
        let base = format!("http://{addr}");
        let service = Service { name, child, base };
        let http = client();
        for _ in 0..200 {
            if let Ok(r) = http.get(service.url("/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{name} never answered /healthz at {}", service.base);
    }

    /// `host:port`, as a scrape target.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM through the `kill` binary.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.name);
    }

    /// Waits (bounded) for the process to exit on its own.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            let name = self.name;
            assert!(
                Instant::now() < deadline,
                "{name} did not exit in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        let r = client().get(self.url("/metrics")).send().await;
        r.expect("GET /metrics").text().await.expect("metrics body")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}
