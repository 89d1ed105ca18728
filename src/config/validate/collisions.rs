//! Names that are each valid but meet another object once rendered or installed: two services
//! whose derived objects share a name in one namespace, an environment whose AppProject is Argo
//! CD's built-in `default`, an environment namespace that an addon, the git server or
//! Kubernetes itself owns.

use std::collections::BTreeMap;

use super::Problems;
use crate::config::model::*;

/// Namespaces Kubernetes keeps for itself.
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

pub(super) fn check(out: &mut Problems, p: &Platform) {
    environments(out, p);
    services(out, p);
}

fn environments(out: &mut Problems, p: &Platform) {
    let mut owners: Vec<(String, &str)> = p
        .addons
        .namespaces()
        .into_iter()
        .map(|(key, ns)| (format!("the {key} addon (`addons.{key}`)"), ns))
        .collect();
    if let Some(local) = &p.gitops.local {
        owners.push((
            "the in-cluster git server (`gitops.local.namespace`)".into(),
            local.namespace.as_str(),
        ));
    }
    for ns in SYSTEM_NAMESPACES {
        owners.push(("Kubernetes itself".into(), ns));
    }
    for (i, e) in p.environments.iter().enumerate() {
        let at = format!("environments[{i}]");
        if e.name == "default" {
            out.add(
                format!("{at}.name"),
                "`default` would write the environment's AppProject over Argo CD's built-in `default` project: choose another name",
            );
        }
        if let Some((owner, _)) = owners.iter().find(|(_, ns)| *ns == e.namespace) {
            out.add(
                format!("{at}.namespace"),
                format!(
                    "namespace `{}` belongs to {owner}: an environment needs a namespace of its own",
                    e.namespace
                ),
            );
        }
    }
}

/// The objects one service renders into an environment's namespace, as (kind, name, what).
/// The same names the templates write: `templates/service.yaml.j2`, `configmap.yaml.j2`,
/// `dashboard.yaml.j2`, `slo-rules.yaml.j2`.
fn objects(s: &Service, e: &Environment) -> Vec<(&'static str, String, &'static str)> {
    let name = &s.name;
    let mut out = vec![
        ("Service", name.clone(), "its Service"),
        ("ConfigMap", format!("{name}-config"), "its configuration"),
    ];
    if s.strategy.blue_green.is_some() {
        out.push(("Service", format!("{name}-preview"), "its preview Service"));
    } else if e.ingress.is_some() {
        out.push(("Service", format!("{name}-canary"), "its canary Service"));
    }
    if e.monitoring {
        out.push(("Service", format!("{name}-metrics"), "its metrics Service"));
        out.push(("ConfigMap", format!("{name}-dashboard"), "its dashboard"));
        out.push(("PrometheusRule", format!("{name}-slo"), "its SLO rules"));
    }
    out
}

fn services(out: &mut Problems, p: &Platform) {
    // Each pair once, whichever environments it meets in.
    let mut reported = std::collections::BTreeSet::new();
    for e in &p.environments {
        // (kind, name) → the first service that renders it.
        let mut seen: BTreeMap<(&str, String), (&str, &str)> = BTreeMap::new();
        for (i, s) in p.services.iter().enumerate() {
            for (kind, name, what) in objects(s, e) {
                match seen.get(&(kind, name.clone())) {
                    Some((first, first_what))
                        if *first != s.name && reported.insert((i, first.to_string())) =>
                    {
                        out.add(
                        format!("services[{i}].name"),
                        format!(
                            "`{}` renders {kind} `{}/{name}` ({what}), which service `{first}` renders too ({first_what}): rename one of them",
                            s.name, e.namespace
                        ),
                    )
                    }
                    Some(_) => {}
                    None => {
                        seen.insert((kind, name), (&s.name, what));
                    }
                }
            }
        }
    }
}
