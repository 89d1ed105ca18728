//! Readiness predicates on YAML fixtures (`tests/fixtures/readiness/*.yaml`): each fixture is one
//! live object, its first line says what the predicate must answer
//! (`# expect: Ready`, `# expect: Waiting: <message>`, `Paused: …`, `Failed: …` or `None`).

use std::path::Path;

use platformctl::ready::{self, Readiness};

fn render(r: Option<Readiness>) -> String {
    match r {
        None => "None".into(),
        Some(Readiness::Ready) => "Ready".into(),
        Some(Readiness::Waiting(m)) => format!("Waiting: {m}"),
        Some(Readiness::Paused(m)) => format!("Paused: {m}"),
        Some(Readiness::Failed(m)) => format!("Failed: {m}"),
    }
}

#[test]
fn every_fixture_gets_its_expected_readiness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readiness");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for path in &entries {
        let text = std::fs::read_to_string(path).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no '# expect:' first line", path.display()));
        let object: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
        kinds.insert(object["kind"].as_str().unwrap_or_default().to_string());
        let got = render(ready::of(&object));
        if got != expect {
            failures.push(format!(
                "{}:\n  expected {expect}\n  got      {got}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let covered: Vec<_> = kinds.iter().map(String::as_str).collect();
    assert_eq!(
        covered,
        [
            "APIService",
            "Application",
            "ConfigMap",
            "CustomResourceDefinition",
            "DaemonSet",
            "Deployment",
            "Endpoints",
            "Job",
            "Rollout",
            "StatefulSet"
        ],
        "every kind with a predicate has fixtures"
    );
    assert!(entries.len() >= 30, "{} fixtures", entries.len());
}
