//! The minikube driver: runs the `minikube` binary (`$PLATFORMCTL_MINIKUBE`, else `minikube`
//! on PATH) with captured output.
//!
//! `ensure` is idempotent: a running profile with the configured node count is reused without
//! a start; an absent or stopped one is started; a profile whose node count differs is an error
//! that says what to do, because minikube ignores `--nodes` for an existing profile. The
//! command lines live in `args`, the status parsing in `status`; neither runs anything.

pub mod args;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::ImageBuild;
pub use status::{NodeStatus, ProfileStatus};

use super::process::{self, Output};
use super::{Driver, Ensured, Error, Target};
use crate::config::Cluster;

/// Environment variable naming the minikube binary.
pub const ENV_BINARY: &str = "PLATFORMCTL_MINIKUBE";

/// `minikube status` answers in seconds; a hung Docker daemon must not hang platformctl.
const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Minikube {
    program: PathBuf,
}

impl Minikube {
    /// The binary named by `$PLATFORMCTL_MINIKUBE`, else `minikube` from PATH.
    pub fn from_env() -> Self {
        let program = std::env::var_os(ENV_BINARY)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("minikube"));
        Minikube { program }
    }

    pub fn new(program: impl Into<PathBuf>) -> Self {
        Minikube {
            program: program.into(),
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The profile's state; a missing profile is `Absent`, not an error.
    pub async fn status(&self, profile: &str) -> Result<ProfileStatus, Error> {
        let argv = args::status(profile);
        let out = self.run(&argv, Some(STATUS_TIMEOUT)).await?;
        status::parse(&out.stdout, out.code).map_err(|reason| match out.success() {
            true => Error::Parse {
                command: self.command_line(&argv),
                reason,
            },
            // No JSON and a failure: what minikube said is the better message.
            false => Error::Command {
                command: self.command_line(&argv),
                code: out.code,
                output: out.tail(20),
            },
        })
    }

    /// Creates or starts the profile as configured (minutes on a cold machine).
    pub async fn start(&self, cluster: &Cluster) -> Result<(), Error> {
        self.run_checked(&args::start(cluster), None).await
    }

    pub async fn delete(&self, profile: &str) -> Result<(), Error> {
        self.run_checked(&args::delete(profile), None).await
    }

    pub async fn update_context(&self, profile: &str) -> Result<(), Error> {
        self.run_checked(&args::update_context(profile), Some(STATUS_TIMEOUT))
            .await
    }

    /// The images one node's container runtime holds, each as `image_key` of its tags.
    pub async fn node_images(&self, profile: &str, node: &str) -> Result<BTreeSet<String>, Error> {
        let argv = args::node_images(profile, node);
        let out = self.run(&argv, Some(STATUS_TIMEOUT)).await?;
        if !out.success() {
            return Err(Error::Command {
                command: self.command_line(&argv),
                code: out.code,
                output: out.tail(20),
            });
        }
        parse_crictl_images(&out.stdout).map_err(|reason| Error::Parse {
            command: self.command_line(&argv),
            reason,
        })
    }

    /// Puts every image of `builds` on every node, building only where one is missing.
    ///
    /// `known` holds each node's name with the images it is known to have (the Node objects'
    /// `status.images`, which the kubelet caps at 50 and refreshes late, so a name missing
    /// there proves nothing): a node whose list lacks an image is asked with crictl. An image
    /// missing on every node is built with `--all`, one missing on some with `--node` for each.
    /// minikube reports success even when a node's build failed, so the nodes are asked again
    /// afterwards; where the image is still missing it is built once more on that node, and
    /// if it is missing then, that is `Error::ImageMissing`. Returns the images built.
    pub async fn ensure_images(
        &self,
        profile: &str,
        builds: &[ImageBuild],
        known: BTreeMap<String, BTreeSet<String>>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<String>, Error> {
        let mut have = known;
        let unsure: Vec<String> = have
            .iter()
            .filter(|(_, images)| {
                builds
                    .iter()
                    .any(|b| !images.contains(&image_key(&b.image)))
            })
            .map(|(node, _)| node.clone())
            .collect();
        self.refresh(profile, &unsure, &mut have).await?;

        let mut built = Vec::new();
        for build in builds {
            let lacking = lacking(&have, &build.image);
            if lacking.is_empty() {
                continue;
            }
            if lacking.len() == have.len() {
                progress(&format!("building {} on every node", build.image));
                self.run_checked(&args::image_build(profile, build), None)
                    .await?;
            } else {
                for node in &lacking {
                    progress(&format!("building {} on {node}", build.image));
                    self.run_checked(&args::image_build_on(profile, node, build), None)
                        .await?;
                }
            }
            built.push(build);
        }
        if built.is_empty() {
            return Ok(Vec::new());
        }

        // minikube's word is not enough: look, build again where it is missing, look again.
        let nodes: Vec<String> = have.keys().cloned().collect();
        self.refresh(profile, &nodes, &mut have).await?;
        let mut retried = BTreeSet::new();
        for build in &built {
            for node in lacking(&have, &build.image) {
                progress(&format!("building {} again on {node}", build.image));
                self.run_checked(&args::image_build_on(profile, &node, build), None)
                    .await?;
                retried.insert(node);
            }
        }
        let retried: Vec<String> = retried.into_iter().collect();
        self.refresh(profile, &retried, &mut have).await?;
        for build in &built {
            let nodes = lacking(&have, &build.image);
            if !nodes.is_empty() {
                return Err(Error::ImageMissing {
                    profile: profile.into(),
                    image: build.image.clone(),
                    nodes,
                });
            }
        }
        Ok(built.into_iter().map(|b| b.image.clone()).collect())
    }

    /// Replaces what `have` says of `nodes` by what their runtimes answer (all at once).
    async fn refresh(
        &self,
        profile: &str,
        nodes: &[String],
        have: &mut BTreeMap<String, BTreeSet<String>>,
    ) -> Result<(), Error> {
        let answers =
            futures::future::join_all(nodes.iter().map(|n| self.node_images(profile, n))).await;
        for (node, images) in nodes.iter().zip(answers) {
            have.insert(node.clone(), images?);
        }
        Ok(())
    }

    /// Makes the profile run with the configured node count and returns how to reach it: the
    /// kubeconfig minikube maintains (standard loading rules) and the context named after the
    /// profile.
    pub async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, Error> {
        let profile = cluster.profile.as_str();
        let before = self.status(profile).await?;
        check_node_count(profile, &before, cluster.nodes)?;
        let (after, change) = match before {
            ProfileStatus::Running { .. } => (before, None),
            ref s if s.only_kubeconfig_stale() => {
                self.update_context(profile).await?;
                let after = self.status(profile).await?;
                (
                    after,
                    Some(format!("kubeconfig context `{profile}` updated")),
                )
            }
            _ => {
                self.start(cluster).await?;
                let after = self.status(profile).await?;
                (after, Some(format!("minikube profile `{profile}` started")))
            }
        };
        match &after {
            ProfileStatus::Running { .. } => {}
            ProfileStatus::Absent => {
                return Err(Error::NotRunning {
                    profile: profile.into(),
                    reason: "minikube reports no such profile".into(),
                });
            }
            ProfileStatus::Stopped { .. } => {
                return Err(Error::NotRunning {
                    profile: profile.into(),
                    reason: "every node is stopped".into(),
                });
            }
            ProfileStatus::Degraded { reason, .. } => {
                return Err(Error::NotRunning {
                    profile: profile.into(),
                    reason: reason.clone(),
                });
            }
        }
        check_node_count(profile, &after, cluster.nodes)?;
        Ok(Ensured {
            target: Target {
                kubeconfig: None,
                context: Some(profile.to_string()),
                driver: Driver::Minikube,
            },
            change,
        })
    }

    async fn run_checked(&self, argv: &[String], timeout: Option<Duration>) -> Result<(), Error> {
        let out = self.run(argv, timeout).await?;
        if out.success() {
            Ok(())
        } else {
            Err(Error::Command {
                command: self.command_line(argv),
                code: out.code,
                output: out.tail(20),
            })
        }
    }

    async fn run(&self, argv: &[String], timeout: Option<Duration>) -> Result<Output, Error> {
        // Plain text in captured output: no emoji, no colors.
        let env: [(&str, &OsStr); 1] = [("MINIKUBE_IN_STYLE", OsStr::new("false"))];
        process::run(self.program.as_os_str(), argv, &env, timeout)
            .await
            .map_err(|source| match (source.kind(), timeout) {
                (std::io::ErrorKind::TimedOut, Some(t)) => Error::TimedOut {
                    command: self.command_line(argv),
                    seconds: t.as_secs(),
                },
                _ => Error::Spawn {
                    program: self.program.display().to_string(),
                    source,
                },
            })
    }

    fn command_line(&self, argv: &[String]) -> String {
        let mut parts: Vec<OsString> = vec![self.program.clone().into_os_string()];
        parts.extend(argv.iter().map(OsString::from));
        parts
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The nodes of `have` without `image`, in name order.
fn lacking(have: &BTreeMap<String, BTreeSet<String>>, image: &str) -> Vec<String> {
    let key = image_key(image);
    have.iter()
        .filter(|(_, images)| !images.contains(&key))
        .map(|(node, _)| node.clone())
        .collect()
}

/// An image reference as runtimes differ in naming it: `platformctl/api:1.0` is
/// `docker.io/platformctl/api:1.0` to containerd, `localhost/platformctl/api:1.0` when CRI-O's
/// podman built it, and `nginx:1` is `docker.io/library/nginx:1`. The key drops those
/// prefixes so the three compare equal.
pub fn image_key(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/")
        .or_else(|| reference.strip_prefix("localhost/"))
        .unwrap_or(reference);
    r.strip_prefix("library/").unwrap_or(r).to_string()
}

/// `crictl images -o json`: `{"images": [{"id": …, "repoTags": [...], "repoDigests": [...],
/// …}]}` (the CRI `ListImagesResponse`); the tags of every image, as `image_key`s.
pub fn parse_crictl_images(json: &str) -> Result<BTreeSet<String>, String> {
    #[derive(serde::Deserialize)]
    struct List {
        images: Option<Vec<Image>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Image {
        repo_tags: Option<Vec<String>>,
    }
    let list: List = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(list
        .images
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| i.repo_tags.unwrap_or_default())
        .map(|t| image_key(&t))
        .collect())
}

/// minikube keeps an existing profile's nodes whatever `--nodes` says: a mismatch must be
/// resolved by the user, not papered over.
pub fn check_node_count(profile: &str, status: &ProfileStatus, wanted: u32) -> Result<(), Error> {
    let actual = status.nodes().len();
    if actual == 0 || actual == wanted as usize {
        return Ok(());
    }
    Err(Error::NodeCount {
        profile: profile.into(),
        actual,
        wanted,
    })
}

#[cfg(test)]
mod tests {
    //! `ensure` against a fake `minikube`: a shell script that logs its arguments and answers
    //! `status` with minikube's documented JSON shapes (tests/fixtures/minikube/), switching to
    //! the running shape once `start` ran.
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minikube");

    struct Fake {
        dir: tempfile::TempDir,
        minikube: Minikube,
    }

    impl Fake {
        /// `status` prints `before` (with `code`) until `start` or `update-context` ran, then
        /// `after` with exit 0.
        fn new(before: &str, code: i32, after: &str) -> Fake {
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path().display().to_string();
            std::fs::copy(
                format!("{FIXTURES}/{before}"),
                dir.path().join("status.json"),
            )
            .expect("fixture");
            std::fs::write(dir.path().join("code"), code.to_string()).expect("code");
            let minikube = script(
                dir.path(),
                &format!(
                    "case \"$1\" in\n\
                     status) cat {d}/status.json; exit $(cat {d}/code) ;;\n\
                     start|update-context) cp {FIXTURES}/{after} {d}/status.json; echo 0 > {d}/code; echo done ;;\n\
                     *) echo \"unexpected: $*\" >&2; exit 64 ;;\n\
                     esac\n"
                ),
            );
            Fake { minikube, dir }
        }

        fn log(&self) -> Vec<String> {
            log(self.dir.path())
        }
    }

    /// A `minikube` script in `dir` that appends its arguments to `dir/log`, then runs `body`.
    fn script(dir: &Path, body: &str) -> Minikube {
        let bin = dir.join("minikube");
        let text = format!("#!/bin/sh\necho \"$*\" >> {}/log\n{body}", dir.display());
        std::fs::write(&bin, text).expect("script");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Minikube::new(bin)
    }

    /// The command lines `script` logged, one per call.
    fn log(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn cluster(nodes: u32) -> Cluster {
        Cluster {
            profile: "customer-platform".into(),
            nodes,
            ..Cluster::default()
        }
    }

    const STATUS: &str = "status -p customer-platform -o json";

    #[tokio::test]
    async fn running_profile_is_reused_without_start() {
        let fake = Fake::new("status-multi-running.json", 0, "status-multi-running.json");
        let ensured = fake.minikube.ensure(&cluster(3)).await.expect("ensured");
        assert_eq!(ensured.change, None);
        let target = ensured.target;
        assert_eq!(
            target,
            Target {
                kubeconfig: None,
                context: Some("customer-platform".into()),
                driver: Driver::Minikube
            }
        );
        assert_eq!(fake.log(), [STATUS]);
    }

    #[tokio::test]
    async fn absent_profile_is_started_with_the_configured_command_line() {
        let fake = Fake::new("status-absent.json", 85, "status-multi-running.json");
        fake.minikube.ensure(&cluster(3)).await.expect("ensured");
        let log = fake.log();
        assert_eq!(log.len(), 3, "{log:?}");
        assert_eq!(log[0], STATUS);
        assert_eq!(log[1], args::start(&cluster(3)).join(" "));
        assert_eq!(log[2], STATUS);
    }

    #[tokio::test]
    async fn stopped_profile_is_started() {
        let fake = Fake::new("status-multi-stopped.json", 7, "status-multi-running.json");
        fake.minikube.ensure(&cluster(3)).await.expect("ensured");
        assert!(fake.log()[1].starts_with("start -p customer-platform --nodes 3"));
    }

    #[tokio::test]
    async fn stale_kubeconfig_is_repaired_with_update_context() {
        let fake = Fake::new(
            "status-single-misconfigured.json",
            4,
            "status-single-running.json",
        );
        fake.minikube.ensure(&cluster(1)).await.expect("ensured");
        assert_eq!(
            fake.log(),
            [STATUS, "update-context -p customer-platform", STATUS]
        );
    }

    #[tokio::test]
    async fn node_count_mismatch_is_a_usage_error_before_anything_runs() {
        let fake = Fake::new(
            "status-single-running.json",
            0,
            "status-single-running.json",
        );
        let err = fake
            .minikube
            .ensure(&cluster(3))
            .await
            .expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "minikube profile `customer-platform` has 1 node, but platform.yaml asks for 3"
        );
        assert!(err.is_usage());
        let hint = err.hint().expect("hint");
        assert!(
            hint.contains("minikube node add -p customer-platform` (2 times)"),
            "{hint}"
        );
        assert_eq!(fake.log(), [STATUS], "no start");
    }

    #[tokio::test]
    async fn a_profile_still_degraded_after_start_is_an_error_naming_the_node() {
        let fake = Fake::new(
            "status-multi-degraded.json",
            7,
            "status-multi-degraded.json",
        );
        let err = fake
            .minikube
            .ensure(&cluster(3))
            .await
            .expect_err("degraded");
        assert_eq!(
            err.to_string(),
            "minikube profile `customer-platform` is not running after `minikube start`: \
             node `customer-platform-m03`: host is Stopped"
        );
        assert!(!err.is_usage());
    }

    #[tokio::test]
    async fn failures_carry_minikube_output_and_a_missing_binary_says_how_to_install() {
        let fake = Fake::new(
            "status-single-running.json",
            0,
            "status-single-running.json",
        );
        let err = fake
            .minikube
            .delete("p")
            .await
            .expect_err("unexpected command");
        let text = err.to_string();
        assert!(
            text.ends_with("delete -p p` failed (exit code 64)\nunexpected: delete -p p"),
            "{text}"
        );

        let missing = Minikube::new(fake.dir.path().join("no-such-minikube"));
        let err = missing.status("p").await.expect_err("missing");
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
        assert!(err.hint().expect("hint").contains("PLATFORMCTL_MINIKUBE"));
    }

    #[tokio::test]
    async fn garbage_from_status_is_reported_with_the_output() {
        let fake = Fake::new("README.md", 3, "status-single-running.json");
        let err = fake
            .minikube
            .status("customer-platform")
            .await
            .expect_err("garbage");
        assert!(
            err.to_string()
                .contains("status -p customer-platform -o json` failed (exit code 3)"),
            "{err}"
        );
    }

    #[test]
    fn crictl_listing_gives_tags_as_keys() {
        let json =
            std::fs::read_to_string(format!("{FIXTURES}/crictl-images.json")).expect("fixture");
        let keys = parse_crictl_images(&json).expect("parsed");
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            [
                "platformctl/customer-api:0.1.0",
                "platformctl/orders:0.3.0",
                "redis:7.2",
                "registry.k8s.io/pause:3.10"
            ]
        );
        assert!(
            parse_crictl_images(r#"{"images":null}"#)
                .expect("empty")
                .is_empty()
        );
        assert!(parse_crictl_images("Error: no such node").is_err());
        assert_eq!(image_key("platformctl/api:1"), "platformctl/api:1");
        assert_eq!(image_key("docker.io/library/nginx:1"), "nginx:1");
        assert_eq!(
            image_key("quay.io/argoproj/argocd:v3"),
            "quay.io/argoproj/argocd:v3"
        );
    }

    /// A fake multi-node minikube for `ensure_images`: `nodes/<node>` lists the tags a node's
    /// runtime holds (containerd's naming), answered as crictl's JSON; `image build` adds the
    /// tag on `--all` nodes or the `--node`, except that `fail/<node>` holds how many builds
    /// on that node fail while minikube still exits 0, as `machine.BuildImage` does.
    struct Nodes {
        dir: tempfile::TempDir,
        minikube: Minikube,
    }

    const API: &str = "platformctl/customer-api:0.1.0";
    const WEB: &str = "platformctl/web:2.0.0";
    const NODES: [&str; 3] = ["p", "p-m02", "p-m03"];

    impl Nodes {
        fn new(images: &[&[&str]; 3]) -> Nodes {
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path().display().to_string();
            std::fs::create_dir_all(dir.path().join("nodes")).expect("mkdir");
            std::fs::create_dir_all(dir.path().join("fail")).expect("mkdir");
            for (node, tags) in NODES.iter().zip(images) {
                let text: String = tags.iter().map(|t| format!("docker.io/{t}\n")).collect();
                std::fs::write(dir.path().join("nodes").join(node), text).expect("node");
            }
            let image = r#"{"id":"sha256:0","repoTags":["&"],"repoDigests":[],"size":"1","uid":null,"username":"","spec":null,"pinned":false}"#;
            let body = format!(
                "case \"$1 $2\" in\n\
                 'ssh -p')\n\
                   [ -f {d}/nodes/$5 ] || {{ echo \"node $5 not found\" >&2; exit 80; }}\n\
                   printf '{{\"images\":['; sed 's#.*#{image}#' {d}/nodes/$5 | paste -sd, - | tr -d '\\n'; echo ']}}' ;;\n\
                 'image build')\n\
                   if [ \"$5\" = --all ]; then nodes=$(ls {d}/nodes); tag=$7; else nodes=$6; tag=$8; fi\n\
                   for n in $nodes; do\n\
                     f=$(cat {d}/fail/$n 2>/dev/null || echo 0)\n\
                     if [ \"$f\" -gt 0 ]; then echo $((f - 1)) > {d}/fail/$n; continue; fi\n\
                     echo \"docker.io/$tag\" >> {d}/nodes/$n\n\
                   done ;;\n\
                 *) echo \"unexpected: $*\" >&2; exit 64 ;;\n\
                 esac\n"
            );
            let minikube = script(dir.path(), &body);
            Nodes { minikube, dir }
        }

        fn fail(&self, node: &str, times: u32) {
            std::fs::write(self.dir.path().join("fail").join(node), times.to_string())
                .expect("fail");
        }

        fn log(&self) -> Vec<String> {
            log(self.dir.path())
        }

        /// Builds of API and WEB, with what the Node objects report (`known`).
        async fn ensure(&self, known: &[&[&str]; 3]) -> (Result<Vec<String>, Error>, Vec<String>) {
            let builds: Vec<ImageBuild> = [API, WEB]
                .iter()
                .map(|image| ImageBuild {
                    image: image.to_string(),
                    dockerfile: "docker/x.Dockerfile".into(),
                    context: PathBuf::from("examples/services"),
                })
                .collect();
            let known = NODES
                .iter()
                .zip(known)
                .map(|(n, tags)| (n.to_string(), tags.iter().map(|t| image_key(t)).collect()))
                .collect();
            let messages = std::sync::Mutex::new(Vec::new());
            let result = self
                .minikube
                .ensure_images("p", &builds, known, &|m: &str| {
                    messages.lock().expect("lock").push(m.to_string())
                })
                .await;
            (result, messages.into_inner().expect("lock"))
        }

        /// The builds run, without their `-t … -f … context` tail.
        fn builds(&self) -> Vec<String> {
            self.log()
                .into_iter()
                .filter(|l| l.starts_with("image build"))
                .map(|l| l.split(" -f ").next().expect("line").to_string())
                .collect()
        }

        fn asked(&self) -> usize {
            self.log().iter().filter(|l| l.starts_with("ssh")).count()
        }
    }

    #[tokio::test]
    async fn images_the_nodes_report_are_not_built_and_no_node_is_asked() {
        let all: [&[&str]; 3] = [&[API, WEB], &[API, WEB], &[WEB, API]];
        let nodes = Nodes::new(&all);
        let (built, _) = nodes.ensure(&all).await;
        assert_eq!(built.expect("ok"), Vec::<String>::new());
        assert_eq!(nodes.log(), Vec::<String>::new(), "no minikube call at all");
    }

    #[tokio::test]
    async fn a_node_whose_status_list_is_short_is_asked_and_nothing_is_built() {
        let all: [&[&str]; 3] = [&[API, WEB], &[API, WEB], &[API, WEB]];
        let nodes = Nodes::new(&all);
        // The kubelet's list (capped at 50 images) left WEB out on p-m02.
        let (built, _) = nodes.ensure(&[&[API, WEB], &[API], &[API, WEB]]).await;
        assert_eq!(built.expect("ok"), Vec::<String>::new());
        assert_eq!(
            nodes.log(),
            ["ssh -p p -n p-m02 -- sudo crictl images -o json"]
        );
    }

    #[tokio::test]
    async fn fresh_nodes_get_each_image_with_one_build_on_all_of_them() {
        let none: [&[&str]; 3] = [&[], &[], &[]];
        let nodes = Nodes::new(&none);
        let (built, messages) = nodes.ensure(&none).await;
        assert_eq!(built.expect("ok"), [API, WEB]);
        assert_eq!(
            nodes.builds(),
            [
                format!("image build -p p --all -t {API}"),
                format!("image build -p p --all -t {WEB}")
            ]
        );
        // Asked before (3 nodes lacked images) and after the builds (3 nodes), not again.
        assert_eq!(nodes.asked(), 6);
        assert_eq!(
            messages,
            [
                format!("building {API} on every node"),
                format!("building {WEB} on every node")
            ]
        );
    }

    #[tokio::test]
    async fn an_image_missing_on_one_node_is_built_on_that_node_only() {
        let some: [&[&str]; 3] = [&[API, WEB], &[API, WEB], &[API]];
        let nodes = Nodes::new(&some);
        let (built, _) = nodes.ensure(&some).await;
        assert_eq!(built.expect("ok"), [WEB]);
        assert_eq!(
            nodes.builds(),
            [format!("image build -p p --node p-m03 -t {WEB}")]
        );
    }

    #[tokio::test]
    async fn a_build_minikube_reports_done_but_a_node_lacks_is_run_again_there() {
        let none: [&[&str]; 3] = [&[], &[], &[]];
        let nodes = Nodes::new(&none);
        nodes.fail("p-m02", 1);
        let (built, messages) = nodes.ensure(&none).await;
        assert_eq!(built.expect("ok"), [API, WEB]);
        assert_eq!(
            nodes.builds(),
            [
                format!("image build -p p --all -t {API}"),
                format!("image build -p p --all -t {WEB}"),
                format!("image build -p p --node p-m02 -t {API}"),
            ]
        );
        assert!(
            messages.contains(&format!("building {API} again on p-m02")),
            "{messages:?}"
        );
    }

    #[tokio::test]
    async fn an_image_still_missing_after_the_second_build_names_the_node() {
        let none: [&[&str]; 3] = [&[], &[], &[]];
        let nodes = Nodes::new(&none);
        nodes.fail("p-m03", 3);
        let (built, _) = nodes.ensure(&none).await;
        let err = built.expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!("image `{API}` is not on node `p-m03` after `minikube image build`")
        );
        let hint = err.hint().expect("hint");
        assert!(hint.contains("minikube logs -p p -n p-m03"), "{hint}");
        assert!(!err.is_usage());
    }

    #[tokio::test]
    async fn a_node_that_cannot_be_asked_fails_with_what_minikube_said() {
        let none: [&[&str]; 3] = [&[], &[], &[]];
        let nodes = Nodes::new(&none);
        std::fs::remove_file(nodes.dir.path().join("nodes/p-m02")).expect("rm");
        let (built, _) = nodes.ensure(&none).await;
        let text = built.expect_err("unreachable").to_string();
        assert!(
            text.contains("ssh -p p -n p-m02 -- sudo crictl images -o json` failed (exit code 80)")
                && text.ends_with("node p-m02 not found"),
            "{text}"
        );
    }
}
