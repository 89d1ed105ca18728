//! The documented exit codes, and the one place that maps an error to its code.

use crate::config;

/// Exit codes; stable and documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[repr(u8)]
pub enum Code {
    Success = 0,
    /// A check said no: lint violation, drift, SLO breached, validation failed.
    CheckFailed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// Environment error: cluster or endpoint unreachable, tool missing, file system.
    Environment = 3,
    TimedOut = 4,
    RolledBack = 5,
    Paused = 6,
    Interrupted = 130,
}

/// Errors that are the user's input, not the environment's fault.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub hint: Option<String>,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The command was stopped by SIGINT or SIGTERM; the message says what had been done and how to
/// go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Maps an error chain to an exit code: configuration and usage problems are 2, everything
/// else that stopped a command (I/O, missing tools) is 3.
pub fn classify(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::render::TemplateError>() {
            return Code::Usage;
        }
        if cause.is::<Interrupted>() {
            return Code::Interrupted;
        }
        if let Some(crate::promote::Error::Refused(_)) =
            cause.downcast_ref::<crate::promote::Error>()
        {
            return Code::CheckFailed;
        }
        if let Some(e) = cause.downcast_ref::<crate::rollout::Error>() {
            return match e {
                crate::rollout::Error::Refused(_) => Code::Usage,
                _ => Code::Environment,
            };
        }
        if let Some(code) = kube_code(cause) {
            return code;
        }
        if let Some(crate::down::Error::Stuck { .. }) = cause.downcast_ref::<crate::down::Error>() {
            return Code::TimedOut;
        }
        if let Some(e) = cause.downcast_ref::<crate::cluster::Error>() {
            return if e.is_usage() {
                Code::Usage
            } else {
                Code::Environment
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::addons::Error>() {
            if e.is_timeout() {
                return Code::TimedOut;
            }
            // The user decides: adopt the object or turn the addon off.
            if matches!(e, crate::addons::Error::Owned { .. }) {
                return Code::Usage;
            }
        }
        if let Some(crate::prom::Error::Url { .. }) = cause.downcast_ref::<crate::prom::Error>() {
            return Code::Usage;
        }
        if let Some(e) = cause.downcast_ref::<config::Error>() {
            return match e {
                config::Error::Invalid(_) => Code::Usage,
                config::Error::Read { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Code::Usage
                }
                config::Error::Read { .. } => Code::Environment,
            };
        }
    }
    Code::Environment
}

/// Whether `err` or one of its causes is the API server not answering (see [`unreachable`]).
pub fn is_unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(c) = cause {
        if unreachable(c) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether a cause is the API server not answering: the connection refused, reset, cut or
/// timed out (it restarts, the cluster is stopped, the network went away).
fn unreachable(cause: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as K;
    // The connection went away mid-request ("connection closed before message completed"): an
    // API server that stops closes its connections without an I/O error.
    if let Some(h) = cause.downcast_ref::<hyper::Error>()
        && (h.is_incomplete_message() || h.is_closed() || h.is_canceled() || h.is_timeout())
    {
        return true;
    }
    if cause
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect())
    {
        return true;
    }
    cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
        matches!(
            io.kind(),
            K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::TimedOut
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::NotConnected
        )
    })
}

/// A hint for the error, if some cause in the chain carries one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    let talks_to_kube = err
        .chain()
        .any(|c| c.is::<kube::Error>() || c.is::<crate::kube::Error>());
    let helm_unreachable = err.chain().any(|c| {
        c.downcast_ref::<crate::addons::Error>()
            .is_some_and(crate::addons::Error::is_unreachable)
    });
    if (talks_to_kube && err.chain().any(unreachable)) || helm_unreachable {
        return Some(
            "cannot reach the cluster's API server (the connection was refused, cut or timed \
             out): is the cluster running? `platformctl status` asks it; once it answers, run \
             the command again: `up` picks up where it stopped"
                .into(),
        );
    }
    for cause in err.chain() {
        if let Some(u) = cause.downcast_ref::<UsageError>() {
            return u.hint.clone();
        }
        if let Some(e) = cause.downcast_ref::<crate::addons::Error>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::kube::apply::Error>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::down::Error>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::cluster::Error>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::kube::Error>()
            && let Some(h) = e.hint()
        {
            return Some(h);
        }
        if let Some(e) = cause.downcast_ref::<crate::up::gitserver::Error>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::rollout::Error>()
            && let Some(h) = e.hint()
        {
            return Some(h);
        }
        if let Some(config::Error::Read { source, file }) = cause.downcast_ref::<config::Error>()
            && source.kind() == std::io::ErrorKind::NotFound
        {
            return Some(format!(
                "create one with `platformctl init --example customer-platform`, or pass `--file` (looked for `{}`)",
                file.display()
            ));
        }
    }
    None
}

/// The exit code of an apply or wait error: an object the API server refuses as invalid is the
/// user's (2), a wait that ran out is 4, a paused object is 6, a failed one is a check that
/// said no (1).
fn kube_code(cause: &(dyn std::error::Error + 'static)) -> Option<Code> {
    use crate::kube::{apply, wait};
    let wait_code = |e: &wait::Error| match e {
        wait::Error::TimedOut { .. } => Code::TimedOut,
        wait::Error::Paused { .. } => Code::Paused,
        wait::Error::Failed { .. } => Code::CheckFailed,
        wait::Error::Watch { .. } => Code::Environment,
    };
    if let Some(e) = cause.downcast_ref::<apply::Error>() {
        return Some(match e {
            apply::Error::Invalid { .. } => Code::Usage,
            apply::Error::Wait(w) => wait_code(w),
            _ => Code::Environment,
        });
    }
    cause.downcast_ref::<wait::Error>().map(wait_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CI run saw the API server go away during `helm list`: helm says so in its own words,
    /// and the hint must be the one for an unreachable cluster, not helm's history.
    #[test]
    fn helm_that_cannot_reach_the_cluster_gets_the_unreachable_hint() {
        let failed = |stderr: &str| {
            anyhow::Error::new(crate::addons::Error::Failed {
                action: "list",
                target: None,
                status: Some(1),
                stderr: stderr.into(),
            })
            .context("step `addons` failed")
        };
        let down = failed(
            "Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:10138/version\": dial tcp 127.0.0.1:10138: connect: connection refused",
        );
        assert_eq!(classify(&down), Code::Environment);
        assert!(
            hint(&down).is_some_and(|h| h.starts_with("cannot reach the cluster's API server")),
            "{:?}",
            hint(&down)
        );
        let other = failed("Error: INSTALLATION FAILED: chart requires kubeVersion >=1.35");
        assert_eq!(hint(&other), None);
    }
}
