//! Steady traffic to a service's pods while a rollout runs, in a thread of its own: every 200 ms
//! one GET of a path (`/customers`, `/orders/1`) to each Ready pod (on its own pod IP, as the Service's endpoints are), each
//! answer recorded with the pod's image; and the canary Ingress's `canary-weight` annotation as
//! the Rollouts controller sets it, each value recorded once in the order seen.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, ListParams};
use platformctl::kube::portforward::is_ready;

/// One answer: when, from which image, with which status (0: no answer).
#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    pub image: String,
    pub status: u16,
}

#[derive(Default)]
struct Seen {
    answers: Vec<Answer>,
    weights: Vec<String>,
}

pub struct Traffic {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// GETs of `path` to `service`'s pods in `ns`; `canary_ingress`: the Ingress whose weight to
    /// record.
    pub fn start(
        kubeconfig: std::path::PathBuf,
        ns: &str,
        service: &str,
        canary_ingress: Option<String>,
        path: &'static str,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (ns, service) = (ns.to_string(), service.to_string());
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(client) = (crate::support::Cluster { kubeconfig }).client().await else {
                        return;
                    };
                    run(client, &ns, &service, canary_ingress, path, &stop, &seen).await;
                });
            })
        };
        Traffic {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Answers since `since`: (all, errors: 5xx or none).
    pub fn errors_since(&self, since: Instant) -> (usize, usize) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let recent: Vec<&Answer> = seen.answers.iter().filter(|a| a.at >= since).collect();
        let errors = recent
            .iter()
            .filter(|a| a.status == 0 || a.status >= 500)
            .count();
        (recent.len(), errors)
    }

    /// Answers since `since` by image.
    pub fn images_since(&self, since: Instant) -> std::collections::BTreeMap<String, usize> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::collections::BTreeMap::new();
        for a in seen.answers.iter().filter(|a| a.at >= since) {
            *out.entry(a.image.clone()).or_insert(0) += 1;
        }
        out
    }

    /// The canary weights seen, each change once, in order.
    pub fn weights(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .weights
            .clone()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run(
    client: Client,
    ns: &str,
    service: &str,
    canary_ingress: Option<String>,
    path: &str,
    stop: &AtomicBool,
    seen: &Mutex<Seen>,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client, ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={service}"));
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if let Some(name) = &canary_ingress
            && let Ok(Some(ing)) = ingresses.get_opt(name).await
        {
            let weight = ing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("nginx.ingress.kubernetes.io/canary-weight"))
                .cloned()
                .unwrap_or_default();
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            if s.weights.last() != Some(&weight) {
                s.weights.push(weight);
            }
        }
        let ready: Vec<(SocketAddr, String)> = match pods.list(&lp).await {
            Ok(list) => list
                .items
                .iter()
                .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| {
                    let ip = p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
                    let image = p.spec.as_ref()?.containers.first()?.image.clone()?;
                    Some((SocketAddr::new(ip, 8080), image))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for (addr, image) in ready {
            let status = match tokio::time::timeout(
                Duration::from_secs(2),
                crate::monitoring::get(addr, path),
            )
            .await
            {
                Ok(Ok(out)) => out
                    .strip_prefix("HTTP/1.1 ")
                    .and_then(|r| r.get(..3))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .answers
                .push(Answer {
                    at: Instant::now(),
                    image,
                    status,
                });
        }
        let spent = started.elapsed();
        if spent < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(200) - spent).await;
        }
    }
}
