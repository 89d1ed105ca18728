//! The least privilege of the refresh `promote` (and `up`, and `undo --git`) asks of Argo CD: a
//! ServiceAccount whose only permission is `patch` on dev's Application, by name, refreshes it
//! through `platformctl::promote::git::refresh` (the annotation lands on the object) and is
//! refused (403) for prod's, in the same namespace. Nothing else of the cluster or of Argo CD's
//! own API is needed. The Applications live in a namespace of the test's own, which the shared
//! cluster's Argo CD does not watch, so nothing acts on them.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use libtest_mimic::Trial;
use serde_json::json;

use crate::support::{self, Namespaces, TestResult, from_json, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![support::trial(
        "promote_refresh_needs_patch_on_its_one_application_and_nothing_else",
        || support::run(least_privilege),
    )]
}

async fn least_privilege(cluster: &'static support::Cluster, client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "refresh", &["argocd"]).await?;
    let ns = namespaces.get("argocd").to_string();
    let result = async {
        let pp = PostParams::default();
        let apps: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &platformctl::kube::argo("Application", "applications"),
        );
        for env in ["dev", "prod"] {
            let app: DynamicObject = from_json(json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": format!("customer-platform-{env}")},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.invalid/platform.git", "path": format!("envs/{env}")},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": env},
                },
            }))?;
            apps.create(&pp, &app)
                .await
                .map_err(|e| format!("Application {env}: {e}"))?;
        }
        let rules = json!([{
            "apiGroups": ["argoproj.io"],
            "resources": ["applications"],
            "resourceNames": ["customer-platform-dev"],
            "verbs": ["patch"],
        }]);
        support::bound_service_account(&client, &ns, "promoter", rules).await?;
        let as_sa = cluster.client_as(&client, &ns, "promoter").await?;

        // The platform whose Argo CD lives in the test's namespace.
        let text = std::fs::read_to_string(support::repo_root().join("platform.yaml"))
            .map_err(|e| e.to_string())?;
        let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        yaml["addons"]["argocd"]["namespace"] = ns.clone().into();
        let platform = platformctl::config::parse(
            std::path::Path::new("platform.yaml"),
            &serde_yaml::to_string(&yaml).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{e:?}"))?;
        let refresh = |app: &'static str| {
            let (as_sa, platform) = (as_sa.clone(), &platform);
            async move { platformctl::promote::git::refresh(&as_sa, platform, app).await }
        };

        // dev: allowed (retried briefly: the authorizer learns of new bindings from a watch).
        wait_for(
            "the promoter may refresh dev's Application",
            Duration::from_secs(15),
            || async {
                match refresh("customer-platform-dev").await {
                    Ok(()) => Ok(true),
                    Err(platformctl::promote::git::Error::Refresh {
                        source: kube::Error::Api(e),
                        ..
                    }) if e.code == 403 => Ok(false),
                    Err(e) => Err(format!("{e:?}")),
                }
            },
        )
        .await?;
        let dev = apps
            .get("customer-platform-dev")
            .await
            .map_err(|e| e.to_string())?;
        let annotation = dev
            .metadata
            .annotations
            .unwrap_or_default()
            .get("argocd.argoproj.io/refresh")
            .cloned();
        if annotation.as_deref() != Some("normal") {
            return Err(format!(
                "dev's Application after the refresh: annotation {annotation:?}"
            ));
        }
        // prod: refused, and untouched.
        match refresh("customer-platform-prod").await {
            Err(platformctl::promote::git::Error::Refresh {
                source: kube::Error::Api(e),
                ..
            }) if e.code == 403 && e.reason == "Forbidden" => {}
            other => {
                return Err(format!(
                    "refresh of prod's Application as dev's promoter: expected 403 Forbidden, got {other:?}"
                ));
            }
        }
        let prod = apps
            .get("customer-platform-prod")
            .await
            .map_err(|e| e.to_string())?;
        if prod
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("argocd.argoproj.io/refresh")
        {
            return Err("prod's Application carries the refresh annotation".into());
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}
