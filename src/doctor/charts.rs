//! The chart versions platform.yaml pins, asked of their repositories: `helm show chart` at the
//! pinned version, which fails on a version a repository does not hold exactly as `up`'s install
//! would, for an `https://` repository and an `oci://` registry alike. One helm per addon, all at
//! once, each under a timeout.
//!
//! This is doctor's only check that needs the network. A repository that answers that it has no
//! such version is an error; one that cannot be reached (no network, a wrong URL, a timeout) is
//! a warning, so doctor stays usable offline; `--offline` skips the check.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use super::{Env, Finding, tools};
use crate::addons::{Kind, Release};
use crate::cluster::process;

/// A repository index can be large (prometheus-community's is tens of MB).
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a repository said about one chart version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// It holds the chart; the version it resolved to.
    Found(String),
    /// It answered, and has no such chart version.
    Missing,
    /// No answer: why, for the message.
    Unknown(String),
}

/// Stable identifier of the check of one addon's chart.
fn check(kind: Kind) -> &'static str {
    match kind {
        Kind::Argocd => "chart/argocd",
        Kind::ArgoRollouts => "chart/argoRollouts",
        Kind::KubePrometheusStack => "chart/kubePrometheusStack",
        Kind::ChaosMesh => "chart/chaosMesh",
        Kind::IngressNginx => "chart/ingressNginx",
        Kind::MetricsServer => "chart/metricsServer",
    }
}

/// One finding per release: its pinned chart version is in its repository, or not, or could
/// not be asked.
pub async fn versions(releases: &[Release], env: &Env) -> Vec<Finding> {
    if releases.is_empty() {
        return Vec::new();
    }
    let Some(helm) = tools::helm_binary(env) else {
        return vec![Finding::warn(
            "chart/versions",
            "chart versions: not checked, there is no helm to ask the repositories with",
            "install helm (see tool/helm above); `platformctl doctor --offline` skips this check"
                .into(),
        )];
    };
    let checks = releases.iter().map(|r| version(&helm, r, env));
    futures::future::join_all(checks).await
}

async fn version(helm: &Path, release: &Release, env: &Env) -> Finding {
    let (chart, version, repository) = (&release.chart, &release.version, &release.repository);
    let key = release.kind.key();
    let pin = format!("addons.{key}.version");
    match ask(helm, release, Some(version), env).await {
        Answer::Found(_) => Finding::ok(
            check(release.kind),
            format!("chart {chart} {version} is in {repository}"),
        ),
        Answer::Missing => Finding::error(
            check(release.kind),
            format!(
                "chart {chart} {version} is not in {repository}: `up` cannot install it ({pin})"
            ),
            suggestion(helm, release, env).await,
        ),
        Answer::Unknown(why) => Finding::warn(
            check(release.kind),
            format!("chart {chart} {version}: could not ask {repository}: {why}"),
            format!(
                "check the network and the repository (addons.{key}.repository); `platformctl \
                 doctor --offline` skips this check"
            ),
        ),
    }
}

/// The fix for a pin the repository lacks: the newest release of the pin's `MAJOR.MINOR` line
/// there, else the newest release there at all.
async fn suggestion(helm: &Path, release: &Release, env: &Env) -> String {
    let (key, repository) = (release.kind.key(), &release.repository);
    let line = release
        .version
        .split(['-', '+'])
        .next()
        .and_then(|core| core.rsplit_once('.'))
        .map(|(line, _)| line.to_string());
    if let Some(line) = &line
        && let Answer::Found(v) = ask(helm, release, Some(&format!("~{line}.0")), env).await
    {
        return format!(
            "pin a version that exists, e.g. the newest of its {line} line in {repository}: \
             `addons.{key}.version: {v}`"
        );
    }
    match ask(helm, release, None, env).await {
        Answer::Found(v) => format!(
            "pin a version that exists: {repository} has no release of the {} line; its newest \
             is `addons.{key}.version: {v}`",
            line.as_deref().unwrap_or("pinned")
        ),
        Answer::Missing => format!(
            "{repository} has no chart {} at all: check addons.{key}.repository",
            release.chart
        ),
        Answer::Unknown(_) => format!("pin a version that exists in {repository}"),
    }
}

/// `helm show chart` of the release's chart at `version` (an exact version or a constraint;
/// `None`: the newest).
async fn ask(helm: &Path, release: &Release, version: Option<&str>, env: &Env) -> Answer {
    let (chart, repo) = release.chart_ref();
    let mut args: Vec<&str> = vec!["show", "chart", &chart];
    if let Some(repo) = repo {
        args.extend(["--repo", repo]);
    }
    if let Some(v) = version {
        args.extend(["--version", v]);
    }
    let vars: [(&str, &OsStr); 1] = [("PATH", env.path.as_os_str())];
    match process::run(helm.as_os_str(), &args, &vars, Some(TIMEOUT)).await {
        Err(e) => Answer::Unknown(e.to_string()),
        Ok(out) if out.success() => resolved(&out.stdout, &release.chart).map_or_else(
            || {
                Answer::Unknown(format!(
                    "`helm show chart` printed no Chart.yaml of {}",
                    release.chart
                ))
            },
            Answer::Found,
        ),
        Ok(out) if missing(&out.stderr) => Answer::Missing,
        Ok(out) => Answer::Unknown(reason(&out.tail(1))),
    }
}

/// The version in the Chart.yaml `helm show chart` printed, when it is `chart`'s.
fn resolved(stdout: &str, chart: &str) -> Option<String> {
    let meta: serde_yaml::Value = serde_yaml::from_str(stdout).ok()?;
    (meta["name"].as_str() == Some(chart))
        .then(|| meta["version"].as_str().map(String::from))
        .flatten()
}

/// Whether helm's error says the repository answered without the chart version: from an HTTP
/// repository's index, ``chart "NAME" version "V" not found in URL repository`` (or without
/// the version, when the chart is not there at all); from an OCI registry,
/// ``failed to perform "FetchReference" on source: REF:V: not found``.
fn missing(stderr: &str) -> bool {
    let last = stderr.trim_end().lines().last().unwrap_or("");
    (last.contains("\" not found in ") && last.ends_with(" repository"))
        || (last.contains("failed to perform \"FetchReference\" on source:")
            && last.ends_with(": not found"))
}

/// helm's error line without its `Error: ` prefix, nor the repository URL the message names
/// already: ``looks like "URL" is not a valid chart repository or cannot be reached: WHY``.
fn reason(line: &str) -> String {
    let line = line.trim();
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    const UNREACHABLE: &str = "\" is not a valid chart repository or cannot be reached: ";
    match line
        .strip_prefix("looks like \"")
        .and_then(|l| l.split_once(UNREACHABLE))
    {
        Some((_, why)) => why.to_string(),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_errors_that_mean_the_version_is_not_there() {
        // helm 3.19 against an HTTP repository's index (pkg/repo/chartrepo.go).
        assert!(missing(
            "Error: chart \"kube-prometheus-stack\" version \"81.4.5\" not found in \
             https://prometheus-community.github.io/helm-charts repository\n"
        ));
        assert!(missing(
            "Error: chart \"nope\" not found in http://127.0.0.1:8879 repository\n"
        ));
        // From an OCI registry, as users report it (oauth2-proxy/manifests#380).
        assert!(missing(
            "Error: failed to perform \"FetchReference\" on source: \
             ghcr.io/oauth2-proxy/charts/oauth2-proxy:10.0.0: not found\n"
        ));
        // No answer: not a missing version.
        for unreachable in [
            "Error: looks like \"http://127.0.0.1:1\" is not a valid chart repository or cannot \
             be reached: Get \"http://127.0.0.1:1/index.yaml\": dial tcp 127.0.0.1:1: connect: \
             connection refused\n",
            "Error: failed to do request: Head \"https://ghcr.io/v2/x/manifests/1.0.0\": dial \
             tcp: lookup ghcr.io: no such host\n",
            "",
        ] {
            assert!(!missing(unreachable), "{unreachable}");
        }
        assert_eq!(
            reason(
                "Error: looks like \"http://127.0.0.1:1\" is not a valid chart repository or \
                 cannot be reached: Get \"http://127.0.0.1:1/index.yaml\": dial tcp \
                 127.0.0.1:1: connect: connection refused"
            ),
            "Get \"http://127.0.0.1:1/index.yaml\": dial tcp 127.0.0.1:1: connect: connection \
             refused"
        );
        assert_eq!(reason("Error: something else\n"), "something else");
    }

    #[test]
    fn the_version_comes_from_the_charts_own_chart_yaml() {
        let shown = "annotations:\n  category: Monitoring\napiVersion: v2\nappVersion: 0.8.0\nname: metrics-server\nversion: 3.13.0\n";
        assert_eq!(resolved(shown, "metrics-server").as_deref(), Some("3.13.0"));
        assert_eq!(resolved(shown, "argo-cd"), None);
        assert_eq!(resolved("v3.19.0+g3d8990f\n", "metrics-server"), None);
    }
}
