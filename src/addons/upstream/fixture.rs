//! The fixture format of tests/fixtures/upstream-charts (its README describes it): one chart at
//! one version, read into its releases and the tree of its values key paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    EmptyMap,
    List,
    Null,
    Bool,
    Number,
    String,
}

impl Leaf {
    fn parse(kind: &str) -> Option<Leaf> {
        Some(match kind {
            "{}" => Leaf::EmptyMap,
            "[]" => Leaf::List,
            "null" => Leaf::Null,
            "bool" => Leaf::Bool,
            "number" => Leaf::Number,
            "string" => Leaf::String,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Leaf::EmptyMap => "an empty mapping",
            Leaf::List => "a list",
            Leaf::Null => "null",
            Leaf::Bool => "a bool",
            Leaf::Number => "a number",
            Leaf::String => "a string",
        }
    }
}

#[derive(Debug)]
pub enum Node {
    Map(BTreeMap<String, Node>),
    Leaf(Leaf),
}

/// One chart at one version, as its fixture describes it.
#[derive(Debug)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    /// (name or alias, version) of each subchart.
    pub dependencies: Vec<(String, String)>,
    pub releases: BTreeSet<String>,
    pub values: Node,
}

/// `a.b\.c` → [`a`, `b.c`].
pub fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => keys
                .last_mut()
                .expect("keys is never empty")
                .extend(chars.next()),
            '.' => keys.push(String::new()),
            c => keys.last_mut().expect("keys is never empty").push(c),
        }
    }
    keys
}

fn insert(node: &mut Node, path: &[String], leaf: Leaf, line: &str) {
    let Node::Map(map) = node else {
        panic!("`{line}`: a prefix of it is a value, not a mapping");
    };
    match path {
        [] => panic!("`{line}`: empty key path"),
        [key] => {
            let old = map.insert(key.clone(), Node::Leaf(leaf));
            assert!(old.is_none(), "`{line}`: key path listed twice");
        }
        [key, rest @ ..] => insert(
            map.entry(key.clone())
                .or_insert_with(|| Node::Map(BTreeMap::new())),
            rest,
            leaf,
            line,
        ),
    }
}

fn parse(file: &Path, text: &str) -> Chart {
    let mut chart = Chart {
        name: String::new(),
        version: String::new(),
        app_version: None,
        dependencies: Vec::new(),
        releases: BTreeSet::new(),
        values: Node::Map(BTreeMap::new()),
    };
    let mut in_values = false;
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        if in_values {
            let leaf = Leaf::parse(word)
                .unwrap_or_else(|| panic!("{}: `{line}`: unknown kind", file.display()));
            insert(&mut chart.values, &split_path(rest), leaf, line);
            continue;
        }
        match word {
            "chart" => chart.name = rest.to_string(),
            "version" => chart.version = rest.to_string(),
            "appVersion" => chart.app_version = Some(rest.to_string()),
            "dependency" => {
                let (name, version) = rest.split_once(' ').expect("dependency NAME VERSION");
                chart
                    .dependencies
                    .push((name.to_string(), version.to_string()));
            }
            "releases" => chart
                .releases
                .extend(rest.split_whitespace().map(String::from)),
            "values" => in_values = true,
            _ => panic!("{}: unexpected line `{line}`", file.display()),
        }
    }
    assert!(
        !chart.name.is_empty() && !chart.version.is_empty() && in_values,
        "{}: not a chart fixture",
        file.display()
    );
    chart
}

/// Every fixture in `dir`, by (chart, version).
pub fn all(dir: &Path) -> BTreeMap<(String, String), Chart> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("tests/fixtures/upstream-charts") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "txt") {
            let text = std::fs::read_to_string(&path).expect("fixture");
            let chart = parse(&path, &text);
            out.insert((chart.name.clone(), chart.version.clone()), chart);
        }
    }
    out
}
