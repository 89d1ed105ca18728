//! Where a load run sends its requests: a URL, or a platform Service reached as a client in the
//! cluster reaches it, through its ready endpoints, followed while the run goes on (a killed pod
//! leaves the set, its replacement joins it when Ready, as kube-proxy would route).
//!
//! A Service's endpoints are reached at the pods' addresses where this host routes to them (the
//! simulated cluster; minikube's `none` driver), else through one port-forward per ready pod
//! (minikube's docker driver, a remote cluster), set up through the API server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use super::engine::Endpoints;

/// How often a Service's endpoints are read again during a run.
pub const REFRESH: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{0}` is no http:// URL{1}")]
    Url(String, String),
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("reading the endpoints of service `{service}` in namespace `{namespace}`: {source}")]
    Kube {
        service: String,
        namespace: String,
        source: kube::Error,
    },
    #[error("service `{service}` in namespace `{namespace}` has no ready endpoint")]
    NoEndpoints { service: String, namespace: String },
    #[error(transparent)]
    Forward(#[from] crate::kube::portforward::Error),
}

impl Error {
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Url(..))
    }
}

/// A URL split for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

/// `http://host[:port][/path]`; https is refused (the engine speaks plain HTTP/1.1).
pub fn parse_url(url: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::Url(url.to_string(), why.to_string());
    let rest = match url.strip_prefix("http://") {
        Some(r) => r,
        None if url.starts_with("https://") => {
            return Err(bad(
                ": load speaks plain HTTP/1.1; reach the service over http://",
            ));
        }
        None => return Err(bad(": it must start with http://")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(bad(": credentials in the URL are not supported"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h, p),
            _ => return Err(bad(&format!(": `{p}` is no port"))),
        },
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad(": it names no host"));
    }
    Ok(Url {
        host: host.to_string(),
        port,
        path,
    })
}

/// The addresses of a URL's host.
pub async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, Error> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|source| Error::Resolve {
            host: url.host.clone(),
            source,
        })?
        .collect();
    Ok(addrs)
}

/// How a Service's endpoints are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The pods' own addresses.
    Endpoints,
    /// A port-forward per ready pod.
    PortForward,
}

/// A ready endpoint of a Service: its pod and address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ready {
    pub pod: String,
    pub addr: SocketAddr,
}

/// The ready endpoints of `service` in `namespace` for its port named `port_name`, from its
/// EndpointSlices.
pub async fn ready_endpoints(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    port_name: &str,
) -> Result<Vec<Ready>, Error> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .map_err(|source| Error::Kube {
            service: service.to_string(),
            namespace: namespace.to_string(),
            source,
        })?;
    let mut out = Vec::new();
    for slice in list.items {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(port_name) || p.name.is_none())
            .and_then(|p| p.port)
        else {
            continue;
        };
        for ep in &slice.endpoints {
            // (ready unset means ready, by the EndpointSlice API's own rule)
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            let terminating = ep
                .conditions
                .as_ref()
                .and_then(|c| c.terminating)
                .unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            let pod = ep
                .target_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            for a in &ep.addresses {
                if let Ok(ip) = a.parse::<std::net::IpAddr>() {
                    out.push(Ready {
                        pod: pod.clone(),
                        addr: SocketAddr::new(ip, port as u16),
                    });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether this host reaches `addr` (a TCP connect within half a second).
pub async fn reachable(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Keeps `endpoints` equal to the ready endpoints of a Service (through port-forwards with
/// [`Via::PortForward`]) until dropped.
pub struct Follower {
    task: tokio::task::AbortHandle,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Service {
    pub client: kube::Client,
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub via: Via,
}

impl Service {
    /// The set now, as addresses this host connects to, and the forwards that serve it.
    async fn addresses(
        &self,
        forwards: &mut BTreeMap<String, crate::kube::portforward::Forward>,
    ) -> Result<Vec<SocketAddr>, Error> {
        let ready =
            ready_endpoints(&self.client, &self.namespace, &self.name, &self.port_name).await?;
        match self.via {
            Via::Endpoints => Ok(ready.into_iter().map(|r| r.addr).collect()),
            Via::PortForward => {
                forwards.retain(|pod, _| ready.iter().any(|r| &r.pod == pod));
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
                for r in &ready {
                    if !forwards.contains_key(&r.pod) {
                        let f =
                            crate::kube::portforward::forward(pods.clone(), &r.pod, r.addr.port())
                                .await?;
                        forwards.insert(r.pod.clone(), f);
                    }
                }
                Ok(forwards.values().map(|f| f.addr()).collect())
            }
        }
    }

    /// Fills `endpoints` now (an error when there is none), then follows the Service every
    /// [`REFRESH`] until the returned follower is dropped.
    pub async fn follow(self, endpoints: Arc<Endpoints>) -> Result<Follower, Error> {
        let mut forwards = BTreeMap::new();
        let first = self.addresses(&mut forwards).await?;
        if first.is_empty() {
            return Err(Error::NoEndpoints {
                service: self.name.clone(),
                namespace: self.namespace.clone(),
            });
        }
        endpoints.set(first);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                match self.addresses(&mut forwards).await {
                    Ok(set) => endpoints.set(set),
                    Err(e) => tracing::debug!("load: endpoints of `{}`: {e}", self.name),
                }
            }
        });
        Ok(Follower {
            task: task.abort_handle(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let u = parse_url("http://127.0.0.1:8080/orders?x=1").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/orders?x=1")
        );
        let u = parse_url("http://example.test").expect("ok");
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = parse_url("http://[::1]:9000?q").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9000, "/?q")
        );
        for (bad, says) in [
            ("https://x", "plain HTTP"),
            ("ftp://x", "must start with http://"),
            ("http://x:port/", "no port"),
            ("http://:80/", "no host"),
            ("http://u:p@x/", "credentials"),
        ] {
            let e = parse_url(bad).expect_err("fails").to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
