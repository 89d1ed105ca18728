//! HorizontalPodAutoscalers that read their metric (`ScalingActive` True) and Ingresses with
//! an address (the ingress controller has published one in their status).

use kube::Client;

use super::{Check, Error, Rendered, Verdict, get, resource_of};

pub(super) async fn hpas(client: &Client, rendered: &Rendered) -> Result<Vec<Check>, Error> {
    let asks = rendered.kind("HorizontalPodAutoscaler").map(|(env, m)| async move {
        let ns = m.namespace().unwrap_or("default");
        let object = format!("{ns}/{}", m.name());
        let live = get(client, &resource_of(m), ns, m.name()).await?;
        let (verdict, message) = match live {
            None => (
                Verdict::Fail,
                format!("HorizontalPodAutoscaler `{object}` is not in the cluster"),
            ),
            Some(h) => {
                let conditions = h["status"]["conditions"].as_array().cloned().unwrap_or_default();
                let active = conditions.iter().find(|c| c["type"] == "ScalingActive");
                let current = h["status"]["currentReplicas"].as_i64().unwrap_or(0);
                match active {
                    Some(c) if c["status"] == "True" => (
                        Verdict::Pass,
                        format!(
                            "reads its metric ({}), {current} replicas",
                            metric_now(&h).unwrap_or_else(|| "ScalingActive".into())
                        ),
                    ),
                    Some(c) => (
                        Verdict::Fail,
                        format!(
                            "cannot read its metric: ScalingActive {} ({}): {}",
                            c["status"].as_str().unwrap_or_default(),
                            c["reason"].as_str().unwrap_or_default(),
                            c["message"].as_str().unwrap_or_default()
                        ),
                    ),
                    None => (
                        Verdict::Fail,
                        "no ScalingActive condition yet: the HPA controller has not evaluated it".into(),
                    ),
                }
            }
        };
        Ok::<Check, Error>(Check::new("hpa", &object, env, verdict, message))
    });
    futures::future::try_join_all(asks).await
}

/// The first current metric as `kubectl get hpa` shows it: `cpu 12%/70%`.
fn metric_now(h: &serde_json::Value) -> Option<String> {
    let current = h["status"]["currentMetrics"].as_array()?.first()?;
    let name = current["resource"]["name"].as_str()?;
    let now = current["resource"]["current"]["averageUtilization"].as_i64()?;
    let target = h["spec"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["resource"]["name"] == name)?["resource"]["target"]["averageUtilization"]
        .as_i64()?;
    Some(format!("{name} {now}%/{target}%"))
}

pub(super) async fn ingresses(client: &Client, rendered: &Rendered) -> Result<Vec<Check>, Error> {
    let asks = rendered.kind("Ingress").map(|(env, m)| async move {
        let ns = m.namespace().unwrap_or("default");
        let object = format!("{ns}/{}", m.name());
        let live = get(client, &resource_of(m), ns, m.name()).await?;
        let (verdict, message) = match live {
            None => (Verdict::Fail, format!("Ingress `{object}` is not in the cluster")),
            Some(i) => {
                let addresses: Vec<String> = i["status"]["loadBalancer"]["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["ip"].as_str().or(a["hostname"].as_str()))
                    .map(str::to_string)
                    .collect();
                let hosts: Vec<&str> = i["spec"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["host"].as_str())
                    .collect();
                if addresses.is_empty() {
                    (
                        Verdict::Fail,
                        "no address: no ingress controller has admitted it (is the ingress addon running?)".into(),
                    )
                } else {
                    (
                        Verdict::Pass,
                        format!("{} at {}", hosts.join(", "), addresses.join(", ")),
                    )
                }
            }
        };
        Ok::<Check, Error>(Check::new("ingress", &object, env, verdict, message))
    });
    futures::future::try_join_all(asks).await
}
