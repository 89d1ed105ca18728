//! platformctl's chart pins and Helm values held against the real charts, offline. The data are
//! tests/fixtures/upstream-charts/<chart>-<version>.txt: the releases that exist and the values
//! key paths of each chart at its pin, derived by the `generate` script there from the chart's
//! own Chart.yaml and values.yaml at its release tag (its README says where they came from).
//!
//! Helm ignores a values key the chart does not have without a word, and a pinned version that
//! was never released fails `helm install` on the user's machine only: these tests fail here
//! first. They cover the pins of platform.yaml and examples/*/platform.yaml (addon versions have
//! no default in the config: `version` is required, and `init` writes those files), the values
//! `plan` sets for every addon under each cluster driver, and the stand-in charts the cluster
//! tests install (tests/fixtures/charts): their versions, app versions and values keys.
//!
//! A key path exists when every mapping key along it is in the chart's values.yaml (a subchart's
//! section also in the subchart's own values, which Helm merges under it), and the value set
//! there has the upstream value's shape (mapping, list, or the same scalar type; an upstream
//! `null` takes anything, and setting `null` deletes whatever is there). Below an upstream value
//! that is not a mapping (a `{}`, a list, a scalar) no key exists, with one exception: a mapping
//! named in [`FREE_FORM`], which the chart documents and renders as free-form content. An empty
//! `{}` upstream is not enough on its own: many are typed objects (`resources`, selectors) or
//! mappings a template reads by fixed keys, where a misspelt key is as silently ignored as
//! anywhere else; so each free-form mapping is named, with where the chart says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

mod fixture;

use fixture::{Chart, Leaf, Node, split_path};

use super::{Facts, Kind, plan, values};
use crate::config::{self, ContainerRuntime, Driver, Platform};

/// (chart, mapping, why any key below it is the chart's).
const FREE_FORM: &[(&str, &str, &str)] = &[(
    "argo-cd",
    "configs.params",
    "every key but `create` and `annotations` becomes an entry of argocd-cmd-params-cm \
     (values.yaml: \"You can customize parameters by adding parameters here\"; \
     templates/_helpers.tpl, `argo-cd.config.params`)",
)];

/// Values of the stand-in charts with no upstream counterpart: (chart, key path prefix).
const TEST_ONLY: &[(&str, &str)] = &[("metrics-server", "testHooks")];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn charts() -> BTreeMap<(String, String), Chart> {
    fixture::all(&root().join("tests/fixtures/upstream-charts"))
}

/// platform.yaml (customer-platform), every examples/*/platform.yaml, and the alerting test
/// fixture (alert routes add Alertmanager values).
fn platforms() -> Vec<(PathBuf, Platform)> {
    let mut files = vec![
        root().join("platform.yaml"),
        root().join("tests/fixtures/alerting/platform.yaml"),
    ];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("directory entry").path().join("platform.yaml"))
        .filter(|p| p.is_file())
        .collect();
    examples.sort();
    files.extend(examples);
    assert!(files.len() >= 2, "no example platforms found");
    files
        .into_iter()
        .map(|f| {
            let platform = config::load(&f).unwrap_or_else(|e| panic!("{e}"));
            let name = f.strip_prefix(root()).unwrap_or(&f).to_path_buf();
            (name, platform)
        })
        .collect()
}

/// Every value that is not a non-empty mapping, with its key path.
fn leaves<'a>(value: &'a Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                leaves(child, path, out);
                path.pop();
            }
        }
        other => out.push((path.clone(), other)),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "a mapping",
        Value::Array(_) => "a list",
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
    }
}

/// Why `path` set to `ours` is not a values key of `chart`; `None` when it is.
fn wrong_in(chart: &Chart, path: &[String], ours: &Value) -> Option<String> {
    let mut node = &chart.values;
    for (i, key) in path.iter().enumerate() {
        if FREE_FORM
            .iter()
            .any(|(c, m, _)| *c == chart.name && split_path(m) == path[..i])
        {
            return None;
        }
        let prefix = path[..i].join(".");
        let under = if prefix.is_empty() {
            "at the top level".to_string()
        } else {
            format!("under `{prefix}`")
        };
        node = match node {
            Node::Map(map) => match map.get(key) {
                Some(child) => child,
                None => return Some(format!("no key `{key}` {under}")),
            },
            Node::Leaf(leaf) => {
                return Some(format!(
                    "`{prefix}` is {} upstream, with no key `{key}`",
                    leaf.describe()
                ));
            }
        };
    }
    let fits = match (node, ours) {
        (_, Value::Null) | (Node::Leaf(Leaf::Null), _) => true,
        (Node::Map(_) | Node::Leaf(Leaf::EmptyMap), Value::Object(_)) => true,
        (Node::Leaf(leaf), value) => matches!(
            (leaf, value),
            (Leaf::List, Value::Array(_))
                | (Leaf::Bool, Value::Bool(_))
                | (Leaf::Number, Value::Number(_))
                | (Leaf::String, Value::String(_))
        ),
        (Node::Map(_), _) => false,
    };
    let upstream = match node {
        Node::Map(_) => "a mapping",
        Node::Leaf(leaf) => leaf.describe(),
    };
    (!fits).then(|| format!("upstream it is {upstream}, here {}", describe(ours)))
}

/// Why `path` set to `ours` is not a values key of `chart` or, for a subchart's section, of the
/// subchart at the version `chart` depends on.
fn wrong(
    charts: &BTreeMap<(String, String), Chart>,
    chart: &Chart,
    path: &[String],
    ours: &Value,
) -> Option<String> {
    let reason = wrong_in(chart, path, ours)?;
    let sub = path.first().and_then(|first| {
        let (name, version) = chart.dependencies.iter().find(|(n, _)| n == first)?;
        charts.get(&(name.clone(), version.clone()))
    });
    match sub {
        Some(sub) => {
            let sub_reason = wrong_in(sub, &path[1..], ours)?;
            Some(format!(
                "{reason}; nor in {} {}: {sub_reason}",
                sub.name, sub.version
            ))
        }
        None => Some(reason),
    }
}

/// Every problem of `values` for `chart`, one line each, prefixed with `context`.
fn check(
    charts: &BTreeMap<(String, String), Chart>,
    chart: &Chart,
    values: &Value,
    skip: &[&str],
    context: &str,
) -> Vec<String> {
    let mut all = Vec::new();
    leaves(values, &mut Vec::new(), &mut all);
    all.into_iter()
        .filter(|(path, _)| !skip.iter().any(|s| path.join(".").starts_with(s)))
        .filter_map(|(path, ours)| {
            let why = wrong(charts, chart, &path, ours)?;
            Some(format!("{context}: `{}`: {why}", path.join(".")))
        })
        .collect()
}

fn report(problems: impl IntoIterator<Item = String>) {
    let problems: BTreeSet<String> = problems.into_iter().collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_pin_is_a_release_that_exists() {
    let charts = charts();
    let mut problems = Vec::new();
    let mut pins = 0;
    for (file, platform) in platforms() {
        for kind in Kind::ALL {
            let Some(addon) = kind.config(&platform.addons) else {
                continue;
            };
            pins += 1;
            let known: Vec<&Chart> = charts.values().filter(|c| c.name == kind.chart()).collect();
            let releases: BTreeSet<&String> = known.iter().flat_map(|c| &c.releases).collect();
            if releases.is_empty() {
                problems.push(format!(
                    "{}: no releases of chart {} are known: add its fixture \
                     (tests/fixtures/upstream-charts/README.md)",
                    file.display(),
                    kind.chart()
                ));
            } else if !releases.contains(&addon.version) {
                let line = addon.version.rsplit_once('.').map_or("", |(l, _)| l);
                let same_line: Vec<&str> = releases
                    .iter()
                    .filter(|r| r.rsplit_once('.').is_some_and(|(l, _)| l == line))
                    .map(|r| r.as_str())
                    .collect();
                problems.push(format!(
                    "{}: addons.{}.version {} is not a release of chart {} (releases of its \
                     {line} line: {})",
                    file.display(),
                    kind.key(),
                    addon.version,
                    kind.chart(),
                    if same_line.is_empty() {
                        "none".to_string()
                    } else {
                        same_line.join(", ")
                    }
                ));
            }
        }
    }
    assert!(pins >= Kind::ALL.len(), "only {pins} pins found");
    report(problems);
}

#[test]
fn every_value_platformctl_sets_is_a_key_of_the_pinned_chart() {
    let charts = charts();
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, platform) in platforms() {
        for driver in [Driver::Minikube, Driver::Existing] {
            for runtime in [
                ContainerRuntime::Docker,
                ContainerRuntime::Containerd,
                ContainerRuntime::CriO,
            ] {
                let mut p = platform.clone();
                p.cluster.driver = driver;
                p.cluster.container_runtime = runtime;
                for release in plan(&p, &Facts::default()) {
                    checked.insert(release.kind);
                    let key = (release.chart.clone(), release.version.clone());
                    let Some(chart) = charts.get(&key) else {
                        problems.push(format!(
                            "{}: no values of chart {} {} are known: add its fixture \
                             (tests/fixtures/upstream-charts/README.md)",
                            file.display(),
                            key.0,
                            key.1
                        ));
                        continue;
                    };
                    let context = format!(
                        "{} (driver {driver:?}): {} {}",
                        file.display(),
                        chart.name,
                        chart.version
                    );
                    problems.extend(check(&charts, chart, &release.values, &[], &context));
                }
            }
        }
    }
    assert_eq!(
        checked.into_iter().collect::<Vec<_>>(),
        Kind::ALL,
        "every addon's values are checked"
    );
    report(problems);
}

#[test]
fn stand_in_charts_have_the_pinned_versions_and_upstream_values_keys() {
    let charts = charts();
    let customer = &platforms()[0].1;
    let dir = root().join("tests/fixtures/charts");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/charts") {
        let chart_dir = entry.expect("directory entry").path();
        if !chart_dir.join("Chart.yaml").is_file() {
            continue;
        }
        let read = |name: &str| -> serde_yaml::Mapping {
            let text = std::fs::read_to_string(chart_dir.join(name)).expect(name);
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let meta = values::from_yaml(&read("Chart.yaml"));
        let field = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
        let (name, version) = (field("name"), field("version"));
        let context = format!("tests/fixtures/charts/{name} {version}");
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.chart() == name) else {
            problems.push(format!("{context}: not the chart of any addon"));
            continue;
        };
        seen.insert(kind);
        let pin = kind.config(&customer.addons).map(|a| a.version.as_str());
        if pin != Some(version.as_str()) {
            problems.push(format!("{context}: platform.yaml pins {pin:?}"));
        }
        let Some(chart) = charts.get(&(name.clone(), version.clone())) else {
            problems.push(format!("{context}: no upstream values are known"));
            continue;
        };
        if let Some(app) = &chart.app_version
            && *app != field("appVersion")
        {
            problems.push(format!(
                "{context}: appVersion {}, upstream {app}",
                field("appVersion")
            ));
        }
        let skip: Vec<&str> = TEST_ONLY
            .iter()
            .filter(|(c, _)| *c == name)
            .map(|(_, p)| *p)
            .collect();
        let stand_in = values::from_yaml(&read("values.yaml"));
        problems.extend(check(&charts, chart, &stand_in, &skip, &context));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), Kind::ALL);
    report(problems);
}

/// The check itself, on the real fixtures: what it refuses and what it lets through.
#[test]
fn the_check_finds_misspelt_keys_wrong_shapes_and_keys_below_values() {
    let charts = charts();
    let chart = |name: &str, version: &str| &charts[&(name.to_string(), version.to_string())];
    let kps = chart("kube-prometheus-stack", "81.4.3");
    let why =
        |chart: &Chart, path: &str, value: Value| wrong(&charts, chart, &split_path(path), &value);
    assert_eq!(
        why(kps, "prometheus.prometheusSpec.retention", "30d".into()),
        None
    );
    assert_eq!(
        why(kps, "prometheus.prometheusSpec.retension", "30d".into()).as_deref(),
        Some("no key `retension` under `prometheus.prometheusSpec`")
    );
    // In both the parent's `grafana:` section and the subchart's values; only in the subchart's.
    assert_eq!(why(kps, "grafana.admin.existingSecret", "x".into()), None);
    assert_eq!(why(kps, "grafana.persistence.enabled", true.into()), None);
    // Grafana 10.5.15 only documents adminPassword in a comment (the stand-in chart had it as a
    // value, as kube-prometheus-stack releases before 81 did).
    assert_eq!(
        why(kps, "grafana.adminPassword", "x".into()).as_deref(),
        Some(
            "no key `adminPassword` under `grafana`; nor in grafana 10.5.15: no key \
             `adminPassword` at the top level"
        )
    );
    // A LabelSelector is `{}` upstream: no key below it is known.
    assert_eq!(
        why(
            kps,
            "prometheus.prometheusSpec.serviceMonitorSelector.matchLabels.team",
            "a".into()
        )
        .as_deref(),
        Some(
            "`prometheus.prometheusSpec.serviceMonitorSelector` is an empty mapping upstream, with no key `matchLabels`"
        )
    );
    assert_eq!(
        why(
            kps,
            "prometheus.prometheusSpec.serviceMonitorSelector",
            serde_json::json!({})
        ),
        None
    );
    let ingress = chart("ingress-nginx", "4.14.1");
    assert_eq!(
        why(ingress, "controller.hostPort", true.into()).as_deref(),
        Some("upstream it is a mapping, here a bool")
    );
    assert_eq!(why(ingress, "controller.hostPort", Value::Null), None);
    let argocd = chart("argo-cd", "9.4.17");
    assert_eq!(
        why(argocd, "configs.params.server\\.insecure", true.into()),
        None
    );
    assert_eq!(
        why(argocd, "dex.enabeld", false.into()).as_deref(),
        Some("no key `enabeld` under `dex`")
    );
    let metrics = chart("metrics-server", "3.13.0");
    assert_eq!(
        why(metrics, "args", "--kubelet-insecure-tls".into()).as_deref(),
        Some("upstream it is a list, here a string")
    );
    assert_eq!(split_path("a.b\\.c.d\\\\"), ["a", "b.c", "d\\"]);
}
