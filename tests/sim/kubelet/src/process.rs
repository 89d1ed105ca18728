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
    /// The container's volume mounts: (host file or directory, path in the container).
    pub mounts: Vec<(PathBuf, PathBuf)>,
}

/// One step of building the container's root, prepared before the fork (only system calls
/// between fork and exec).
enum Op {
    Mkdir(CString),
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    Chroot(CString),
    Chdir(CString),
}

fn c(s: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// A container path with the host's symlinks resolved the way they would be inside the root
/// (the host's file system is the image here): `/var/run/x` → `/run/x` on Debian.
fn resolve_in_root(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for comp in path.components().skip(1) {
        let next = out.join(comp);
        match std::fs::read_link(&next) {
            Ok(target) if target.is_absolute() => out = resolve_in_root(&target),
            Ok(target) => out = resolve_in_root(&out.join(target)),
            Err(_) => out = next,
        }
    }
    out
}

/// The root a container runs in: a tmpfs at `root` holding every top-level directory of the
/// host (bind-mounted; as an overlay with a throw-away upper layer where a volume is mounted
/// below it, so the host is never written), the volumes at their paths, the pod's hosts file and
/// resolver configuration, then chroot.
fn root_plan(spec: &Spec, root: &Path) -> io::Result<Vec<Op>> {
    let mounts: Vec<(PathBuf, PathBuf, bool)> = spec
        .mounts
        .iter()
        .chain(
            [
                (spec.hosts.clone(), PathBuf::from("/etc/hosts")),
                (spec.resolv.clone(), PathBuf::from("/etc/resolv.conf")),
            ]
            .iter(),
        )
        .map(|(src, dst)| (src.clone(), resolve_in_root(dst), src.is_file()))
        .collect();
    let top = |p: &Path| p.components().nth(1).map(|c| c.as_os_str().to_owned());
    let overlaid: Vec<std::ffi::OsString> = mounts
        .iter()
        .filter(|(_, dst, _)| dst.components().count() > 2)
        .filter_map(|(_, dst, _)| top(dst))
        .collect();
    let mut ops = vec![Op::Mount {
        source: c("tmpfs")?,
        target: c(root)?,
        fstype: Some(c("tmpfs")?),
        flags: 0,
        data: Some(c("mode=755")?),
    }];
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name();
        let host = Path::new("/").join(&name);
        let inside = root.join(&name);
        let meta = std::fs::symlink_metadata(&host)?;
        if meta.file_type().is_symlink() {
            ops.push(Op::Symlink {
                target: c(std::fs::read_link(&host)?)?,
                link: c(&inside)?,
            });
        } else if meta.is_dir() && name != "lost+found" {
            ops.push(Op::Mkdir(c(&inside)?));
            if overlaid.contains(&name) {
                let (upper, work) = (
                    root.join(".upper").join(&name),
                    root.join(".work").join(&name),
                );
                for d in [
                    root.join(".upper"),
                    root.join(".work"),
                    upper.clone(),
                    work.clone(),
                ] {
                    ops.push(Op::Mkdir(c(d)?));
                }
                let data = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    host.display(),
                    upper.display(),
                    work.display()
                );
                ops.push(Op::Mount {
                    source: c("overlay")?,
                    target: c(&inside)?,
                    fstype: Some(c("overlay")?),
                    flags: 0,
                    data: Some(c(data)?),
                });
            } else {
                ops.push(Op::Mount {
                    source: c(&host)?,
                    target: c(&inside)?,
                    fstype: None,
                    flags: libc::MS_BIND | libc::MS_REC,
                    data: None,
                });
            }
        }
    }
    for (src, dst, file) in &mounts {
        let target = root.join(dst.strip_prefix("/").unwrap_or(dst));
        let mut dir = root.to_path_buf();
        let parents: Vec<_> = target
            .strip_prefix(root)
            .unwrap_or(&target)
            .components()
            .collect();
        for (i, comp) in parents.iter().enumerate() {
            dir.push(comp);
            if i + 1 < parents.len() || !file {
                ops.push(Op::Mkdir(c(&dir)?));
            }
        }
        if *file {
            ops.push(Op::Touch(c(&target)?));
        }
        ops.push(Op::Mount {
            source: c(src)?,
            target: c(&target)?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        });
    }
    ops.push(Op::Chroot(c(root)?));
    ops.push(Op::Chdir(c(spec.cwd.as_deref().unwrap_or(Path::new("/")))?));
    Ok(ops)
}

/// Runs the plan (in the child, between fork and exec: system calls only).
unsafe fn run_plan(ops: &[Op]) -> io::Result<()> {
    let err = || Err(io::Error::last_os_error());
    for op in ops {
        // SAFETY: every pointer is a CString prepared before the fork and alive in `ops`.
        unsafe {
            match op {
                Op::Mkdir(p) => {
                    if libc::mkdir(p.as_ptr(), 0o755) < 0
                        && *libc::__errno_location() != libc::EEXIST
                    {
                        return err();
                    }
                }
                Op::Touch(p) => {
                    let fd = libc::open(
                        p.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd < 0 {
                        return err();
                    }
                    libc::close(fd);
                }
                Op::Symlink { target, link } => {
                    if libc::symlink(target.as_ptr(), link.as_ptr()) < 0 {
                        return err();
                    }
                }
                Op::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                } => {
                    let fs = fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
                    let d: *const libc::c_void = data
                        .as_ref()
                        .map_or(std::ptr::null(), |d| d.as_ptr().cast());
                    if libc::mount(source.as_ptr(), target.as_ptr(), fs, *flags, d) < 0 {
                        return err();
                    }
                }
                Op::Chroot(p) => {
                    if libc::chroot(p.as_ptr()) < 0 {
                        return err();
                    }
                }
                Op::Chdir(p) => {
                    if libc::chdir(p.as_ptr()) < 0 {
                        return err();
                    }
                }
            }
        }
    }
    Ok(())
}

/// Starts the process in `root` (an empty directory of the pod's). Errors are the runtime's
/// `RunContainerError`/`StartError`.
pub fn spawn(spec: &Spec, root: &Path) -> io::Result<Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::create_dir_all(root)?;
    let log = File::options().create(true).append(true).open(&spec.log)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let netns = File::open(&spec.netns)?;
    let plan = root_plan(spec, root)?;
    let slash = c("/")?;
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
                slash.as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                data,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            run_plan(&plan)
        });
    }
    cmd.spawn()
}

/// Sends `signal` to the process group a container leads.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process group this runner created; an exited group is ESRCH.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}
