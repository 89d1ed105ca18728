//! Argo CD itself (v3.3.6, built from its Go module; `tests/sim/cluster up --with argocd` runs its
//! application controller and repo server out of cluster) syncing a GitOps tree that the
//! harness's `git-serve` (git's own http-backend) serves over HTTP on loopback, the way the
//! platform's Applications name their repositories. The verdict is Argo CD's, read with
//! `platformctl::ready` as `up` will read it.

use crate::platform::git;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use libtest_mimic::Trial;
use platformctl::ready::Readiness;
use serde_json::{Value, json};

use crate::support::{self, Namespaces, TestResult, wait_for};

/// Where the harness runs Argo CD's controller; Applications and AppProjects live here.
const ARGOCD_NAMESPACE: &str = "argocd";

/// The GitOps tree: a ConfigMap and a Deployment whose two pods the kwok nodes run.
const CONFIG_MAP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
data:
  text: hello
";
const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
";

pub fn trials() -> Vec<Trial> {
    vec![crate::support::trial(
        "argocd_syncs_a_git_repo_served_over_http_to_synced_healthy",
        || support::run(|_, client| syncs_from_git(client)),
    )]
}

/// `tests/sim/cluster git-serve DIR`: serves the bare repositories under `dir`; the base URL.
pub fn git_serve(dir: &Path) -> Result<String, String> {
    let out = support::harness_command(&["git-serve", &dir.display().to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(url) if out.status.success() && url.starts_with("http://127.0.0.1:") => {
            Ok(url.to_string())
        }
        _ => Err(format!(
            "git-serve failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// A bare repository `name.git` under `root`, whose `main` holds `files`, pushed over the
/// served HTTP URL (as a person pushes a GitOps tree); its URL.
fn publish(
    root: &Path,
    base_url: &str,
    name: &str,
    files: &[(&str, String)],
) -> Result<String, String> {
    let bare = format!("{name}.git");
    git(root, &["init", "-q", "--bare", "-b", "main", &bare])?;
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    git(&work, &["init", "-q", "-b", "main"])?;
    for (path, text) in files {
        let path = work.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "the tree"])?;
    let url = format!("{base_url}{bare}");
    git(&work, &["push", "-q", &url, "main"])?;
    Ok(url)
}

fn argo_api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ARGOCD_NAMESPACE,
        &platformctl::kube::argo(kind, plural),
    )
}

fn application(name: &str, project: &str, repo: &str, path: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "project": project,
            "source": {"repoURL": repo, "targetRevision": "HEAD", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
        },
    })
}

/// Argo CD's verdict on an Application, as `platformctl::ready` reads it, and its conditions.
async fn verdict(
    apps: &Api<DynamicObject>,
    name: &str,
) -> Result<(Option<Readiness>, Value), String> {
    let live = apps.get(name).await.map_err(|e| e.to_string())?;
    let live = serde_json::to_value(&live).map_err(|e| e.to_string())?;
    Ok((platformctl::ready::of(&live), live["status"].clone()))
}

/// A repository with a ConfigMap and a two-replica Deployment under `app/`; an AppProject that
/// allows exactly that repository and the test's namespace; an Application with automated sync
/// that reaches Synced and Healthy (its Deployment's pods scheduled and reported Ready in this
/// cluster). The control: an Application of a path the repository lacks never does, and Argo
/// CD says why (ComparisonError).
async fn syncs_from_git(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "argocd", &["apps"]).await?;
    let ns = namespaces.get("apps").to_string();
    let apps = argo_api(&client, "Application", "applications");
    let projects = argo_api(&client, "AppProject", "appprojects");
    let (good, missing) = (ns.clone(), format!("{ns}-missing"));
    let result = async {
        let repos = tempfile::tempdir().map_err(|e| e.to_string())?;
        let base_url = git_serve(repos.path())?;
        let repo = publish(
            repos.path(),
            &base_url,
            &ns,
            &[
                ("app/configmap.yaml", CONFIG_MAP.to_string()),
                ("app/deployment.yaml", DEPLOYMENT.to_string()),
            ],
        )?;

        let params = PatchParams::apply("platformctl-tests");
        let project = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": ns, "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "sourceRepos": [repo],
                "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ns}],
            },
        });
        projects
            .patch(&ns, &params, &Patch::Apply(&project))
            .await
            .map_err(|e| format!("AppProject: {e}"))?;
        for (name, path) in [(&good, "app"), (&missing, "no-such-path")] {
            apps.patch(
                name,
                &params,
                &Patch::Apply(&application(name, &ns, &repo, path, &ns)),
            )
            .await
            .map_err(|e| format!("Application {name}: {e}"))?;
        }

        let seen = std::cell::RefCell::new(Vec::new());
        wait_for(
            &format!("Application {good} to be Synced and Healthy"),
            Duration::from_secs(120),
            || async {
                let (now, _) = verdict(&apps, &good).await?;
                let mut seen = seen.borrow_mut();
                if seen.last() != Some(&now) {
                    seen.push(now.clone());
                }
                Ok(now == Some(Readiness::Ready))
            },
        )
        .await
        .map_err(|e| format!("{e}; its readiness went {:?}", seen.borrow()))?;
        // Argo CD put the tree into this cluster.
        let greeting = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .get("greeting")
            .await
            .map_err(|e| format!("ConfigMap greeting: {e}"))?;
        if greeting
            .data
            .and_then(|d| d.get("text").cloned())
            .as_deref()
            != Some("hello")
        {
            return Err("ConfigMap greeting does not hold text=hello".into());
        }
        let web = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get("web")
            .await
            .map_err(|e| format!("Deployment web: {e}"))?;
        let ready = web.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready != 2 {
            return Err(format!("Deployment web has {ready} ready replicas, not 2"));
        }

        // The control, given as long as the good one took and then until Argo CD has said why.
        let last = std::cell::RefCell::new(Value::Null);
        let synced = |status: &Value| status["sync"]["status"] == "Synced";
        wait_for(
            &format!("Application {missing} to report a ComparisonError"),
            Duration::from_secs(60),
            || async {
                let (now, status) = verdict(&apps, &missing).await?;
                let done = now == Some(Readiness::Ready)
                    || synced(&status)
                    || status["conditions"].as_array().is_some_and(|c| {
                        c.iter().any(|c| {
                            c["type"] == "ComparisonError"
                                && c["message"]
                                    .as_str()
                                    .is_some_and(|m| m.contains("app path does not exist"))
                        })
                    });
                *last.borrow_mut() = status;
                Ok(done)
            },
        )
        .await
        .map_err(|e| format!("{e}; its status: {}", last.borrow()))?;
        let (now, status) = verdict(&apps, &missing).await?;
        if now == Some(Readiness::Ready) || synced(&status) {
            return Err(format!(
                "Application {missing} of a path the repository lacks became {now:?}: {status}"
            ));
        }
        Ok(())
    }
    .await;
    for name in [&good, &missing] {
        let _ = apps.delete(name, &DeleteParams::default()).await;
    }
    let _ = projects.delete(&ns, &DeleteParams::default()).await;
    namespaces.delete().await;
    result
}
