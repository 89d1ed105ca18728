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

/// Maps an error chain to an exit code: configuration and usage problems are 2, everything
/// else that stopped a command (I/O, missing tools) is 3.
pub fn classify(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::render::TemplateError>() {
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

/// A hint for the error, if some cause in the chain carries one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(u) = cause.downcast_ref::<UsageError>() {
            return u.hint.clone();
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
