//! Reaching a pod's TCP port from this process, as `kubectl port-forward` does: a loopback
//! listener whose every connection is one kube-rs port-forward stream through the API server,
//! and the choice of the pod (a Ready one, not terminating, behind a Service's selector or a
//! label selector).
//!
//! It does not retry, reconnect or follow pods: a forward stays on the pod it was made for (a
//! pod that restarts needs a new forward), and what runs over the connections is the caller's
//! (`up`'s git push, the Prometheus and Alertmanager clients).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read service `{name}` in namespace `{namespace}`")]
    Service {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("service `{name}` in namespace `{namespace}` has no selector: no pod to forward to")]
    NoSelector { name: String, namespace: String },
    #[error("cannot list the pods matching `{selector}` in namespace `{namespace}`")]
    List {
        selector: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("no ready pod matches `{selector}` in namespace `{namespace}`")]
    NoReadyPod { selector: String, namespace: String },
    #[error("cannot listen on a loopback port for a port-forward to pod `{pod}`")]
    Listen {
        pod: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to forward to: the pods behind a Service, or the pods a label selector matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A Service's name: its `spec.selector` picks the pods (its ports are not consulted: a
    /// forward goes to a pod's port).
    Service(String),
    /// A label selector (`app.kubernetes.io/name=prometheus,operator.prometheus.io/name=x`).
    Selector(String),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Service(name) => write!(f, "service `{name}`"),
            Backend::Selector(selector) => write!(f, "pods matching `{selector}`"),
        }
    }
}

/// A running forward: a loopback address whose connections reach one port of one pod. The
/// listener closes when this is dropped; connections already open run to their end.
#[derive(Debug)]
pub struct Forward {
    addr: SocketAddr,
    pod: String,
    accept: tokio::task::AbortHandle,
}

impl Forward {
    /// The loopback address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pod the connections reach.
    pub fn pod(&self) -> &str {
        &self.pod
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Listens on a free loopback port and forwards each connection to `port` of `pod` (one
/// port-forward stream per connection) until the returned [`Forward`] is dropped.
pub async fn forward(pods: Api<Pod>, pod: &str, port: u16) -> Result<Forward, Error> {
    let listen = |source| Error::Listen {
        pod: pod.to_string(),
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let name = pod.to_string();
    let accept = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let pods = pods.clone();
            let pod = name.clone();
            tokio::spawn(async move {
                let mut pf = match pods.portforward(&pod, &[port]).await {
                    Ok(pf) => pf,
                    Err(e) => {
                        tracing::debug!("port-forward to pod `{pod}` port {port}: {e}");
                        return;
                    }
                };
                let Some(mut upstream) = pf.take_stream(port) else {
                    return;
                };
                // The API server reports a failed forward (nothing listening on the pod's port)
                // on the error stream and leaves the data stream open: the connection is closed
                // then, so the client sees it fail instead of waiting for its timeout.
                let error = pf.take_error(port);
                let failed = async move {
                    if let Some(error) = error
                        && let Some(message) = error.await
                    {
                        return message;
                    }
                    std::future::pending().await
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream) => {}
                    message = failed => {
                        tracing::debug!("port-forward to pod `{pod}` port {port}: {message}");
                    }
                }
                drop(upstream);
                drop(conn);
                let _ = pf.join().await;
            });
        }
    });
    Ok(Forward {
        addr,
        pod: pod.to_string(),
        accept: accept.abort_handle(),
    })
}

/// Finds a ready pod of `backend` in `namespace` (one look, no waiting) and forwards to its
/// `port`.
pub async fn to_backend(
    client: &Client,
    namespace: &str,
    backend: &Backend,
    port: u16,
) -> Result<Forward, Error> {
    let selector = selector(client, namespace, backend).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = ready_pod(&pods, namespace, &selector, Duration::ZERO).await?;
    forward(pods, &pod, port).await
}

/// The label selector of `backend`: a Service's `spec.selector`, or the selector itself.
pub async fn selector(
    client: &Client,
    namespace: &str,
    backend: &Backend,
) -> Result<String, Error> {
    match backend {
        Backend::Selector(selector) => Ok(selector.clone()),
        Backend::Service(name) => {
            let services: Api<Service> = Api::namespaced(client.clone(), namespace);
            let service = services.get(name).await.map_err(|source| Error::Service {
                name: name.clone(),
                namespace: namespace.to_string(),
                source,
            })?;
            selector_of(&service).ok_or_else(|| Error::NoSelector {
                name: name.clone(),
                namespace: namespace.to_string(),
            })
        }
    }
}

/// A Service's `spec.selector` as a label selector (keys sorted), or none when it selects
/// nothing (a Service without a selector has hand-made endpoints, not pods).
pub fn selector_of(service: &Service) -> Option<String> {
    let labels: &BTreeMap<String, String> = service.spec.as_ref()?.selector.as_ref()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The name of a ready pod matching `selector`, looked for until `wait` has passed (one look
/// for a zero `wait`).
pub async fn ready_pod(
    pods: &Api<Pod>,
    namespace: &str,
    selector: &str,
    wait: Duration,
) -> Result<String, Error> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|source| Error::List {
                selector: selector.to_string(),
                namespace: namespace.to_string(),
                source,
            })?;
        if let Some(name) = choose(&list.items).and_then(|p| p.metadata.name.clone()) {
            return Ok(name);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NoReadyPod {
                selector: selector.to_string(),
                namespace: namespace.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pod to forward to: the first by name of those Ready and not terminating, so repeated
/// looks at the same pods pick the same one.
pub fn choose(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|p| is_ready(p))
        .min_by(|a, b| a.metadata.name.cmp(&b.metadata.name))
}

/// Whether a pod is Ready (its condition) and not being deleted (a terminating pod can stay
/// Ready until its containers stop).
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(yaml: &str) -> Vec<Pod> {
        serde_yaml::from_str(yaml).expect("pods")
    }

    const PODS: &str = "
- metadata: {name: prometheus-main-1}
  status:
    conditions: [{type: Ready, status: 'True'}]
- metadata: {name: prometheus-main-0, deletionTimestamp: '2026-01-01T00:00:00Z'}
  status:
    conditions: [{type: Ready, status: 'True'}]
- metadata: {name: prometheus-main-00}
  status:
    conditions: [{type: ContainersReady, status: 'True'}, {type: Ready, status: 'False'}]
- metadata: {name: prometheus-main-000}
- metadata: {name: prometheus-main-2}
  status:
    conditions: [{type: Ready, status: 'True'}]
";

    #[test]
    fn chooses_the_first_ready_pod_that_is_not_terminating() {
        let pods = pods(PODS);
        let names: Vec<_> = pods
            .iter()
            .filter(|p| is_ready(p))
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["prometheus-main-1", "prometheus-main-2"]);
        let chosen = choose(&pods).and_then(|p| p.metadata.name.as_deref());
        assert_eq!(chosen, Some("prometheus-main-1"));
    }

    #[test]
    fn no_pod_when_none_is_ready() {
        let pods = pods(PODS);
        assert!(
            choose(&pods[1..4]).is_none(),
            "terminating, not ready, no status"
        );
        assert!(choose(&[]).is_none());
    }

    #[test]
    fn a_services_selector_with_sorted_keys() {
        let service: Service = serde_yaml::from_str(
            "metadata: {name: prometheus-operated}
spec:
  clusterIP: None
  selector: {operator.prometheus.io/name: main, app.kubernetes.io/name: prometheus}
  ports: [{name: web, port: 9090, targetPort: web}]",
        )
        .expect("service");
        assert_eq!(
            selector_of(&service).as_deref(),
            Some("app.kubernetes.io/name=prometheus,operator.prometheus.io/name=main")
        );
        for yaml in [
            "metadata: {name: external}\nspec: {selector: {}}",
            "metadata: {name: external}\nspec: {}",
            "metadata: {name: external}",
        ] {
            let service: Service = serde_yaml::from_str(yaml).expect("service");
            assert_eq!(selector_of(&service), None, "{yaml}");
        }
    }

    #[test]
    fn backends_name_themselves() {
        assert_eq!(
            Backend::Service("alertmanager-operated".into()).to_string(),
            "service `alertmanager-operated`"
        );
        assert_eq!(
            Backend::Selector("app.kubernetes.io/name=alertmanager".into()).to_string(),
            "pods matching `app.kubernetes.io/name=alertmanager`"
        );
    }
}
