//! One container as one OS process: what a container runtime gives it, as far as a process on
//! this host can have it. It gets its own session and process group (signals reach everything
//! it starts), dies with the runner (`PR_SET_PDEATHSIG`), joins its pod's network namespace
//! (see `net`: the pod IP, its own localhost), and runs in a private mount namespace where
//! `/etc/hosts` is its pod's cluster names (see `hosts`) and `/etc/resolv.conf` names only a
//! resolver that does not answer, so no cluster name ever goes to the host's DNS. Its output goes
//! to a log file per container start.
//!
//! Not a container: the process shares the host's file system, users and limits.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

pub struct Spec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub log: PathBuf,
    pub hosts: PathBuf,
    pub resolv: PathBuf,
    /// The pod's network namespace (`/run/netns/...`).
    pub netns: PathBuf,
}

/// Starts the process. Errors are the runtime's `RunContainerError`/`StartError`.
pub fn spawn(spec: &Spec) -> io::Result<Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = File::options().create(true).append(true).open(&spec.log)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let netns = File::open(&spec.netns)?;
    let hosts = c_path(&spec.hosts)?;
    let resolv = c_path(&spec.resolv)?;
    let etc_hosts = CString::new("/etc/hosts").expect("no NUL");
    let etc_resolv = CString::new("/etc/resolv.conf").expect("no NUL");
    let root = CString::new("/").expect("no NUL");
    // SAFETY: between fork and exec only system calls are made, on memory prepared before the
    // fork (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                return Err(io::Error::last_os_error());
            }
            let none: *const libc::c_char = std::ptr::null();
            let data: *const libc::c_void = std::ptr::null();
            if libc::mount(
                none,
                root.as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                data,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            for (from, to) in [(&hosts, &etc_hosts), (&resolv, &etc_resolv)] {
                if libc::mount(from.as_ptr(), to.as_ptr(), none, libc::MS_BIND, data) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// Sends `signal` to the process group a container leads.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process group this runner created; an exited group is ESRCH.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}
