//! `driver: existing`: any cluster a kubeconfig reaches.
//!
//! Reads the kubeconfig the way kubectl does (`KUBECONFIG`, a list of files merged, else
//! `~/.kube/config`), checks the requested context is in it (or that a current context is
//! set) and returns a [`Target`]. It does not contact the cluster.

use std::path::PathBuf;

use ::kube::config::Kubeconfig;

use super::{Driver, Error, Target};

/// Resolves `context` (or the current context) against the user's kubeconfig.
pub fn resolve(context: Option<&str>) -> Result<Target, Error> {
    let kubeconfig = read(&default_paths())?;
    let context = select(&kubeconfig, context)?;
    Ok(Target {
        kubeconfig: None,
        context: Some(context),
        driver: Driver::Existing,
    })
}

/// The kubeconfig files kubectl reads: those listed in `KUBECONFIG`, else `~/.kube/config`.
pub fn default_paths() -> Vec<PathBuf> {
    let listed: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    std::env::home_dir()
        .map(|h| vec![h.join(".kube").join("config")])
        .unwrap_or_default()
}

/// Reads and merges `paths` in order, as kubectl does (the first file to set a value wins).
pub fn read(paths: &[PathBuf]) -> Result<Kubeconfig, Error> {
    if paths.is_empty() {
        return Err(Error::Kubeconfig(::kube::config::KubeconfigError::FindPath));
    }
    paths
        .iter()
        .try_fold(Kubeconfig::default(), |merged, p| {
            Kubeconfig::read_from(p).and_then(|k| merged.merge(k))
        })
        .map_err(Error::Kubeconfig)
}

/// The context to use: `requested` when the kubeconfig has it, else its current context.
pub fn select(kubeconfig: &Kubeconfig, requested: Option<&str>) -> Result<String, Error> {
    let available = || -> Vec<String> {
        let mut names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names
    };
    match requested {
        Some(name) if kubeconfig.contexts.iter().any(|c| c.name == name) => Ok(name.to_string()),
        Some(name) => Err(Error::ContextNotFound {
            context: name.to_string(),
            available: available(),
        }),
        None => match &kubeconfig.current_context {
            Some(current) if kubeconfig.contexts.iter().any(|c| &c.name == current) => {
                Ok(current.clone())
            }
            Some(current) => Err(Error::ContextNotFound {
                context: current.clone(),
                available: available(),
            }),
            None => Err(Error::NoCurrentContext {
                available: available(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: kind-dev
clusters:
  - name: dev
    cluster: { server: "https://127.0.0.1:6443" }
contexts:
  - name: kind-dev
    context: { cluster: dev, user: dev }
  - name: customer-platform
    context: { cluster: dev, user: dev }
users:
  - name: dev
    user: { token: t }
"#;

    fn config(text: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(text).expect("valid kubeconfig")
    }

    #[test]
    fn requested_context_is_used_when_present() {
        let k = config(KUBECONFIG);
        assert_eq!(
            select(&k, Some("customer-platform")).expect("found"),
            "customer-platform"
        );
        assert_eq!(select(&k, None).expect("current"), "kind-dev");
    }

    #[test]
    fn missing_context_lists_the_available_ones_and_is_a_usage_error() {
        let err = select(&config(KUBECONFIG), Some("prod")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "context `prod` is not in the kubeconfig (available: customer-platform, kind-dev)"
        );
        assert!(err.is_usage());
        assert!(err.hint().expect("hint").contains("--context"));
    }

    #[test]
    fn no_current_context_and_stale_current_context() {
        let none = config(&KUBECONFIG.replace("current-context: kind-dev\n", ""));
        let err = select(&none, None).expect_err("no current");
        assert!(matches!(err, Error::NoCurrentContext { .. }), "{err}");
        let stale =
            config(&KUBECONFIG.replace("current-context: kind-dev", "current-context: gone"));
        let err = select(&stale, None).expect_err("stale");
        assert_eq!(
            err.to_string(),
            "context `gone` is not in the kubeconfig (available: customer-platform, kind-dev)"
        );
        let empty = select(&Kubeconfig::default(), Some("x")).expect_err("empty");
        assert_eq!(
            empty.to_string(),
            "context `x` is not in the kubeconfig (it has no contexts)"
        );
    }
}
