//! The machine minikube runs on: CPUs and memory against what the nodes ask for, and the
//! known multi-node pitfalls that can be checked locally.
//!
//! With minikube's docker driver every node is a container on this host, so the nodes share its
//! CPUs and memory: `nodes × cpus` and `nodes × memory` are what count, against what Docker
//! reports (`docker info`) or else the host (`/proc`).

use std::path::Path;

use super::{Capacity, Finding};
use crate::config::Cluster;

/// What `kind` and minikube recommend for multi-node clusters (kind's known issues, "Pod errors
/// due to too many open files"); many distributions default to 128 and 8192.
pub const INOTIFY_INSTANCES: u64 = 512;
pub const INOTIFY_WATCHES: u64 = 524_288;

/// The host's CPUs and memory from `/proc` (`cpuinfo`, `meminfo`).
pub fn capacity(proc_root: &Path) -> Option<Capacity> {
    let cpuinfo = std::fs::read_to_string(proc_root.join("cpuinfo")).ok();
    let cpus = cpuinfo
        .map(|t| {
            t.lines()
                .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
                .count() as u32
        })
        .filter(|n| *n > 0)
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u32)
        })?;
    let meminfo = std::fs::read_to_string(proc_root.join("meminfo")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    Some(Capacity {
        source: "this host",
        cpus,
        memory_mib: kib("MemTotal")? / 1024,
        available_mib: kib("MemAvailable").map(|k| k / 1024),
    })
}

pub fn cpu(cluster: &Cluster, cap: &Capacity) -> Finding {
    const CHECK: &str = "host/cpu";
    let total = cluster.nodes * cluster.cpus;
    if cluster.cpus > cap.cpus {
        return Finding::error(
            CHECK,
            format!(
                "cluster.cpus is {} per node, but {} has {} CPUs",
                cluster.cpus, cap.source, cap.cpus
            ),
            format!("set `cluster.cpus` to at most {}", cap.cpus.max(2)),
        );
    }
    if total > cap.cpus {
        return Finding::warn(
            CHECK,
            format!(
                "{} nodes × {} CPUs = {total} CPUs, {} has {}: the nodes share them (a limit, not a \
                 reservation), so expect slow starts and timeouts under load",
                cluster.nodes, cluster.cpus, cap.source, cap.cpus
            ),
            "fewer `cluster.nodes`, or a machine with more CPUs".into(),
        );
    }
    Finding::ok(
        CHECK,
        format!(
            "{} nodes × {} CPUs = {total} CPUs, {} has {}",
            cluster.nodes, cluster.cpus, cap.source, cap.cpus
        ),
    )
}

pub fn memory(cluster: &Cluster, cap: &Capacity) -> Finding {
    const CHECK: &str = "host/memory";
    let need = u64::from(cluster.nodes) * u64::from(cluster.memory);
    let asked = format!(
        "{} nodes × {} MiB = {need} MiB",
        cluster.nodes, cluster.memory
    );
    // Leave a tenth for the host itself; minikube refuses less than 1800 MiB per node.
    let fits = (cap.memory_mib * 9 / 10) / u64::from(cluster.nodes.max(1));
    let fix = if fits >= 1800 {
        format!(
            "set `cluster.memory` to at most {fits} MiB, or fewer `cluster.nodes`, or give {} more \
             memory",
            cap.source
        )
    } else {
        format!(
            "fewer `cluster.nodes` (each needs ≥ 1800 MiB), or give {} more memory",
            cap.source
        )
    };
    if need > cap.memory_mib {
        return Finding::error(
            CHECK,
            format!("{asked}, but {} has {} MiB", cap.source, cap.memory_mib),
            fix,
        );
    }
    if let Some(free) = cap.available_mib
        && need > free
    {
        return Finding::warn(
            CHECK,
            format!(
                "{asked}, more than the {free} MiB available on {} now (of {} MiB)",
                cap.source, cap.memory_mib
            ),
            format!("close memory-hungry programs, or {fix}"),
        );
    }
    Finding::ok(
        CHECK,
        format!("{asked}, {} has {} MiB", cap.source, cap.memory_mib),
    )
}

/// `fs.inotify.max_user_{instances,watches}`: they are not namespaced, so every node container
/// and every pod in it draws from the host's per-user budget.
pub fn inotify(cluster: &Cluster, proc_root: &Path) -> Option<Finding> {
    const CHECK: &str = "pitfall/inotify";
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(proc_root.join("sys/fs/inotify").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let instances = read("max_user_instances")?;
    let watches = read("max_user_watches")?;
    let mut low = Vec::new();
    if instances < INOTIFY_INSTANCES {
        low.push(format!(
            "fs.inotify.max_user_instances is {instances} (< {INOTIFY_INSTANCES})"
        ));
    }
    if watches < INOTIFY_WATCHES {
        low.push(format!(
            "fs.inotify.max_user_watches is {watches} (< {INOTIFY_WATCHES})"
        ));
    }
    if low.is_empty() {
        return Some(Finding::ok(
            CHECK,
            format!("inotify limits: max_user_instances {instances}, max_user_watches {watches}"),
        ));
    }
    Some(Finding::warn(
        CHECK,
        format!(
            "{}: with {} node{} and the platform's pods, pods can fail with \"too many open files\"",
            low.join(", "),
            cluster.nodes,
            if cluster.nodes == 1 { "" } else { "s" }
        ),
        format!(
            "sudo sysctl -w fs.inotify.max_user_instances={INOTIFY_INSTANCES} \
             fs.inotify.max_user_watches={INOTIFY_WATCHES}; to keep it, put both settings in \
             /etc/sysctl.d/99-inotify.conf"
        ),
    ))
}

/// minikube's default StorageClass is the hostPath storage-provisioner, which creates every
/// volume on the control-plane node only (minikube#12165, #11765).
pub fn storage(cluster: &Cluster) -> Option<Finding> {
    (cluster.nodes > 1).then(|| {
        Finding::warn(
            "pitfall/storage",
            format!(
                "minikube's default StorageClass (storage-provisioner, hostPath) keeps volumes on \
                 the control-plane node `{}`: a pod with a PersistentVolumeClaim scheduled on a \
                 worker gets an empty directory it cannot write to",
                cluster.profile
            ),
            format!(
                "pin stateful pods to the control plane (nodeSelector \
                 kubernetes.io/hostname: {}), or install a node-aware provisioner such as \
                 rancher/local-path-provisioner and make it the default StorageClass",
                cluster.profile
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Severity;

    fn cluster(nodes: u32, cpus: u32, memory: u32) -> Cluster {
        Cluster {
            nodes,
            cpus,
            memory,
            profile: "customer-platform".into(),
            ..Cluster::default()
        }
    }

    fn cap(cpus: u32, memory_mib: u64, available_mib: Option<u64>) -> Capacity {
        Capacity {
            source: "this host",
            cpus,
            memory_mib,
            available_mib,
        }
    }

    #[test]
    fn proc_capacity() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("cpuinfo"),
            "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n",
        )
        .expect("cpuinfo");
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       16384000 kB\nMemFree:         1000 kB\nMemAvailable:    8192000 kB\n",
        )
        .expect("meminfo");
        assert_eq!(capacity(dir.path()), Some(cap(2, 16000, Some(8000))));
        assert_eq!(capacity(&dir.path().join("none")), None);
    }

    #[test]
    fn cpus_per_node_and_shared() {
        let host = cap(4, 32000, None);
        assert_eq!(cpu(&cluster(1, 8, 4096), &host).severity, Severity::Error);
        let shared = cpu(&cluster(3, 2, 4096), &host);
        assert_eq!(shared.severity, Severity::Warn);
        assert!(
            shared
                .message
                .starts_with("3 nodes × 2 CPUs = 6 CPUs, this host has 4")
        );
        assert_eq!(cpu(&cluster(2, 2, 4096), &host).severity, Severity::Ok);
    }

    #[test]
    fn memory_against_total_and_available() {
        let too_much = memory(&cluster(3, 2, 4096), &cap(8, 8000, None));
        assert_eq!(too_much.severity, Severity::Error);
        assert_eq!(
            too_much.message,
            "3 nodes × 4096 MiB = 12288 MiB, but this host has 8000 MiB"
        );
        assert_eq!(
            too_much.fix.as_deref(),
            Some(
                "set `cluster.memory` to at most 2400 MiB, or fewer `cluster.nodes`, or give this \
                 host more memory"
            )
        );
        let busy = memory(&cluster(2, 2, 4096), &cap(8, 16000, Some(6000)));
        assert_eq!(busy.severity, Severity::Warn);
        assert_eq!(
            memory(&cluster(2, 2, 4096), &cap(8, 16000, Some(12000))).severity,
            Severity::Ok
        );
        let tiny = memory(&cluster(3, 2, 4096), &cap(8, 4000, None));
        assert!(tiny.fix.expect("fix").starts_with("fewer `cluster.nodes`"));
    }

    #[test]
    fn inotify_limits_from_proc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ino = dir.path().join("sys/fs/inotify");
        std::fs::create_dir_all(&ino).expect("dirs");
        assert!(
            inotify(&cluster(3, 2, 4096), dir.path()).is_none(),
            "unreadable: no finding"
        );
        std::fs::write(ino.join("max_user_instances"), "128\n").expect("w");
        std::fs::write(ino.join("max_user_watches"), "524288\n").expect("w");
        let low = inotify(&cluster(3, 2, 4096), dir.path()).expect("finding");
        assert_eq!(low.severity, Severity::Warn);
        assert!(
            low.message
                .starts_with("fs.inotify.max_user_instances is 128 (< 512): with 3 nodes"),
            "{}",
            low.message
        );
        assert!(
            low.fix
                .expect("fix")
                .contains("fs.inotify.max_user_instances=512")
        );
        std::fs::write(ino.join("max_user_instances"), "8192\n").expect("w");
        assert_eq!(
            inotify(&cluster(3, 2, 4096), dir.path())
                .expect("f")
                .severity,
            Severity::Ok
        );
    }

    #[test]
    fn storage_pitfall_only_on_multi_node() {
        assert!(storage(&cluster(1, 2, 4096)).is_none());
        let f = storage(&cluster(3, 2, 4096)).expect("finding");
        assert_eq!(f.severity, Severity::Warn);
        assert!(f.message.contains("control-plane node `customer-platform`"));
    }
}
