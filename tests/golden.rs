//! Golden trees: both reference platforms render to exactly the reviewed snapshots, the
//! committed trees are what render produces, and every rendered object passes lint (strict
//! schemas and policy).

use std::path::{Path, PathBuf};

use platformctl::render::{self, Templates};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn render_example(dir: &Path) -> render::Tree {
    let file = dir.join("platform.yaml");
    let platform = platformctl::config::load(&file).expect("reference platform.yaml is valid");
    let templates = Templates::load(None).expect("embedded templates compile");
    render::render(&platform, &templates).expect("reference platform renders")
}

fn transcript(tree: &render::Tree) -> String {
    tree.iter()
        .map(|(path, text)| format!("===== {path}\n{text}"))
        .collect()
}

fn examples() -> [(&'static str, PathBuf); 2] {
    [
        ("customer_platform", PathBuf::from(ROOT)),
        (
            "microservices",
            Path::new(ROOT).join("examples/microservices"),
        ),
    ]
}

#[test]
fn reference_trees_match_snapshots() {
    for (name, dir) in examples() {
        insta::assert_snapshot!(format!("tree_{name}"), transcript(&render_example(&dir)));
    }
}

#[test]
fn customer_platform_has_exactly_the_reference_layout() {
    let tree = render_example(Path::new(ROOT));
    let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "argocd/app-dev.yaml",
            "argocd/app-prod.yaml",
            "argocd/project-dev.yaml",
            "argocd/project-prod.yaml",
            "chaos/pod-kill.yaml",
            "envs/dev/customer-api/configmap.yaml",
            "envs/dev/customer-api/rollout.yaml",
            "envs/dev/customer-api/service.yaml",
            "envs/prod/customer-api/analysis-template.yaml",
            "envs/prod/customer-api/configmap.yaml",
            "envs/prod/customer-api/dashboard.yaml",
            "envs/prod/customer-api/hpa.yaml",
            "envs/prod/customer-api/ingress.yaml",
            "envs/prod/customer-api/rollout.yaml",
            "envs/prod/customer-api/service.yaml",
            "envs/prod/customer-api/servicemonitor.yaml",
            "envs/prod/customer-api/slo-rules.yaml",
        ]
    );
}

#[test]
fn microservices_are_blue_green_with_manual_gate_and_cpu_hpa() {
    let tree = render_example(&Path::new(ROOT).join("examples/microservices"));
    for svc in ["auth", "orders", "payments", "notifications"] {
        for env in ["dev", "prod"] {
            let rollout: serde_yaml::Value =
                serde_yaml::from_str(&tree[&format!("envs/{env}/{svc}/rollout.yaml")])
                    .expect("yaml");
            let bg = &rollout["spec"]["strategy"]["blueGreen"];
            assert_eq!(bg["activeService"].as_str(), Some(svc));
            assert_eq!(
                bg["previewService"].as_str(),
                Some(format!("{svc}-preview").as_str())
            );
            assert_eq!(
                bg["autoPromotionEnabled"].as_bool(),
                Some(false),
                "{env}/{svc}"
            );
            assert_eq!(
                bg["prePromotionAnalysis"]["templates"][0]["templateName"].as_str(),
                Some(svc),
                "{env}/{svc} gates on analysis"
            );
            let hpa: serde_yaml::Value =
                serde_yaml::from_str(&tree[&format!("envs/{env}/{svc}/hpa.yaml")]).expect("yaml");
            assert_eq!(
                hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
                Some("Rollout")
            );
            assert_eq!(
                hpa["spec"]["metrics"][0]["resource"]["name"].as_str(),
                Some("cpu")
            );
        }
    }
}

#[test]
fn committed_trees_are_up_to_date() {
    for (name, dir) in examples() {
        let tree = render_example(&dir);
        let changes = render::compare(&dir, &tree).expect("read committed tree");
        assert!(
            changes.is_empty(),
            "{name}: committed tree differs from render; run `platformctl render`:\n{}",
            render::unified_diff(&tree, &changes)
        );
    }
}

#[test]
fn every_rendered_object_passes_lint() {
    for (name, dir) in examples() {
        let platform = platformctl::config::load(&dir.join("platform.yaml")).expect("valid");
        let summary = platformctl::lint::lint(&dir, &platform).expect("lint runs");
        assert!(summary.objects > 0, "{name}: nothing linted");
        assert!(
            summary.findings.is_empty(),
            "{name}: {:#?}",
            summary.findings
        );
    }
}

#[test]
fn dashboards_are_grafana_json_with_the_five_panels() {
    let tree = render_example(Path::new(ROOT));
    let cm: serde_yaml::Value =
        serde_yaml::from_str(&tree["envs/prod/customer-api/dashboard.yaml"]).expect("yaml");
    assert_eq!(
        cm["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );
    let json = cm["data"]["customer-api-prod.json"]
        .as_str()
        .expect("dashboard json");
    let dash: serde_json::Value = serde_json::from_str(json).expect("valid json");
    let titles: Vec<&str> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in [
        "Request rate",
        "Error rate",
        "Latency p95",
        "SLO error budget left",
        "Canary vs stable",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(want)),
            "no `{want}` panel in {titles:?}"
        );
    }
}

#[test]
fn no_secret_value_is_rendered() {
    for (_, dir) in examples() {
        let tree = render_example(&dir);
        for (path, text) in &tree {
            for doc in text.split("\n---\n") {
                let v: serde_yaml::Value = serde_yaml::from_str(doc).expect("yaml");
                assert_ne!(
                    v["kind"].as_str(),
                    Some("Secret"),
                    "{path} renders a Secret"
                );
            }
        }
        let secret_refs = tree.values().filter(|t| t.contains("secretRef:")).count();
        assert!(secret_refs > 0, "secrets are referenced by name");
    }
}

/// `tests/fixtures/alerting`: customer-platform with a monitored `staging`, pages to Slack and
/// email in prod only, tickets to email everywhere with monitoring, and a receiver no route names.
fn alerting_fixture() -> (platformctl::config::Platform, render::Tree) {
    let file = Path::new(ROOT).join("tests/fixtures/alerting/platform.yaml");
    let platform = platformctl::config::load(&file).expect("the alerting fixture is valid");
    let templates = Templates::load(None).expect("embedded templates compile");
    let tree = render::render(&platform, &templates).expect("the alerting fixture renders");
    (platform, tree)
}

#[test]
fn alerting_renders_one_alertmanagerconfig_per_environment_with_monitoring_and_a_route() {
    let (platform, tree) = alerting_fixture();
    let alerting: render::Tree = tree
        .iter()
        .filter(|(path, _)| path.contains("/alerting/"))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    // dev has no monitoring: no alerts are raised there, so nothing routes them.
    assert_eq!(
        alerting.keys().collect::<Vec<_>>(),
        [
            "envs/prod/alerting/alertmanagerconfig.yaml",
            "envs/staging/alerting/alertmanagerconfig.yaml"
        ]
    );
    insta::assert_snapshot!("tree_alerting", transcript(&alerting));
    let summary = platformctl::lint::lint_tree(&tree, &platform);
    assert!(summary.findings.is_empty(), "{:#?}", summary.findings);
    let staging: serde_yaml::Value =
        serde_yaml::from_str(&tree["envs/staging/alerting/alertmanagerconfig.yaml"]).expect("yaml");
    let names: Vec<&str> = staging["spec"]["receivers"]
        .as_sequence()
        .expect("receivers")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    // Only what a route in staging names: the operator refuses an AlertmanagerConfig whose
    // Secrets are missing, and `up` creates a receiver's Secrets only where it is used.
    assert_eq!(names, ["null", "team-email"]);
}

#[test]
fn alertmanagerconfigs_reference_secrets_by_name_and_their_project_admits_them() {
    let (_, tree) = alerting_fixture();
    for env in ["prod", "staging"] {
        let text = &tree[&format!("envs/{env}/alerting/alertmanagerconfig.yaml")];
        let amc: serde_json::Value = serde_yaml::from_str(text).expect("yaml");
        for r in amc["spec"]["receivers"].as_array().expect("receivers") {
            for slack in r["slackConfigs"].as_array().into_iter().flatten() {
                assert_eq!(slack["apiURL"]["key"], "url", "{env}");
                assert!(slack["apiURL"]["name"].is_string(), "{env}");
                assert_eq!(slack["sendResolved"], true);
            }
            for email in r["emailConfigs"].as_array().into_iter().flatten() {
                assert_eq!(email["authPassword"]["key"], "password", "{env}");
                assert_eq!(email["sendResolved"], true);
            }
        }
        assert!(!text.contains("hooks.slack.com"), "no webhook URL in {env}");
        // The AppProject names no namespaced-resource whitelist (so every namespaced kind is
        // allowed, Argo CD's rule for an absent list) and does not blacklist this one.
        let project: serde_json::Value =
            serde_yaml::from_str(&tree[&format!("argocd/project-{env}.yaml")]).expect("yaml");
        assert!(project["spec"].get("namespaceResourceWhitelist").is_none());
        let blacklisted = project["spec"]["namespaceResourceBlacklist"]
            .as_array()
            .expect("blacklist")
            .iter()
            .any(|gk| gk["kind"] == "AlertmanagerConfig" || gk["kind"] == "*");
        assert!(!blacklisted, "{env}");
    }
}

/// The operator matches an AlertmanagerConfig's top route on `namespace="<its namespace>"`:
/// every series the SLO rules record, and so every burn-rate alert, must carry that label, and
/// every alert's severity must be one the routes know.
#[test]
fn slo_alerts_carry_the_namespace_and_a_severity_the_routes_match() {
    let (_, tree) = alerting_fixture();
    let rules: serde_json::Value =
        serde_yaml::from_str(&tree["envs/prod/customer-api/slo-rules.yaml"]).expect("yaml");
    let amc: serde_json::Value =
        serde_yaml::from_str(&tree["envs/prod/alerting/alertmanagerconfig.yaml"]).expect("yaml");
    let routed: Vec<&str> = amc["spec"]["route"]["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| r["matchers"][0]["value"].as_str().expect("severity"))
        .collect();
    let mut alerts = 0;
    for group in rules["spec"]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            if rule.get("record").is_some() {
                assert_eq!(rule["labels"]["namespace"], amc["metadata"]["namespace"]);
            }
            if rule.get("alert").is_some() {
                alerts += 1;
                let severity = rule["labels"]["severity"].as_str().expect("severity");
                assert!(routed.contains(&severity), "{severity} is not routed");
                // The alert's expression selects recorded series by `slo` only: it keeps
                // their labels, `namespace` among them.
                assert!(
                    rule["expr"]
                        .as_str()
                        .expect("expr")
                        .starts_with("slo:sli_error:ratio_rate"),
                    "{rule}"
                );
            }
        }
    }
    assert_eq!(alerts, 8, "four burn-rate alerts per SLI, two SLIs");
}

#[test]
fn an_unknown_field_in_a_rendered_alertmanagerconfig_is_a_lint_error() {
    let (platform, tree) = alerting_fixture();
    let path = "envs/prod/alerting/alertmanagerconfig.yaml";
    for (from, to, at) in [
        // A child route is opaque JSON to the API server: only lint (and the operator) see it.
        (
            "        continue: true\n",
            "        continu: true\n",
            "spec.route.routes[0].continu",
        ),
        (
            "          sendResolved: true\n",
            "          sendResolved: true\n          apiUrl: https://hooks.slack.com/x\n",
            "spec.receivers[1].slackConfigs[0].apiUrl",
        ),
        (
            "          requireTLS: true\n",
            "          requireTls: true\n",
            "spec.receivers[2].emailConfigs[0].requireTls",
        ),
    ] {
        let mut edited = tree.clone();
        assert!(tree[path].contains(from), "{from}");
        edited.insert(path.to_string(), tree[path].replacen(from, to, 1));
        let findings = platformctl::lint::lint_tree(&edited, &platform).findings;
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            (f.file.as_str(), f.object.as_str(), f.rule),
            (path, "AlertmanagerConfig/prod/alerting", "schema")
        );
        assert!(f.is_error());
        assert!(
            f.message.starts_with(&format!("{at}: unknown field")),
            "{}",
            f.message
        );
    }
}
