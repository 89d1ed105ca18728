//! The nudge of a rollout action that nothing acts on (`platformctl::rollout::actions::apply`),
//! on a Rollout no controller watches (it lacks the shared cluster's controller instance-id
//! label), so nothing but the test writes it: as a ServiceAccount that may patch the Rollout and
//! its status, `abort` is nudged twice (the annotation is on the object) and ends `Unobserved`;
//! as one that may patch only the status, the abort is made and the refused nudge is reported
//! (`NudgeFailed`, naming the refusal), not an error.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use libtest_mimic::Trial;
use platformctl::rollout::actions::{self, NUDGE, Plan, Sent};
use serde_json::json;

use crate::support::{self, Namespaces, TestResult, from_json, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![support::trial(
        "rollout_action_nothing_acts_on_is_nudged_and_a_refused_nudge_is_reported",
        || support::run(nudged),
    )]
}

/// A ServiceAccount `name` in `ns` that may get rollouts and patch `resources`.
async fn bound(client: &Client, ns: &str, name: &str, resources: &[&str]) -> TestResult {
    let rules = json!([
        {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get"]},
        {"apiGroups": ["argoproj.io"], "resources": resources, "verbs": ["patch"]},
    ]);
    support::bound_service_account(client, ns, name, rules).await
}

/// `plan` applied through `api` as soon as the authorizer knows its binding (403 until then).
async fn once_bound(api: &Api<DynamicObject>, plan: &Plan, what: &str) -> Result<Sent, String> {
    let sent = std::cell::RefCell::new(None);
    wait_for(
        &format!("{what} (once its binding is known)"),
        Duration::from_secs(15),
        || async {
            match actions::apply(api, "web", plan).await {
                Ok(s) => {
                    sent.replace(Some(s));
                    Ok(true)
                }
                Err(platformctl::rollout::Error::Api {
                    source: kube::Error::Api(e),
                    ..
                }) if e.code == 403 => Ok(false),
                Err(e) => Err(format!("{e:?}")),
            }
        },
    )
    .await?;
    sent.into_inner()
        .ok_or_else(|| format!("{what}: not applied"))
}

async fn nudged(cluster: &'static support::Cluster, client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "nudge", &["prod"]).await?;
    let ns = namespaces.get("prod").to_string();
    let result = async {
        let admin = actions::api(&client, &ns);
        let rollout: DynamicObject = from_json(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "platformctl/customer-api:0.1.0"}]},
                },
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
            },
        }))?;
        admin
            .create(&PostParams::default(), &rollout)
            .await
            .map_err(|e| format!("Rollout: {e}"))?;
        bound(&client, &ns, "operator", &["rollouts", "rollouts/status"]).await?;
        bound(&client, &ns, "status-only", &["rollouts/status"]).await?;
        let abort = Plan {
            status: Some(json!({"status": {"abort": true}})),
            ..Plan::default()
        };
        let retry = Plan {
            status: Some(json!({"status": {"abort": false}})),
            ..Plan::default()
        };

        // May patch both: nudged twice, then nothing still acts.
        let operator = actions::api(&cluster.client_as(&client, &ns, "operator").await?, &ns);
        let sent = once_bound(&operator, &abort, "the operator's abort").await?;
        let live = admin.get("web").await.map_err(|e| e.to_string())?;
        let annotated = live
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .contains_key(NUDGE);
        if sent != Sent::Unobserved
            || live.data["status"]["abort"] != true
            || !annotated
        {
            return Err(format!(
                "the operator's abort nothing acts on: {:?}, abort {}, annotations {:?}",
                sent,
                live.data["status"]["abort"],
                live.metadata.annotations
            ));
        }

        // May patch the status only: the retry is made, the nudge refused and said so.
        let status_only =
            actions::api(&cluster.client_as(&client, &ns, "status-only").await?, &ns);
        let sent = once_bound(&status_only, &retry, "the status-only retry").await?;
        let live = admin.get("web").await.map_err(|e| e.to_string())?;
        let refused = matches!(
            &sent,
            Sent::NudgeFailed(why) if why.contains("forbidden")
        );
        if !refused || live.data["status"]["abort"] != false {
            return Err(format!(
                "the status-only retry: {:?}, abort {}",
                sent,
                live.data["status"]["abort"]
            ));
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}
