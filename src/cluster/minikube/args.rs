//! The exact minikube command lines, as argv without the program name, so they are tested as
//! data. Flags are those of minikube's own docs (`minikube start|status|ssh|image build --help`).

use std::path::{Path, PathBuf};

use crate::config::{Cluster, ContainerRuntime, Platform};

/// `minikube start`: creates the profile, or starts it when it exists (minikube then ignores
/// `--nodes` with a warning, which is why `ensure` checks the node count itself).
///
/// `--wait=all` waits for every node to be Ready, not only the API server and system pods, so
/// that the next step schedules across all nodes; `--interactive=false` never prompts.
pub fn start(cluster: &Cluster) -> Vec<String> {
    vec![
        "start".into(),
        "-p".into(),
        cluster.profile.clone(),
        "--nodes".into(),
        cluster.nodes.to_string(),
        "--cpus".into(),
        cluster.cpus.to_string(),
        // A bare number is MiB to minikube (`--memory=4096`), the unit of `cluster.memory`.
        "--memory".into(),
        cluster.memory.to_string(),
        "--kubernetes-version".into(),
        cluster.kubernetes_version.clone(),
        "--container-runtime".into(),
        runtime(cluster.container_runtime).into(),
        "--wait=all".into(),
        "--interactive=false".into(),
    ]
}

/// `minikube status -o json`: one object for one node, an array for several.
pub fn status(profile: &str) -> Vec<String> {
    ["status", "-p", profile, "-o", "json"]
        .map(String::from)
        .into()
}

pub fn delete(profile: &str) -> Vec<String> {
    ["delete", "-p", profile].map(String::from).into()
}

/// Rewrites the profile's kubeconfig entry when its API server endpoint moved (minikube reports
/// `Kubeconfig: Misconfigured`).
pub fn update_context(profile: &str) -> Vec<String> {
    ["update-context", "-p", profile].map(String::from).into()
}

/// `minikube version -o json`: `{"commit": ..., "minikubeVersion": "v1.x.y"}`.
pub fn version() -> Vec<String> {
    ["version", "-o", "json"].map(String::from).into()
}

/// `minikube image build --all`: builds inside every node with the node's container runtime,
/// so no registry and no host Docker is needed. Without `--all` minikube builds on the control
/// plane only (minikube#12149, v1.24.0) and pods scheduled on workers could not find the image.
/// `-f` is relative to the build context, as minikube resolves it inside the node.
pub fn image_build(profile: &str, build: &ImageBuild) -> Vec<String> {
    vec![
        "image".into(),
        "build".into(),
        "-p".into(),
        profile.into(),
        "--all".into(),
        "-t".into(),
        build.image.clone(),
        "-f".into(),
        build.dockerfile.clone(),
        build.context.display().to_string(),
    ]
}

/// `minikube image build --node NODE`: the same build on one node. `--all` exits 0 when the
/// build failed on some node (it logs a warning and goes on: `machine.BuildImage`), so `up`
/// checks every node afterwards and builds again where the image is missing.
pub fn image_build_on(profile: &str, node: &str, build: &ImageBuild) -> Vec<String> {
    let mut argv = image_build(profile, build);
    let all = argv.iter().position(|a| a == "--all").expect("--all");
    argv.splice(all..=all, ["--node".to_string(), node.to_string()]);
    argv
}

/// `minikube ssh -n NODE -- sudo crictl images -o json`: the images the node's container
/// runtime holds, asked through the CRI, so the answer has one shape for Docker (cri-dockerd),
/// containerd and CRI-O alike (minikube writes `/etc/crictl.yaml` for each runtime).
pub fn node_images(profile: &str, node: &str) -> Vec<String> {
    [
        "ssh", "-p", profile, "-n", node, "--", "sudo", "crictl", "images", "-o", "json",
    ]
    .map(String::from)
    .into()
}

/// One workload image to build: `image` is `repository:tag` as the rendered Rollouts use it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageBuild {
    pub image: String,
    /// Dockerfile path relative to `context`.
    pub dockerfile: String,
    pub context: PathBuf,
}

/// Every `repository:tag` the platform deploys, built from
/// `<services_dir>/docker/<service>.Dockerfile` with `services_dir` as context; one build per
/// distinct tag, in a stable order.
pub fn image_builds(platform: &Platform, services_dir: &Path) -> Vec<ImageBuild> {
    let mut builds: Vec<ImageBuild> = platform
        .services
        .iter()
        .flat_map(|svc| {
            // An image pinned by digest comes from its registry: it is not built here.
            svc.tags
                .values()
                .filter(|tag| !tag.contains(['@', ':']))
                .map(move |tag| ImageBuild {
                    image: svc.image_ref(tag),
                    dockerfile: format!("docker/{}.Dockerfile", svc.name),
                    context: services_dir.to_path_buf(),
                })
        })
        .collect();
    builds.sort();
    builds.dedup();
    builds
}

fn runtime(r: ContainerRuntime) -> &'static str {
    match r {
        ContainerRuntime::Docker => "docker",
        ContainerRuntime::Containerd => "containerd",
        ContainerRuntime::CriO => "cri-o",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/platform.yaml"))
            .expect("reference platform.yaml");
        crate::config::parse(std::path::Path::new("platform.yaml"), &text).expect("valid")
    }

    #[test]
    fn start_is_the_documented_multi_node_command_line() {
        let cluster = platform().cluster;
        assert_eq!(
            start(&cluster).join(" "),
            "start -p customer-platform --nodes 3 --cpus 2 --memory 4096 \
             --kubernetes-version v1.34.0 --container-runtime containerd --wait=all \
             --interactive=false"
        );
        let crio = Cluster {
            container_runtime: ContainerRuntime::CriO,
            ..cluster
        };
        assert!(start(&crio).join(" ").contains("--container-runtime cri-o"));
    }

    #[test]
    fn profile_commands() {
        assert_eq!(status("p").join(" "), "status -p p -o json");
        assert_eq!(delete("p").join(" "), "delete -p p");
        assert_eq!(update_context("p").join(" "), "update-context -p p");
        assert_eq!(version().join(" "), "version -o json");
        assert_eq!(
            node_images("p", "p-m02").join(" "),
            "ssh -p p -n p-m02 -- sudo crictl images -o json"
        );
        let build = ImageBuild {
            image: "platformctl/auth:1.0.0".into(),
            dockerfile: "docker/auth.Dockerfile".into(),
            context: PathBuf::from("examples/services"),
        };
        assert_eq!(
            image_build_on("p", "p-m03", &build).join(" "),
            "image build -p p --node p-m03 -t platformctl/auth:1.0.0 \
             -f docker/auth.Dockerfile examples/services"
        );
    }

    #[test]
    fn one_build_per_distinct_tag_on_every_node() {
        let mut p = platform();
        p.services[0].tags.insert("prod".into(), "0.2.0".into());
        let builds = image_builds(&p, Path::new("examples/services"));
        assert_eq!(
            builds
                .iter()
                .map(|b| image_build("customer-platform", b).join(" "))
                .collect::<Vec<_>>(),
            vec![
                "image build -p customer-platform --all -t platformctl/customer-api:0.1.0 \
                 -f docker/customer-api.Dockerfile examples/services",
                "image build -p customer-platform --all -t platformctl/customer-api:0.2.0 \
                 -f docker/customer-api.Dockerfile examples/services",
            ]
        );
        // The Dockerfile every build names exists in the repository.
        for b in &builds {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(&b.context)
                .join(&b.dockerfile);
            assert!(file.is_file(), "{} missing", file.display());
        }
    }
}
