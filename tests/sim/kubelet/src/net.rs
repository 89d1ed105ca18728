//! A pod's network, as a CNI bridge plugin makes one: a network namespace of its own
//! (`/run/netns/<prefix>-<uid>`) with a veth pair whose host end is on the cluster's bridge
//! (made by `tests/sim/cluster`), the pod IP on its `eth0` and `lo` up. Its only route is the
//! pod CIDR, on-link: there is no default route, so nothing a pod sends can leave the machine,
//! and the host forwards nothing (ip_forward stays off). Pod IPs cannot be loopback addresses:
//! the API server refuses 127.0.0.0/8 in EndpointSlices, and Services, Prometheus' service
//! discovery and the API server's endpoint routing all read those.
//!
//! Done with iproute2's `ip`, as root.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use tokio::process::Command;

pub struct Net {
    /// `ip netns` names start with this (one cluster's pods; `down` removes what is left).
    pub prefix: String,
    pub bridge: String,
    pub prefix_len: u8,
}

impl Net {
    pub fn namespace(&self, uid: &str) -> String {
        format!("{}-{}", self.prefix, short(uid))
    }

    pub fn path(&self, uid: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(self.namespace(uid))
    }

    /// Makes the pod's namespace and link; idempotent for a pod that already has them.
    pub async fn attach(&self, uid: &str, addr: Ipv4Addr) -> anyhow::Result<()> {
        let ns = self.namespace(uid);
        if self.path(uid).exists() {
            self.detach(uid).await;
        }
        let host_end = format!("vp{}", short(uid));
        let cidr = format!("{addr}/{}", self.prefix_len);
        // Two `ip -batch` runs: the namespace and the link from here, then inside it.
        let outside = format!(
            "netns add {ns}\nlink add {host_end} type veth peer name eth0 netns {ns}\nlink set {host_end} master {} up\n",
            self.bridge
        );
        let inside = format!("addr add {cidr} dev eth0\nlink set eth0 up\nlink set lo up\n");
        let made = match batch(&[], &outside).await {
            Ok(()) => batch(&["-n", &ns], &inside).await,
            Err(e) => Err(e),
        };
        if made.is_err() {
            self.detach(uid).await;
        }
        made
    }

    /// Removes the namespace (and with it the veth pair).
    pub async fn detach(&self, uid: &str) {
        let _ = ip(&["netns", "del", &self.namespace(uid)]).await;
    }
}

/// 12 hex digits of the pod's UID: unique enough on one machine, short enough for a link name
/// (15 bytes at most).
fn short(uid: &str) -> String {
    uid.chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect()
}

/// `ip [args] -batch -` with `commands` on its standard input.
async fn batch(args: &[&str], commands: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new("ip")
        .args(args)
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run ip (iproute2)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(commands.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "ip {} -batch: {} ({})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            commands.trim().replace('\n', "; ")
        );
    }
    Ok(())
}

async fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .context("cannot run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn link_names_fit() {
        let s = short("8b27197b-39f9-483f-9d89-5900707e1db1");
        assert_eq!(s, "8b27197b39f9");
        assert!(format!("vp{s}").len() <= 15);
    }
}
