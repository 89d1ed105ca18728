//! What the benchmarks stand on: a simulated cluster of their own (`tests/sim/cluster`, state
//! and ports of their own, stopped when dropped), the tools its `env` puts on PATH, and how a
//! benchmark exits. Included with `#[path]` by each bench.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A running simulated cluster; `down` when dropped.
pub struct Sim {
    state: PathBuf,
    port_base: &'static str,
    pub kubeconfig: PathBuf,
    /// The PATH `tests/sim/cluster env` prints: the built kubectl and helm.
    path: String,
}

impl Sim {
    /// `tests/sim/cluster up [args]` with state in `target/<state>` and ports from `port_base`.
    pub fn start(state: &str, port_base: &'static str, args: &[&str]) -> Result<Sim, String> {
        let mut sim = Sim {
            state: root().join("target").join(state),
            port_base,
            kubeconfig: PathBuf::new(),
            path: String::new(),
        };
        let out = sim
            .harness(&[&["up"], args].concat())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        // (from here on, dropping `sim` stops whatever `up` started)
        if !out.status.success() {
            return Err("tests/sim/cluster up failed".into());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        sim.kubeconfig = PathBuf::from(
            stdout
                .lines()
                .last()
                .and_then(|l| l.strip_prefix("KUBECONFIG="))
                .ok_or("no KUBECONFIG= line")?,
        );
        let env = sim.harness(&["env"]).output().map_err(|e| e.to_string())?;
        sim.path = String::from_utf8_lossy(&env.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("export PATH=")
                    .map(|p| p.trim_matches(['\'', '"']).to_string())
            })
            .ok_or("tests/sim/cluster env printed no PATH")?;
        Ok(sim)
    }

    pub fn harness(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("tests/sim/cluster"))
            .args(args)
            .env("PLATFORMCTL_SIM_DIR", &self.state)
            .env("PLATFORMCTL_SIM_PORT_BASE", self.port_base)
            .stdin(Stdio::null());
        cmd
    }

    /// `tool` as the harness's PATH finds it (its kubectl and helm come first).
    pub fn tool(&self, tool: &str) -> Result<PathBuf, String> {
        self.path
            .split(':')
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file())
            .ok_or(format!("no {tool} on the harness PATH"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.harness(&["down"]).stdout(Stdio::null()).status();
    }
}

/// ROUNDS from the environment, 5 by default, at least 1.
pub fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1)
}

/// 0 within budget or unless BENCH_ENFORCE=1, 1 over budget when enforced, 2 on an error.
pub fn exit(bench: &str, result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(ok) if ok || std::env::var("BENCH_ENFORCE").as_deref() != Ok("1") => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench {bench}: error: {e}");
            ExitCode::from(2)
        }
    }
}
