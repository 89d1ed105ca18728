//! The images: tagged with this crate's version, one Dockerfile per service building its binary
//! and running it as a non-root user, and both reference platforms pointing at them.
//! (No Docker engine runs here, so the Dockerfiles are checked for what they say, not built.)

use std::path::{Path, PathBuf};

const SERVICES: &[&str] = &[
    "customer-api",
    "auth",
    "orders",
    "payments",
    "notifications",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn platforms_point_at_this_version_of_the_images() {
    let version = env!("CARGO_PKG_VERSION");
    let mut seen = Vec::new();
    for file in ["platform.yaml", "examples/microservices/platform.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect("platform.yaml");
        let platform: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let services = platform["services"].as_sequence().expect("services");
        for service in services {
            let name = service["name"].as_str().expect("name");
            assert!(
                SERVICES.contains(&name),
                "{file}: {name} is not one of the reference services"
            );
            assert_eq!(
                service["image"].as_str(),
                Some(format!("platformctl/{name}").as_str()),
                "{file}: {name}"
            );
            let tags = service["tags"].as_mapping().expect("tags");
            for (env, tag) in tags {
                assert_eq!(
                    tag.as_str(),
                    Some(version),
                    "{file}: {name} in {env:?} is not tagged {version}"
                );
            }
            seen.push(name.to_string());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        SERVICES.len(),
        "the two platforms together run every service: {seen:?}"
    );
}

#[test]
fn every_service_has_a_multi_stage_non_root_dockerfile() {
    for service in SERVICES {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docker/{service}.Dockerfile"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stages = text
            .lines()
            .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
            .count();
        assert!(stages >= 2, "{service}: not multi-stage");
        assert!(
            text.contains(&format!("--bin {service}")),
            "{service}: does not build its binary"
        );
        let user = text
            .lines()
            .rev()
            .find(|l| l.trim_start().to_ascii_uppercase().starts_with("USER "))
            .or_else(|| text.lines().rfind(|l| l.contains(":nonroot")))
            .unwrap_or_else(|| panic!("{service}: no USER and no nonroot base image"));
        assert!(
            !user.contains("root") || user.contains("nonroot"),
            "{service}: runs as {user}"
        );
        assert!(
            text.contains("EXPOSE 8080"),
            "{service}: does not expose 8080"
        );
    }
}
