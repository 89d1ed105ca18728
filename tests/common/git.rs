//! git for tests, without the developer's configuration. Included with `#[path]` by
//! tests/common/platform.rs (the cluster tests, tests/cli.rs and the `up` benchmark).

use std::path::Path;
use std::process::Command;

/// git with no system or user configuration, so a developer's settings change nothing.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=platformctl tests",
            "-c",
            "user.email=tests@platformctl.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
