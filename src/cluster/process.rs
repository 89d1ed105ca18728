//! Running an external program to completion with its output captured (minikube here, the
//! tools `doctor` inspects). Nothing is inherited on the terminal: platformctl decides what the
//! user sees.

use std::ffi::OsStr;
use std::io;
use std::process::Stdio;
use std::time::Duration;

/// What a finished program left.
#[derive(Debug, Clone)]
pub struct Output {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last `lines` lines of stderr (or of stdout when stderr is empty), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let all: Vec<&str> = text.trim_end().lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Runs `program args` with extra `env`, waiting at most `timeout` (then it is killed and the
/// error kind is `TimedOut`). The child is killed if the future is dropped (interrupt).
pub async fn run<S: AsRef<OsStr>>(
    program: &OsStr,
    args: &[S],
    env: &[(&str, &OsStr)],
    timeout: Option<Duration>,
) -> io::Result<Output> {
    let mut attempt = 0;
    let child = loop {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::child::die_with_parent(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match cmd.spawn() {
            Ok(child) => break child,
            // ETXTBSY: the executable was just written and another thread's fork still holds
            // it open for writing; it clears as soon as that child execs.
            Err(e) if e.raw_os_error() == Some(26) && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let wait = child.wait_with_output();
    let out = match timeout {
        Some(t) => tokio::time::timeout(t, wait).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", t.as_secs()),
            )
        })??,
        None => wait.await?,
    };
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
