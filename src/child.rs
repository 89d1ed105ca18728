//! Child processes that cannot outlive platformctl. A `helm upgrade` left running after
//! platformctl was killed (SIGKILL, an OOM kill, a closed CI job) would keep writing a release
//! while the next `up` recovers it; on Linux the kernel ends such a child with its parent.
//!
//! Only for children that write to the cluster; tools that only answer questions need nothing.

/// Asks the kernel to SIGKILL the child when the thread that spawned it dies (the tokio worker
/// threads live as long as the runtime, so: when platformctl dies). A no-op off Linux.
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; this is the
        // documented use of pre_exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody will signal.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("platformctl exited"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
