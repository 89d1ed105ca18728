//! Cluster names for processes on this host: stands in for cluster DNS (CoreDNS) and, for
//! Services with a ClusterIP, for kube-proxy, which cannot route ClusterIPs here. A Service's
//! names (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) resolve to the addresses
//! of its ready endpoints — pod IPs on loopback — as a headless Service's do in a real cluster;
//! a StatefulSet pod's `hostname.svc.ns.svc.cluster.local` to its own address. A client of a
//! Service whose `port` differs from its `targetPort` would reach the pod on the Service port,
//! so such Services are not load-balanced here (none of the platform's differ).
//!
//! The names are written as hosts files, rewritten in place (each is bind-mounted over
//! `/etc/hosts`, and a bind mount follows the inode): one per pod (its namespace's short names,
//! its own name, every fully qualified name) and `cluster`, for the controllers the harness runs
//! out of cluster (fully qualified names only).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// A ready endpoint's address and hostname (a StatefulSet pod's).
type Endpoint = (IpAddr, Option<String>);

#[derive(Default)]
struct Table {
    /// (namespace, service) of every Service but ExternalName ones.
    services: BTreeSet<(String, String)>,
    /// (namespace, slice name) → its Service and ready endpoints.
    slices: BTreeMap<(String, String), (String, Vec<Endpoint>)>,
    /// Registered pod hosts files: path → (namespace, own lines).
    pods: BTreeMap<PathBuf, (String, String)>,
}

pub struct Hosts {
    dir: PathBuf,
    table: Mutex<Table>,
}

const DOMAIN: &str = "svc.cluster.local";

impl Hosts {
    pub fn new(dir: PathBuf) -> std::io::Result<Hosts> {
        std::fs::create_dir_all(&dir)?;
        let hosts = Hosts {
            dir,
            table: Mutex::new(Table::default()),
        };
        hosts.write_all();
        Ok(hosts)
    }

    /// The controllers' file.
    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join("cluster")
    }

    pub fn service(&self, svc: &Service, present: bool) {
        let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
            return;
        };
        let mut t = self.table.lock().expect("hosts table");
        let key = (ns.clone(), name.clone());
        let external = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
        if present && !external {
            t.services.insert(key);
        } else {
            t.services.remove(&key);
        }
        drop(t);
        self.write_all();
    }

    pub fn slice(&self, slice: &EndpointSlice, present: bool) {
        let (Some(ns), Some(name)) = (&slice.metadata.namespace, &slice.metadata.name) else {
            return;
        };
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned();
        let mut t = self.table.lock().expect("hosts table");
        let key = (ns.clone(), name.clone());
        match (present, service) {
            (true, Some(service)) => {
                let ready = slice
                    .endpoints
                    .iter()
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                    .flat_map(|e| {
                        e.addresses
                            .iter()
                            .filter_map(|a| a.parse().ok())
                            .map(|a| (a, e.hostname.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                t.slices.insert(key, (service, ready));
            }
            _ => {
                t.slices.remove(&key);
            }
        }
        drop(t);
        self.write_all();
    }

    /// A pod's hosts file (as the kubelet writes one: localhost, then the pod's own name).
    pub fn register_pod(&self, path: &Path, namespace: &str, ip: IpAddr, hostname: &str) {
        let own = format!("{ip}\t{hostname}\n");
        self.table
            .lock()
            .expect("hosts table")
            .pods
            .insert(path.to_path_buf(), (namespace.to_string(), own));
        self.write_all();
    }

    pub fn unregister_pod(&self, path: &Path) {
        self.table.lock().expect("hosts table").pods.remove(path);
        let _ = std::fs::remove_file(path);
    }

    fn write_all(&self) {
        let t = self.table.lock().expect("hosts table");
        let names = t.names();
        write_in_place(&self.cluster_file(), &render(&names, None, ""));
        for (path, (ns, own)) in &t.pods {
            write_in_place(path, &render(&names, Some(ns), own));
        }
    }
}

impl Table {
    /// (namespace, short name, address) for every name; `short` is `svc` or `host.svc`.
    fn names(&self) -> Vec<(String, String, IpAddr)> {
        let mut out = Vec::new();
        for ((ns, _), (service, endpoints)) in &self.slices {
            if !self.services.contains(&(ns.clone(), service.clone())) {
                continue;
            }
            for (ip, hostname) in endpoints {
                out.push((ns.clone(), service.clone(), *ip));
                if let Some(h) = hostname {
                    out.push((ns.clone(), format!("{h}.{service}"), *ip));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

fn render(names: &[(String, String, IpAddr)], ns: Option<&str>, own: &str) -> String {
    let mut s = String::from(
        "# Cluster names, written by the simulated cluster's sim-kubelet (tests/sim/kubelet).\n\
         127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    s.push_str(own);
    for (n, short, ip) in names {
        let mut line = format!("{ip}\t{short}.{n}.{DOMAIN} {short}.{n}.svc {short}.{n}");
        if ns == Some(n.as_str()) {
            line.push(' ');
            line.push_str(short);
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// Rewrites `path` keeping its inode (readers see the old or the new text, as with any
/// `/etc/hosts` edit).
fn write_in_place(path: &Path, text: &str) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = result {
        eprintln!("sim-kubelet: cannot write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_endpoints_of_services_become_names() {
        let dir = std::env::temp_dir().join(format!("sim-kubelet-hosts-{}", std::process::id()));
        let hosts = Hosts::new(dir.clone()).expect("hosts");
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "prometheus-operated", "namespace": "monitoring"}}))
        .expect("svc");
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "prometheus-operated-x", "namespace": "monitoring",
                         "labels": {"kubernetes.io/service-name": "prometheus-operated"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["127.101.0.2"], "hostname": "prometheus-0", "conditions": {"ready": true}},
                {"addresses": ["127.102.0.3"], "conditions": {"ready": false}},
            ]})).expect("slice");
        hosts.slice(&slice, true);
        let cluster = std::fs::read_to_string(hosts.cluster_file()).expect("read");
        assert!(
            !cluster.contains("127.101.0.2"),
            "no Service yet: {cluster}"
        );
        hosts.service(&svc, true);
        let pod = dir.join("pod");
        hosts.register_pod(&pod, "monitoring", "127.100.0.9".parse().expect("ip"), "me");
        let cluster = std::fs::read_to_string(hosts.cluster_file()).expect("read");
        assert!(cluster.contains(
            "127.101.0.2\tprometheus-operated.monitoring.svc.cluster.local prometheus-operated.monitoring.svc prometheus-operated.monitoring\n"
        ), "{cluster}");
        assert!(
            cluster.contains(
                "127.101.0.2\tprometheus-0.prometheus-operated.monitoring.svc.cluster.local"
            ),
            "{cluster}"
        );
        assert!(!cluster.contains("127.102.0.3"), "not ready: {cluster}");
        let own = std::fs::read_to_string(&pod).expect("read");
        assert!(own.contains("127.100.0.9\tme\n"), "{own}");
        assert!(
            own.contains("prometheus-operated.monitoring prometheus-operated\n"),
            "short name in its namespace: {own}"
        );
        hosts.service(&svc, false);
        assert!(
            !std::fs::read_to_string(&pod)
                .expect("read")
                .contains("127.101.0.2")
        );
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
