//! `up` while the API server goes away (issue 11): the simulated kube-apiserver is stopped in
//! the middle of `up`'s apply and again during its wait, and started again 3 s later
//! (`tests/sim/cluster restart-apiserver`). Each time `up` either completes once it is back or
//! exits 3 with a message that says the cluster could not be reached, well before its
//! timeout; and the next `up` converges.

use std::process::Stdio;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::own::{Gitops, Setup, all_ready, one_at_a_time};
use crate::support::TestResult;

const WITH: &str = "rollouts,argocd,metrics";

pub fn trials() -> Vec<Trial> {
    vec![crate::support::trial(
        "up_rides_out_an_api_server_restart_in_its_apply_and_its_wait",
        || Ok(one_at_a_time(restarts)?),
    )]
}

/// Runs `up` and restarts the API server once its progress on stderr shows `marker`; returns
/// up's exit code and stderr.
fn up_with_restart(s: &Setup, marker: &str) -> Result<(Option<i32>, String, Duration), String> {
    let name: String = marker
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = s.project.dir.path().join(format!("{name}.stderr"));
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut child = s
        .project
        .command(&["up", "-o", "json", "--timeout", "3m"])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(marker) {
            break;
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("up ended ({status}) before `{marker}`:\n{text}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("up never reached `{marker}`:\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let restart = s
        .cluster
        .harness(&["restart-apiserver", "3"])
        .output()
        .map_err(|e| e.to_string())?;
    if !restart.status.success() {
        let _ = child.kill();
        return Err(format!(
            "restart-apiserver failed: {}",
            String::from_utf8_lossy(&restart.stderr)
        ));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    Ok((status.code(), stderr, start.elapsed()))
}

/// Completed, or exit 3 saying the cluster could not be reached, before the 3 min timeout.
fn completed_or_said_so(
    when: &str,
    (code, stderr, took): &(Option<i32>, String, Duration),
) -> TestResult {
    eprintln!(
        "api server restart {when}: up exit {code:?} after {:.1} s",
        took.as_secs_f64()
    );
    let clear =
        stderr.contains("cannot reach the cluster's API server") && stderr.contains("hint: ");
    match code {
        Some(0) => Ok(()),
        Some(3) if clear && *took < Duration::from_secs(170) => Ok(()),
        _ => Err(format!(
            "up with the API server restarted {when}: exit {code:?} after {took:?}:\n{stderr}"
        )),
    }
}

fn restarts() -> TestResult {
    let s = Setup::new(
        "sim-faults",
        WITH,
        "platform.yaml",
        Gitops::Remote("customer-platform"),
        |_| {},
    )?;
    // 1. During the apply: the namespaces step applies the platform's namespaces and RBAC.
    let during_apply = up_with_restart(&s, "up: [3/9] namespaces")?;
    completed_or_said_so("during the apply", &during_apply)?;
    // 2. During the wait for the applications (Argo CD syncing): a wait watches, and its
    // watches list again when the API server is back, so this up completes.
    let during_wait = up_with_restart(&s, "up: [9/9] wait")?;
    completed_or_said_so("during the wait", &during_wait)?;
    if during_wait.0 != Some(0) {
        return Err(format!(
            "up did not ride out a restart during its wait:\n{}",
            during_wait.1
        ));
    }
    // 3. The next up converges: Synced and Healthy, and one more changes nothing.
    let next = s.project.must(&["up", "-o", "json", "--timeout", "3m"])?;
    if !matches!(next.json["status"].as_str(), Some("Applied" | "Converged")) {
        return Err(format!("the up after the restarts: {}", next.json));
    }
    s.runtime
        .block_on(all_ready(&s.client, "customer-platform", 2))?;
    let again = s.project.must(&["up", "-o", "json"])?;
    if again.json["status"] != "Converged" {
        return Err(format!("a last up changed something: {}", again.json));
    }
    Ok(())
}
