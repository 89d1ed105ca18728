//! The README's main job without Docker, run exactly as the README gives it (the line that
//! starts with `tests/sim/main-job`), with HOME a directory of the test's own so `~` is too, and
//! the simulated cluster on a state directory and ports of its own. It must end with
//! `platformctl status` showing the platform Synced, Healthy, serving and scraped, and a second
//! run must reuse all of it.

use std::path::Path;
use std::process::{Command, Stdio};

use libtest_mimic::Trial;

use crate::own::one_at_a_time;
use crate::support::{self, TestResult};

pub fn trials() -> Vec<Trial> {
    vec![crate::support::trial(
        "readme_main_job_without_docker_runs_as_typed_and_again",
        || Ok(one_at_a_time(main_job)?),
    )]
}

/// The README's line.
fn readme_line() -> Result<String, String> {
    let readme = std::fs::read_to_string(support::repo_root().join("README.md"))
        .map_err(|e| e.to_string())?;
    readme
        .lines()
        .find(|l| l.starts_with("tests/sim/main-job "))
        .map(str::to_string)
        .ok_or_else(|| "README.md has no line starting with `tests/sim/main-job `".into())
}

/// What `go env` says, asked with the real HOME (the test's HOME would move Go's caches).
fn go_env(name: &str) -> Option<String> {
    let out = Command::new("go").args(["env", name]).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn main_job() -> TestResult {
    let line = readme_line()?;
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-readme");
    let port_base = crate::free_port_base()?;
    let real_home = std::env::var("HOME").map_err(|_| "HOME is not set")?;
    let run = || -> Result<std::process::Output, String> {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &line])
            .current_dir(support::repo_root())
            .env("HOME", home.path())
            .env("PLATFORMCTL_SIM_DIR", &state)
            .env("PLATFORMCTL_SIM_PORT_BASE", port_base.to_string())
            .stdin(Stdio::null());
        // The toolchains and caches stay where they are (only `~` in the line moves).
        for (var, default) in [
            ("CARGO_HOME", format!("{real_home}/.cargo")),
            ("RUSTUP_HOME", format!("{real_home}/.rustup")),
            (
                "PLATFORMCTL_SIM_CACHE",
                format!("{real_home}/.cache/platformctl-sim"),
            ),
        ] {
            cmd.env(var, std::env::var(var).unwrap_or(default));
        }
        for var in ["GOPATH", "GOMODCACHE", "GOCACHE"] {
            if let Some(v) = std::env::var(var).ok().or_else(|| go_env(var)) {
                cmd.env(var, v);
            }
        }
        cmd.output().map_err(|e| e.to_string())
    };
    let stop = || {
        let _ = support::harness_command_in(&state, port_base, &["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    let result = (|| {
        let first = run()?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&first.stdout).into_owned(),
            String::from_utf8_lossy(&first.stderr).into_owned(),
        );
        if !first.status.success() {
            return Err(format!(
                "`{line}` failed ({}):\n{stderr}\n{stdout}",
                first.status
            ));
        }
        status_shows_it_all(&stdout)?;
        let dir = home.path().join("customer-platform");
        if !dir.join("platform.yaml").is_file() || !dir.join(".git").is_dir() {
            return Err(format!(
                "{} has no platform.yaml in a git repository",
                dir.display()
            ));
        }
        // Again: the cluster reused, init skipped, up converges.
        let again = run()?;
        let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
        if !again.status.success() || !stderr.contains("not running init") {
            return Err(format!(
                "`{line}` again ({}):\n{stderr}\n{stdout}",
                again.status
            ));
        }
        status_shows_it_all(&stdout)
    })();
    stop();
    result
}

/// `platformctl status`'s table: both applications Synced and Healthy, both rollouts Healthy with
/// every replica Ready, and prod's ServiceMonitor with a target up per pod.
fn status_shows_it_all(stdout: &str) -> TestResult {
    let has = |words: &[&str]| {
        stdout.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            words.iter().all(|w| cols.contains(w))
        })
    };
    let want: [&[&str]; 5] = [
        &["customer-platform-dev", "Synced", "Healthy"],
        &["customer-platform-prod", "Synced", "Healthy"],
        &["dev", "customer-api", "Healthy", "1/1"],
        &["prod", "customer-api", "Healthy", "3/3"],
        &["serviceMonitor/prod/customer-api/0", "3/3", "up"],
    ];
    match want.iter().find(|w| !has(w)) {
        Some(missing) => Err(format!("status shows no line with {missing:?}:\n{stdout}")),
        None => Ok(()),
    }
}
