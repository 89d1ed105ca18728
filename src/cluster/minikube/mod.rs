//! The minikube driver: runs the `minikube` binary (`$PLATFORMCTL_MINIKUBE`, else `minikube`
//! on PATH) with captured output.
//!
//! `ensure` is idempotent: a running profile with the configured node count is reused without
//! a start; an absent or stopped one is started; a profile whose node count differs is an error
//! that says what to do, because minikube ignores `--nodes` for an existing profile. The
//! command lines live in `args`, the status parsing in `status`; neither runs anything.

pub mod args;
pub mod status;

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

    /// Builds one workload image inside every node of the profile.
    pub async fn build_image(&self, profile: &str, build: &ImageBuild) -> Result<(), Error> {
        self.run_checked(&args::image_build(profile, build), None)
            .await
    }

    /// Loads an image from the host into every running node of the profile.
    pub async fn load_image(&self, profile: &str, image: &str) -> Result<(), Error> {
        self.run_checked(&args::image_load(profile, image), None)
            .await
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
            let script = format!(
                "#!/bin/sh\n\
                 echo \"$*\" >> {d}/log\n\
                 case \"$1\" in\n\
                 status) cat {d}/status.json; exit $(cat {d}/code) ;;\n\
                 start|update-context) cp {FIXTURES}/{after} {d}/status.json; echo 0 > {d}/code; echo done ;;\n\
                 *) echo \"unexpected: $*\" >&2; exit 64 ;;\n\
                 esac\n"
            );
            let bin = dir.path().join("minikube");
            std::fs::write(&bin, script).expect("script");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            Fake {
                minikube: Minikube::new(bin),
                dir,
            }
        }

        fn log(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("log"))
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect()
        }
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
}
