//! Running the built binary as a user does, for the tests of the command line
//! (`tests/cli.rs`, `tests/hardening.rs`): stdout, stderr and exit code, in a scratch directory.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The whole observable result, for snapshots.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn platformctl(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_platformctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("PLATFORMCTL_FILE")
        .env_remove("PLATFORMCTL_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn base_config() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("platform.yaml")).expect("root platform.yaml")
}

/// Files under `dir`, relative, sorted: to prove what a command wrote or left alone.
pub fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `platformctl` with extra environment variables (and nothing else of this process's
/// KUBECONFIG or PLATFORMCTL_* settings).
pub fn platformctl_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_platformctl"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PLATFORMCTL_FILE")
        .env_remove("PLATFORMCTL_LOG")
        .env_remove("PLATFORMCTL_MINIKUBE")
        .env_remove("PLATFORMCTL_PROC")
        .env_remove("PLATFORMCTL_HELM")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// git in `dir`, with no user or system configuration; its stdout.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
