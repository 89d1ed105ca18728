//! Reaching the platform's Prometheus and Alertmanager: at a URL the user gives (a platform
//! that publishes them), else through a port-forward to a Ready pod of the operator's governing
//! Service in the kube-prometheus-stack namespace (nothing to expose on minikube).

use super::{Client, Error, PORT, SERVICE, alertmanager};
use crate::kube::portforward::Backend;

/// The Prometheus at `url`, else the operator's in `namespace` through a port-forward.
pub async fn prometheus(
    kube: &kube::Client,
    namespace: &str,
    url: Option<&str>,
) -> Result<Client, Error> {
    match url {
        Some(u) => Client::new(u),
        None => {
            Client::via_port_forward(kube, namespace, &Backend::Service(SERVICE.into()), PORT).await
        }
    }
}

/// The Alertmanager at `url`, else the operator's in `namespace` through a port-forward.
pub async fn alertmanager(
    kube: &kube::Client,
    namespace: &str,
    url: Option<&str>,
) -> Result<alertmanager::Client, Error> {
    match url {
        Some(u) => alertmanager::Client::new(u),
        None => {
            alertmanager::Client::via_port_forward(
                kube,
                namespace,
                &Backend::Service(alertmanager::SERVICE.into()),
                alertmanager::PORT,
            )
            .await
        }
    }
}
