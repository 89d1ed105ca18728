//! `minikube status -o json`, typed.
//!
//! minikube prints one status object for a single-node profile and an array for several
//! (`statusJSON` in `cmd/minikube/cmd/status.go`), exits non-zero with the JSON still on stdout
//! when something is down (bitmask: 1 host, 2 kubelet or API server, 4 kubeconfig), and exits
//! 85 (`ExGuestNotFound`) with only CloudEvents lines on stdout when the profile does not exist.

use serde::Deserialize;
use serde_json::Value;

/// minikube's exit code for "there is no profile of that name" (`reason.ExGuestNotFound`).
pub const EXIT_PROFILE_NOT_FOUND: i32 = 85;

/// A profile as `minikube status` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileStatus {
    /// No profile of that name: `minikube start` creates it.
    Absent,
    /// Every node's host is stopped: `minikube start` restarts it.
    Stopped { nodes: Vec<NodeStatus> },
    /// Every node's host and kubelet run, the API server runs and the kubeconfig points at it.
    Running { nodes: Vec<NodeStatus> },
    /// Anything in between; `reason` names the first nodes and components that are not right.
    Degraded {
        nodes: Vec<NodeStatus>,
        reason: String,
    },
}

impl ProfileStatus {
    pub fn nodes(&self) -> &[NodeStatus] {
        match self {
            ProfileStatus::Absent => &[],
            ProfileStatus::Stopped { nodes }
            | ProfileStatus::Running { nodes }
            | ProfileStatus::Degraded { nodes, .. } => nodes,
        }
    }

    /// Everything runs and only the kubeconfig entry is stale (the API server endpoint moved,
    /// e.g. after a restart): `minikube update-context` repairs it.
    pub fn only_kubeconfig_stale(&self) -> bool {
        let ProfileStatus::Degraded { nodes, .. } = self else {
            return false;
        };
        let mut stale = false;
        for n in nodes {
            if !n.running() {
                return false;
            }
            if !n.worker && n.kubeconfig == MISCONFIGURED {
                stale = true;
            }
        }
        stale
    }
}

/// One node's line of `minikube status`; states are minikube's words (`Running`, `Stopped`,
/// `Paused`, `Error`, `Nonexistent`, `Configured`, `Misconfigured`, `Irrelevant`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    pub name: String,
    pub host: String,
    pub kubelet: String,
    #[serde(rename = "APIServer")]
    pub apiserver: String,
    pub kubeconfig: String,
    #[serde(default)]
    pub worker: bool,
}

const RUNNING: &str = "Running";
const CONFIGURED: &str = "Configured";
const MISCONFIGURED: &str = "Misconfigured";

impl NodeStatus {
    /// Host and kubelet run, and on a control-plane node the API server too.
    fn running(&self) -> bool {
        self.host == RUNNING
            && self.kubelet == RUNNING
            && (self.worker || self.apiserver == RUNNING)
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.host != RUNNING {
            out.push(format!("host is {}", self.host));
        } else {
            if self.kubelet != RUNNING {
                out.push(format!("kubelet is {}", self.kubelet));
            }
            if !self.worker && self.apiserver != RUNNING {
                out.push(format!("apiserver is {}", self.apiserver));
            }
            if !self.worker && self.kubeconfig != CONFIGURED {
                out.push(format!("kubeconfig is {}", self.kubeconfig));
            }
        }
        out.into_iter()
            .map(|p| format!("node `{}`: {p}", self.name))
            .collect()
    }
}

/// Reads the output and exit code of `minikube status -o json`. The error is a reason for a
/// message: the output held no status.
pub fn parse(stdout: &str, code: Option<i32>) -> Result<ProfileStatus, String> {
    if code == Some(EXIT_PROFILE_NOT_FOUND) {
        return Ok(ProfileStatus::Absent);
    }
    let mut nodes: Option<Vec<NodeStatus>> = None;
    let mut messages = Vec::new();
    for value in serde_json::Deserializer::from_str(stdout).into_iter::<Value>() {
        let value = value.map_err(|e| format!("not JSON: {e}"))?;
        match value {
            // CloudEvents: minikube's messages in JSON mode (warnings, "not found", errors).
            Value::Object(ref o) if o.contains_key("specversion") => {
                if let Some(m) = o
                    .get("data")
                    .and_then(|d| d.get("message"))
                    .and_then(Value::as_str)
                {
                    messages.push(m.trim().to_string());
                }
            }
            Value::Object(_) => nodes = Some(vec![node(value)?]),
            Value::Array(items) => {
                nodes = Some(items.into_iter().map(node).collect::<Result<_, _>>()?);
            }
            Value::Null => nodes = Some(Vec::new()),
            other => return Err(format!("unexpected JSON value `{other}`")),
        }
    }
    let Some(nodes) = nodes else {
        if messages.iter().any(|m| m.contains("not found")) {
            return Ok(ProfileStatus::Absent);
        }
        return Err(if messages.is_empty() {
            "no status in the output".into()
        } else {
            format!("no status in the output: {}", messages.join(" "))
        });
    };
    Ok(classify(nodes))
}

fn node(value: Value) -> Result<NodeStatus, String> {
    serde_json::from_value(value).map_err(|e| format!("not a node status: {e}"))
}

fn classify(nodes: Vec<NodeStatus>) -> ProfileStatus {
    if nodes.is_empty() {
        return ProfileStatus::Degraded {
            nodes,
            reason: "minikube reports no node (the profile exists but a node's machine is missing)"
                .into(),
        };
    }
    if nodes.iter().all(|n| n.host == "Stopped") {
        return ProfileStatus::Stopped { nodes };
    }
    let problems: Vec<String> = nodes.iter().flat_map(NodeStatus::problems).collect();
    if problems.is_empty() {
        ProfileStatus::Running { nodes }
    } else {
        ProfileStatus::Degraded {
            nodes,
            reason: problems.join("; "),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The fixtures are minikube's documented `status -o json` shapes (see
    //! tests/fixtures/minikube/README.md); minikube itself cannot run here.
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/minikube/", $name))
        };
    }

    fn names(s: &ProfileStatus) -> Vec<&str> {
        s.nodes().iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn single_node_is_an_object() {
        let s = parse(fixture!("status-single-running.json"), Some(0)).expect("parses");
        assert!(matches!(s, ProfileStatus::Running { .. }), "{s:?}");
        assert_eq!(names(&s), ["customer-platform"]);
        assert!(!s.nodes()[0].worker);
    }

    #[test]
    fn multi_node_is_an_array_with_workers() {
        let s = parse(fixture!("status-multi-running.json"), Some(0)).expect("parses");
        assert!(matches!(s, ProfileStatus::Running { .. }), "{s:?}");
        assert_eq!(
            names(&s),
            [
                "customer-platform",
                "customer-platform-m02",
                "customer-platform-m03"
            ]
        );
        assert_eq!(
            s.nodes().iter().map(|n| n.worker).collect::<Vec<_>>(),
            [false, true, true]
        );
    }

    #[test]
    fn stopped_profile_exits_non_zero_with_json() {
        let s = parse(fixture!("status-multi-stopped.json"), Some(7)).expect("parses");
        assert!(matches!(s, ProfileStatus::Stopped { .. }), "{s:?}");
        assert_eq!(s.nodes().len(), 3);
    }

    #[test]
    fn one_stopped_worker_is_degraded_and_named() {
        let s = parse(fixture!("status-multi-degraded.json"), Some(7)).expect("parses");
        assert_eq!(
            s,
            ProfileStatus::Degraded {
                nodes: s.nodes().to_vec(),
                reason: "node `customer-platform-m03`: host is Stopped".into()
            }
        );
        assert!(!s.only_kubeconfig_stale());
    }

    #[test]
    fn stale_kubeconfig_is_degraded_and_repairable() {
        let s = parse(fixture!("status-single-misconfigured.json"), Some(4)).expect("parses");
        assert!(
            matches!(&s, ProfileStatus::Degraded { reason, .. }
                if reason == "node `customer-platform`: kubeconfig is Misconfigured"),
            "{s:?}"
        );
        assert!(s.only_kubeconfig_stale());
    }

    #[test]
    fn absent_profile_is_exit_85_with_only_events() {
        assert_eq!(
            parse(fixture!("status-absent.json"), Some(85)),
            Ok(ProfileStatus::Absent)
        );
        // Also recognised from the event alone, should the exit code ever change.
        assert_eq!(
            parse(fixture!("status-absent.json"), Some(1)),
            Ok(ProfileStatus::Absent)
        );
    }

    #[test]
    fn null_means_a_node_machine_is_missing() {
        let s = parse(fixture!("status-null.json"), Some(0)).expect("parses");
        assert!(matches!(s, ProfileStatus::Degraded { ref nodes, .. } if nodes.is_empty()));
    }

    #[test]
    fn events_before_the_status_are_skipped_and_garbage_is_an_error() {
        let out = format!(
            "{}\n{}",
            r#"{"data":{"message":"minikube 1.99.0 is available!"},"specversion":"1.0","type":"io.k8s.sigs.minikube.warning"}"#,
            fixture!("status-single-running.json")
        );
        assert!(matches!(
            parse(&out, Some(0)),
            Ok(ProfileStatus::Running { .. })
        ));
        assert!(
            parse("E0101 error loading config", Some(1))
                .expect_err("not json")
                .starts_with("not JSON")
        );
        assert_eq!(parse("", Some(0)), Err("no status in the output".into()));
        let paused = fixture!("status-single-running.json")
            .replace(r#""APIServer":"Running""#, r#""APIServer":"Paused""#);
        assert!(matches!(
            parse(&paused, Some(2)),
            Ok(ProfileStatus::Degraded { reason, .. }) if reason == "node `customer-platform`: apiserver is Paused"
        ));
    }
}
