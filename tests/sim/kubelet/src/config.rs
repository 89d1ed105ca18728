//! The runner's configuration, written by `tests/sim/cluster` (`$STATE/kubelet/config.json`):
//! which nodes it stands in for, which images it can run and as what program, and where it
//! keeps its state. It decides nothing about pods; `pod` does.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::core::v1::Container;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The nodes whose pods this runner may run, in order: node `i`'s pods get addresses from
    /// `<podNetwork.base>.i.0/24`, as a node's podCIDR.
    pub nodes: Vec<String>,
    /// Image repository (without tag or digest, e.g. `platformctl/customer-api`) → what runs
    /// (see [`Config::runnable`]).
    pub images: BTreeMap<String, Image>,
    /// Run state: logs, hosts files.
    pub state: PathBuf,
    pub pod_network: PodNetwork,
    /// Where the API server listens (loopback): a relay on the pod network's gateway at the same
    /// port stands in for the `kubernetes` Service, whose ClusterIP nothing routes here; it is
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` in every container.
    pub api_host: Ipv4Addr,
    pub api_port: u16,
    /// The node address kwok publishes (the pods' `status.hostIP`).
    pub host_ip: Ipv4Addr,
    /// The only name server a pod's `/etc/resolv.conf` names: an address nothing answers on, so
    /// a name that is not in the pod's hosts file fails here instead of leaving the machine
    /// through the host's resolver.
    pub resolver: Ipv4Addr,
}

/// The cluster's pod network (see `net`): a /16 on a bridge the harness made.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodNetwork {
    /// `a.b.0.0` of the /16.
    pub base: Ipv4Addr,
    /// The bridge's own address in it (the relay to the API server listens there).
    pub gateway: Ipv4Addr,
    pub bridge: String,
    /// Network namespace names start with this.
    pub netns_prefix: String,
}

/// What a container of this image runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// The image's entrypoint (Docker's ENTRYPOINT): the container's `command` replaces it.
    /// Empty for an image whose own programs cannot run here: then only `programs` run.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Programs of the image that this host's own stand in for, for an image whose entrypoint
    /// is not here (Argo CD's, in which `up`'s git server runs `/bin/sh -c '… git daemon …'`):
    /// a container of it runs only when its `command` names one of them; any other container
    /// of the image is not this runner's (kwok plays it).
    #[serde(default)]
    pub programs: Vec<String>,
    /// The image's CMD: the container's `args` replace it (and a `command` drops it).
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Environment the image sets (Docker's ENV), below the container's own (`$(POD_IP)` is the
    /// pod's IP).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files the image holds at a path of its own (container path → the file here): a
    /// container's `command` may name it, as the operator names `/bin/prometheus-config-reloader`.
    #[serde(default)]
    pub files: BTreeMap<PathBuf, PathBuf>,
    /// The image tag goes into this variable (one binary stands in for every tag, and the
    /// version is what a tag is).
    #[serde(default)]
    pub version_env: Option<String>,
}

impl Config {
    pub fn read(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// The image entry for a container image reference, and its tag.
    fn image<'a>(&'a self, reference: &str) -> Option<(&'a Image, String)> {
        let (repo, tag) = split_reference(reference);
        self.images.get(repo).map(|i| (i, tag.to_string()))
    }

    /// The image entry and tag a container runs with, if this runner can run it: its image is
    /// known and either has an entrypoint here or the container's `command` names one of the
    /// image's `programs`.
    pub fn runnable<'a>(&'a self, container: &Container) -> Option<(&'a Image, String)> {
        let (image, tag) = self.image(container.image.as_deref()?)?;
        let program = container.command.as_ref().and_then(|c| c.first());
        let runs = match program {
            Some(p) if image.programs.contains(p) => true,
            _ => !image.entrypoint.is_empty(),
        };
        runs.then_some((image, tag))
    }
}

/// `docker.io/platformctl/x:1.2@sha256:…` → (`platformctl/x`, `1.2`). Registries that runtimes
/// add in front of a short name are dropped, as `minikube image` shows names.
pub fn split_reference(reference: &str) -> (&str, &str) {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let (repo, tag) = match no_digest.rsplit_once(':') {
        // a colon after the last slash is a tag; before it, a registry port
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (no_digest, "latest"),
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("localhost/"))
        .unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    (repo, tag)
}

#[cfg(test)]
mod tests {
    use super::{Config, split_reference};
    use k8s_openapi::api::core::v1::Container;

    fn config() -> Config {
        serde_json::from_value(serde_json::json!({
            "nodes": ["minikube"],
            "images": {
                "platformctl/auth": {"entrypoint": ["/bin/auth"]},
                "quay.io/argoproj/argocd": {"programs": ["/bin/sh"]}
            },
            "state": "/tmp/x",
            "podNetwork": {"base": "10.1.0.0", "gateway": "10.1.255.254", "bridge": "b", "netnsPrefix": "b"},
            "apiHost": "127.0.0.1", "apiPort": 6443, "hostIp": "127.0.0.1", "resolver": "127.0.0.53"
        }))
        .expect("valid config")
    }

    fn container(image: &str, command: Option<&[&str]>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ..Container::default()
        }
    }

    #[test]
    fn an_image_without_an_entrypoint_runs_only_the_programs_it_names() {
        let config = config();
        let sh = ["/bin/sh", "-c", "exec git daemon"];
        assert!(
            config
                .runnable(&container("quay.io/argoproj/argocd:v3.3.6", Some(&sh)))
                .is_some()
        );
        // Argo CD's own components (args only, the image's entrypoint) stay kwok's
        assert!(
            config
                .runnable(&container("quay.io/argoproj/argocd:v3.3.6", None))
                .is_none()
        );
        let other = ["/usr/local/bin/argocd-server"];
        assert!(
            config
                .runnable(&container("quay.io/argoproj/argocd:v3.3.6", Some(&other)))
                .is_none()
        );
        // an image with an entrypoint runs whatever the container says
        assert!(
            config
                .runnable(&container("platformctl/auth:0.1.0", None))
                .is_some()
        );
        assert!(
            config
                .runnable(&container("platformctl/auth:0.1.0", Some(&other)))
                .is_some()
        );
        assert!(
            config
                .runnable(&container("grafana/grafana:12", None))
                .is_none()
        );
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(
            split_reference("platformctl/customer-api:0.1.0"),
            ("platformctl/customer-api", "0.1.0")
        );
        assert_eq!(
            split_reference("docker.io/platformctl/auth:0.2.0@sha256:abc"),
            ("platformctl/auth", "0.2.0")
        );
        assert_eq!(
            split_reference("localhost:5000/x/y"),
            ("localhost:5000/x/y", "latest")
        );
        assert_eq!(
            split_reference("quay.io/prometheus/prometheus:v3.9.1"),
            ("quay.io/prometheus/prometheus", "v3.9.1")
        );
    }
}
