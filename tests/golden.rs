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
