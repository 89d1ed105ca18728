//! What `up` reports at the end: endpoints and generated credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};

use super::*;

/// How to reach Argo CD, Grafana, Prometheus and the services: port-forwards to the Services
/// found in the addons' namespaces, ingress hosts for environments that have one.
pub async fn endpoints(settings: &Settings, state: &State) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let Some(client) = &state.client else {
        return out;
    };
    let context = state
        .target
        .as_ref()
        .and_then(|t| t.context.as_ref())
        .map(|c| format!(" --context {c}"))
        .unwrap_or_default();
    let releases = addons::plan(&settings.platform, &state.facts);
    let wanted: [(&str, addons::Kind, &str, u16); 3] = [
        ("Argo CD", addons::Kind::Argocd, "argocd-server", 8080),
        (
            "Grafana",
            addons::Kind::KubePrometheusStack,
            "grafana",
            3000,
        ),
        (
            "Prometheus",
            addons::Kind::KubePrometheusStack,
            "prometheus",
            9090,
        ),
    ];
    for (name, kind, suffix, local) in wanted {
        let Some(release) = releases.iter().find(|r| r.kind == kind) else {
            continue;
        };
        let services: Vec<Service> =
            match Api::<Service>::namespaced(client.clone(), &release.namespace)
                .list(&ListParams::default())
                .await
            {
                Ok(l) => l.items,
                Err(_) => continue,
            };
        let found = services.iter().find(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(suffix))
        });
        if let Some(svc) = found {
            let port = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|p| p.first())
                .map_or(80, |p| p.port);
            out.push(Endpoint {
                name: name.to_string(),
                how: format!(
                    "kubectl{context} -n {} port-forward svc/{} {local}:{port}  (then http://localhost:{local})",
                    release.namespace,
                    svc.metadata.name.as_deref().unwrap_or_default()
                ),
            });
        }
    }
    for env in &settings.platform.environments {
        for service in &settings.platform.services {
            if !service.tags.contains_key(&env.name) {
                continue;
            }
            let how = match &env.ingress {
                Some(i) => format!(
                    "http://{}.{}/ (ingress class {})",
                    service.name, i.domain, i.class_name
                ),
                None => format!(
                    "kubectl{context} -n {} port-forward svc/{} 8080:{}",
                    env.namespace, service.name, service.port
                ),
            };
            out.push(Endpoint {
                name: format!("{} ({})", service.name, env.name),
                how,
            });
        }
    }
    out
}

/// The generated logins: Argo CD's initial admin password and each addon's Secret.
pub async fn credentials(settings: &Settings) -> Result<Vec<Credential>, BoxError> {
    let mut state = State::default();
    let client = connect(settings, &mut state).await?;
    let mut out = Vec::new();
    let releases = addons::plan(&settings.platform, &addons::Facts::default());
    let read = |ns: String, name: &'static str| {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        async move { api.get_opt(name).await }
    };
    if releases.iter().any(|r| r.kind == addons::Kind::Argocd)
        && let Some(s) = read(
            addons::namespace(&settings.platform, addons::Kind::Argocd).to_string(),
            "argocd-initial-admin-secret",
        )
        .await?
    {
        out.push(Credential {
            name: "Argo CD".into(),
            user: "admin".into(),
            password: value(&s, "password"),
        });
    }
    for r in &releases {
        if let Some(c) = &r.credentials {
            let api: Api<Secret> = Api::namespaced(client.clone(), &c.namespace);
            if let Some(s) = api.get_opt(&c.name).await? {
                out.push(Credential {
                    name: format!("{} ({})", r.chart, c.name),
                    user: value(&s, &c.user_key),
                    password: value(&s, &c.password_key),
                });
            }
        }
    }
    Ok(out)
}

pub(super) fn value(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d: &BTreeMap<String, k8s_openapi::ByteString>| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}
