//! The Chaos Mesh object of one run: made from the rendered experiment, labelled with the run,
//! created, read back for the records Chaos Mesh keeps of each target, and deleted however the
//! run ends.
//!
//! Chaos Mesh keeps a finalizer (`chaos-mesh/records`) on each chaos object until its controller
//! has recovered every target. A deletion is waited for; when it does not finish, the run asks
//! the controller to drop the finalizer (the annotation
//! `chaos-mesh.chaos-mesh.org/cleanFinalizer: forced`, as Chaos Mesh's FAQ documents), and when
//! no controller acts on that either, removes the finalizer itself, as the FAQ says to by hand.
//! A pod-kill has nothing to recover (the pods are gone), so nothing is left behind either way.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Label of every object a run creates: the run's id.
pub const RUN_LABEL: &str = "platformctl.dev/chaos-run";
/// Label of every object a run creates: the experiment's name.
pub const EXPERIMENT_LABEL: &str = "platformctl.dev/experiment";
const FORCE_ANNOTATION: &str = "chaos-mesh.chaos-mesh.org/cleanFinalizer";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {kind} `{name}` in namespace `{namespace}`: {source}")]
    Kube {
        what: &'static str,
        kind: String,
        name: String,
        namespace: String,
        source: Box<kube::Error>,
    },
    #[error("the rendered experiment `{0}` is not a Chaos Mesh object: {1}")]
    Rendered(String, String),
}

/// A chaos kind's API in `namespace`.
pub fn api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let plural = kind.to_ascii_lowercase();
    let resource = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("chaos-mesh.org", "v1alpha1", kind),
        // (Chaos Mesh's plurals are the kind in lower case: podchaos, schedules)
        &if kind == "Schedule" {
            "schedules".into()
        } else {
            plural
        },
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The object a run creates from the rendered one: named `<experiment>-<run>`, labelled with
/// both, its selector's namespaces set explicitly to the target's (Chaos Mesh's defaulting
/// webhook would set them; a cluster without it would select nothing), `gracePeriod` when
/// given.
pub fn for_run(
    rendered: &str,
    experiment: &str,
    run: &str,
    target_namespace: &str,
    grace_period: Option<u32>,
) -> Result<Value, Error> {
    let bad = |why: String| Error::Rendered(experiment.to_string(), why);
    let mut v: Value = serde_yaml::from_str(rendered).map_err(|e| bad(e.to_string()))?;
    if v["apiVersion"] != "chaos-mesh.org/v1alpha1" || !v["kind"].is_string() {
        return Err(bad("no chaos-mesh.org/v1alpha1 kind".into()));
    }
    // A scheduled experiment: this run is one of its PodChaos, now.
    if v["kind"] == "Schedule" {
        let embedded = v["spec"]["podChaos"].take();
        if !embedded.is_object() {
            return Err(bad("a Schedule without a podChaos".into()));
        }
        v["kind"] = json!("PodChaos");
        v["spec"] = embedded;
    }
    let name = format!("{experiment}-{run}");
    v["metadata"]["name"] = json!(name);
    let labels = &mut v["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[RUN_LABEL] = json!(run);
    labels[EXPERIMENT_LABEL] = json!(experiment);
    let spec = &mut v["spec"];
    spec["selector"]["namespaces"] = json!([target_namespace]);
    if let Some(g) = grace_period {
        spec["gracePeriod"] = json!(g);
    }
    Ok(v)
}

pub async fn create(api: &Api<DynamicObject>, object: &Value) -> Result<DynamicObject, Error> {
    let obj: DynamicObject = serde_json::from_value(object.clone())
        .map_err(|e| Error::Rendered(name_of(object), e.to_string()))?;
    api.create(&PostParams::default(), &obj)
        .await
        .map_err(|source| kube_error("creating", object, source, api))
}

fn name_of(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn kube_error(
    what: &'static str,
    v: &Value,
    source: kube::Error,
    api: &Api<DynamicObject>,
) -> Error {
    Error::Kube {
        what,
        kind: v["kind"].as_str().unwrap_or("chaos object").to_string(),
        name: name_of(v),
        namespace: api.namespace().unwrap_or_default().to_string(),
        source: Box::new(source),
    }
}

/// One target as Chaos Mesh records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// `namespace/pod`.
    pub id: String,
    /// `Not Injected`, `Injected`.
    pub phase: String,
    pub injected_count: u64,
}

/// The records of `object`'s status (none until Chaos Mesh has chosen its targets).
pub fn records(object: &DynamicObject) -> Vec<Record> {
    object.data["status"]["experiment"]["containerRecords"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Record {
            id: r["id"].as_str().unwrap_or_default().to_string(),
            phase: r["phase"].as_str().unwrap_or_default().to_string(),
            injected_count: r["injectedCount"].as_u64().unwrap_or(0),
        })
        .collect()
}

/// The reason of Chaos Mesh's last Warning event on an object it could not act on, if it wrote
/// one ("Failed to select targets"), else `None`.
pub async fn warning(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    let list = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .ok()?;
    list.items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.message.clone().or(e.reason.clone()))
        .next_back()
}

/// How a deletion ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Deleted {
    /// Gone, its finalizer cleared by Chaos Mesh.
    Cleanly,
    /// Gone after the cleanFinalizer annotation.
    Forced,
    /// Gone after its finalizers were removed here: no controller acted.
    FinalizerRemoved,
    /// It was already gone.
    Absent,
}

/// Deletes `name` and waits until it is gone (see the module's doc for a finalizer that does
/// not clear). `patience` is how long each step waits.
pub async fn delete(
    api: &Api<DynamicObject>,
    name: &str,
    patience: Duration,
) -> Result<Deleted, Error> {
    let err = |what, source| Error::Kube {
        what,
        kind: "chaos object".into(),
        name: name.to_string(),
        namespace: api.namespace().unwrap_or_default().to_string(),
        source: Box::new(source),
    };
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Deleted::Absent),
        Err(e) => return Err(err("deleting", e)),
    }
    if gone(api, name, patience)
        .await
        .map_err(|e| err("reading", e))?
    {
        return Ok(Deleted::Cleanly);
    }
    let force = json!({ "metadata": { "annotations": { FORCE_ANNOTATION: "forced" } } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&force))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Deleted::Cleanly),
        Err(e) => return Err(err("annotating", e)),
    }
    if gone(api, name, patience)
        .await
        .map_err(|e| err("reading", e))?
    {
        return Ok(Deleted::Forced);
    }
    let drop = json!({ "metadata": { "finalizers": null } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&drop))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Deleted::Forced),
        Err(e) => return Err(err("removing the finalizers of", e)),
    }
    if gone(api, name, patience)
        .await
        .map_err(|e| err("reading", e))?
    {
        return Ok(Deleted::FinalizerRemoved);
    }
    Err(err(
        "deleting",
        kube::Error::Service(
            format!(
                "still there {} s after its finalizers were removed",
                patience.as_secs()
            )
            .into(),
        ),
    ))
}

async fn gone(api: &Api<DynamicObject>, name: &str, within: Duration) -> Result<bool, kube::Error> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if api.get_opt(name).await?.is_none() {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The objects an earlier run of `experiment` left (a run that was SIGKILLed cannot clean up).
pub async fn leftovers(api: &Api<DynamicObject>, experiment: &str) -> Result<Vec<String>, Error> {
    let list = api
        .list(
            &ListParams::default().labels(&format!("{EXPERIMENT_LABEL}={experiment},{RUN_LABEL}")),
        )
        .await
        .map_err(|source| Error::Kube {
            what: "listing",
            kind: "chaos objects of experiment".into(),
            name: experiment.to_string(),
            namespace: api.namespace().unwrap_or_default().to_string(),
            source: Box::new(source),
        })?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"# Rendered by platformctl
apiVersion: chaos-mesh.org/v1alpha1
kind: PodChaos
metadata:
  name: "pod-kill"
  namespace: "chaos"
  labels:
    app.kubernetes.io/managed-by: "platformctl"
spec:
  action: "pod-kill"
  mode: "one"
  selector:
    namespaces:
      - "prod"
    labelSelectors:
      app.kubernetes.io/name: "customer-api"
"#;

    #[test]
    fn a_run_names_and_labels_its_object_and_sets_the_namespaces() {
        let v = for_run(RENDERED, "pod-kill", "r1x2", "prod", Some(5)).expect("object");
        assert_eq!(v["metadata"]["name"], "pod-kill-r1x2");
        assert_eq!(v["metadata"]["labels"][RUN_LABEL], "r1x2");
        assert_eq!(v["metadata"]["labels"][EXPERIMENT_LABEL], "pod-kill");
        assert_eq!(
            v["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "platformctl"
        );
        assert_eq!(v["spec"]["selector"]["namespaces"], json!(["prod"]));
        assert_eq!(
            v["spec"]["selector"]["labelSelectors"]["app.kubernetes.io/name"],
            "customer-api"
        );
        assert_eq!(v["spec"]["gracePeriod"], 5);
        let e =
            for_run("kind: Pod\napiVersion: v1\n", "x", "r", "prod", None).expect_err("not chaos");
        assert!(e.to_string().contains("not a Chaos Mesh object"), "{e}");
    }
}
