//! Kubernetes manifests as platformctl applies them: multi-document YAML parsed into objects that
//! remember where they came from, keyed by identity, in the deterministic apply order
//! (namespaces, then CRDs, then by kind, namespace and name).
//!
//! This module only parses and orders; it never talks to a cluster.

use std::fmt;

use serde_json::Value;

/// One object to apply, and the file (and document) it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `path` or `path#N` for the N-th document (from 1) of a multi-document file.
    pub source: String,
    pub object: Value,
}

/// What names an object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Key {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} `{}/{}`", self.kind, ns, self.name),
            None => write!(f, "{} `{}`", self.kind, self.name),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct Error {
    pub source_name: String,
    pub message: String,
}

impl Manifest {
    pub fn new(source: impl Into<String>, object: Value) -> Result<Self, Error> {
        let m = Manifest {
            source: source.into(),
            object,
        };
        for field in ["apiVersion", "kind"] {
            if m.object[field].as_str().is_none_or(str::is_empty) {
                return Err(m.error(format!("the object has no `{field}`")));
            }
        }
        if m.name().is_empty() {
            return Err(m.error("the object has no `metadata.name`".to_string()));
        }
        Ok(m)
    }

    fn error(&self, message: String) -> Error {
        Error {
            source_name: self.source.clone(),
            message,
        }
    }

    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
    }

    /// `(group, version)` of the object's `apiVersion`; the core group is `""`.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version().rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version()),
        }
    }

    pub fn key(&self) -> Key {
        Key {
            api_version: self.api_version().to_string(),
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    pub fn is_namespace(&self) -> bool {
        self.api_version() == "v1" && self.kind() == "Namespace"
    }

    pub fn is_crd(&self) -> bool {
        self.group_version().0 == "apiextensions.k8s.io"
            && self.kind() == "CustomResourceDefinition"
    }

    /// 0 for namespaces, 1 for CRDs, 2 for everything else: the apply phases.
    pub fn tier(&self) -> u8 {
        if self.is_namespace() {
            0
        } else if self.is_crd() {
            1
        } else {
            2
        }
    }
}

/// Parses every document of a YAML file; empty documents (a lone `---`) are skipped.
pub fn parse(source: &str, text: &str) -> Result<Vec<Manifest>, Error> {
    use serde::Deserialize;
    let mut out = Vec::new();
    let docs: Vec<_> = serde_yaml::Deserializer::from_str(text).collect();
    let many = docs.len() > 1;
    for (i, doc) in docs.into_iter().enumerate() {
        let name = if many {
            format!("{source}#{}", i + 1)
        } else {
            source.to_string()
        };
        let value = Value::deserialize(doc).map_err(|e| Error {
            source_name: name.clone(),
            message: format!("not valid YAML: {e}"),
        })?;
        match value {
            Value::Null => continue,
            Value::Object(_) => out.push(Manifest::new(name, value)?),
            _ => {
                return Err(Error {
                    source_name: name,
                    message: "a document must be a Kubernetes object (a mapping)".to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Sorts into apply order and refuses two objects with the same identity.
pub fn order(mut manifests: Vec<Manifest>) -> Result<Vec<Manifest>, Error> {
    manifests.sort_by_key(|m| (m.tier(), m.key()));
    for pair in manifests.windows(2) {
        if pair[0].key() == pair[1].key() {
            return Err(Error {
                source_name: pair[1].source.clone(),
                message: format!("{} is also defined in {}", pair[1].key(), pair[0].source),
            });
        }
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_with_their_sources() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n";
        let ms = parse("f.yaml", text).expect("valid");
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].source, "f.yaml#1");
        assert_eq!(ms[1].source, "f.yaml#3");
        assert_eq!(ms[1].group_version(), ("apps", "v1"));
        assert_eq!(ms[0].group_version(), ("", "v1"));
        assert_eq!(ms[0].key().to_string(), "ConfigMap `x/a`");
    }

    #[test]
    fn refuses_objects_without_identity() {
        let err = parse("f.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
            .expect_err("no name");
        assert_eq!(err.to_string(), "f.yaml: the object has no `metadata.name`");
        let err = parse("g.yaml", "- 1\n").expect_err("a list");
        assert!(err.to_string().starts_with("g.yaml: a document must be"));
    }

    #[test]
    fn orders_namespaces_then_crds_then_by_kind() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: m, namespace: n}\n";
        let ms = order(parse("f.yaml", text).expect("valid")).expect("distinct");
        let kinds: Vec<_> = ms.iter().map(Manifest::kind).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ConfigMap",
                "Service"
            ]
        );
    }

    #[test]
    fn refuses_duplicates() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m, namespace: n}\n";
        let mut ms = parse("a.yaml", doc).expect("valid");
        ms.extend(parse("b.yaml", doc).expect("valid"));
        let err = order(ms).expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "b.yaml: ConfigMap `n/m` is also defined in a.yaml"
        );
    }
}
