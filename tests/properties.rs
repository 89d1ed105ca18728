//! Property test of the configuration front door (issue 11): the reference platform.yaml files,
//! mutated structurally (keys deleted, values of other types, non-ASCII text, items
//! duplicated) and textually (truncated, characters inserted, lines deleted or repeated), a few
//! thousand cases per run. For every case: no panic; the file is accepted or refused as a
//! configuration error (exit 2) whose every problem names a line; and whatever `render`
//! accepts, `lint` accepts (no error finding in the tree it renders).
//!
//! In process, through the library `platformctl` is built on: the same `config::parse`,
//! `render::render` and `lint::lint_tree` the commands call, without a process per case.

use std::path::Path;
use std::sync::OnceLock;

use platformctl::{config, lint, render};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use serde_yaml::Value;

const REFERENCES: [&str; 2] = [
    include_str!("../platform.yaml"),
    include_str!("../examples/microservices/platform.yaml"),
];

fn templates() -> &'static render::Templates {
    static TEMPLATES: OnceLock<render::Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| render::Templates::load(None).expect("embedded templates"))
}

/// The property, for one source text.
fn holds(source: &str) -> Result<(), TestCaseError> {
    match config::parse(Path::new("platform.yaml"), source) {
        Err(config::Error::Invalid(problems)) => {
            prop_assert!(!problems.is_empty(), "refused without a problem");
            for p in &problems {
                prop_assert!(
                    p.line.is_some() && p.column.is_some(),
                    "a problem without a location: {p}\n--- source\n{source}"
                );
            }
        }
        Err(other) => {
            prop_assert!(false, "not a configuration error (exit 2): {other}");
        }
        Ok(platform) => {
            let tree = render::render(&platform, templates());
            prop_assert!(
                tree.is_ok(),
                "render failed: {:?}\n--- source\n{source}",
                tree.err()
            );
            let tree = tree.expect("checked");
            let summary = lint::lint_tree(&tree, &platform);
            let errors: Vec<String> = summary
                .findings
                .iter()
                .filter(|f| f.is_error())
                .map(|f| format!("{}: {}: [{}] {}", f.file, f.object, f.rule, f.message))
                .collect();
            prop_assert!(
                errors.is_empty(),
                "render accepted what lint rejects:\n{}\n--- source\n{source}",
                errors.join("\n")
            );
        }
    }
    Ok(())
}

/// Values of every YAML type, and the strings that trip parsers and YAML readers.
fn value() -> impl Strategy<Value = Value> {
    let tricky = prop::sample::select(vec![
        "",
        "é",
        "\u{feff}",
        "30é",
        "30d\u{feff}",
        "0s",
        "00s",
        "123",
        "true",
        "on",
        "no",
        "y",
        "null",
        "~",
        "0x1F",
        "1e9",
        "-1",
        ".nan",
        "-",
        "a b",
        "🦀",
        "sha256:abc",
        "1Pi",
        "30",
        "latest",
        "default",
        "argocd",
        "kube-system",
        "customer-api-canary",
        "/",
        "../x",
    ]);
    prop_oneof![
        tricky.prop_map(|s| Value::String(s.to_string())),
        "[a-z0-9é.:/-]{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        (0u64..5_000_000_000).prop_map(|n| Value::Number(n.into())),
        prop::sample::select(vec![
            0.0,
            -1.5,
            0.3,
            99.99,
            100.0,
            1e300,
            f64::NAN,
            f64::INFINITY
        ])
        .prop_map(|f| Value::Number(f.into())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Sequence(vec![])),
        Just(Value::Mapping(Default::default())),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Remove the n-th node (a mapping entry or a sequence item).
    Delete(usize),
    /// Replace the n-th node's value.
    Replace(usize, Value),
    /// Repeat the n-th sequence item.
    Repeat(usize),
    /// Add an unknown key to the n-th mapping.
    Unknown(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<usize>().prop_map(Op::Delete),
        (any::<usize>(), value()).prop_map(|(n, v)| Op::Replace(n, v)),
        (any::<usize>(), value()).prop_map(|(n, v)| Op::Replace(n, v)),
        any::<usize>().prop_map(Op::Repeat),
        any::<usize>().prop_map(Op::Unknown),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Key(usize),
    Item(usize),
}

/// Every node's path, parents before children.
fn paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Mapping(m) => {
            for (i, (_, child)) in m.iter().enumerate() {
                at.push(Step::Key(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, child) in s.iter().enumerate() {
                at.push(Step::Item(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match (v, first) {
        (Value::Mapping(m), Step::Key(i)) => m.values_mut().nth(*i)?,
        (Value::Sequence(s), Step::Item(i)) => s.get_mut(*i)?,
        _ => return None,
    };
    node(child, rest)
}

fn apply(doc: &mut Value, op: &Op) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |n: usize| all[n % all.len()].clone();
    match op {
        Op::Delete(n) => {
            let path = pick(*n);
            let (last, parent) = path.split_last().expect("non-empty path");
            match (node(doc, parent), last) {
                (Some(Value::Mapping(m)), Step::Key(i)) => {
                    let key = m.keys().nth(*i).cloned();
                    if let Some(k) = key {
                        m.remove(&k);
                    }
                }
                (Some(Value::Sequence(s)), Step::Item(i)) if *i < s.len() => {
                    s.remove(*i);
                }
                _ => {}
            }
        }
        Op::Replace(n, v) => {
            if let Some(target) = node(doc, &pick(*n)) {
                *target = v.clone();
            }
        }
        Op::Repeat(n) => {
            let path = pick(*n);
            let (last, parent) = path.split_last().expect("non-empty path");
            if let (Some(Value::Sequence(s)), Step::Item(i)) = (node(doc, parent), last)
                && let Some(item) = s.get(*i).cloned()
            {
                s.push(item);
            }
        }
        Op::Unknown(n) => {
            if let Some(Value::Mapping(m)) = node(doc, &pick(*n)) {
                m.insert("surplus".into(), Value::Bool(true));
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Insert(usize, char),
    DeleteLine(usize),
    RepeatLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let chars = prop::sample::select(vec![
        'é', '\u{feff}', '🦀', '\t', '"', '\'', '[', '{', ':', '#', '&', '*', '\0', '-',
    ]);
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), chars).prop_map(|(n, c)| Edit::Insert(n, c)),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::RepeatLine),
    ]
}

/// The char boundary nearest below `n % len`.
fn boundary(text: &str, n: usize) -> usize {
    let mut at = n % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply_edit(text: &str, edit: &Edit) -> String {
    match edit {
        Edit::Truncate(n) => text[..boundary(text, *n)].to_string(),
        Edit::Insert(n, c) => {
            let at = boundary(text, *n);
            format!("{}{c}{}", &text[..at], &text[at..])
        }
        Edit::DeleteLine(n) | Edit::RepeatLine(n) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = n % lines.len();
            if matches!(edit, Edit::DeleteLine(_)) {
                lines.remove(i);
            } else {
                lines.insert(i, lines[i]);
            }
            lines.join("\n") + "\n"
        }
    }
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // A failure prints its case; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn structurally_mutated_platforms_are_accepted_whole_or_refused_with_a_location(
        which in 0usize..2,
        ops in prop::collection::vec(op(), 1..4),
    ) {
        let mut doc: Value = serde_yaml::from_str(REFERENCES[which]).expect("reference parses");
        for op in &ops {
            apply(&mut doc, op);
        }
        let source = serde_yaml::to_string(&doc).expect("serialises");
        holds(&source)?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn textually_mutated_platforms_are_accepted_whole_or_refused_with_a_location(
        which in 0usize..2,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let mut text = REFERENCES[which].to_string();
        for e in &edits {
            text = apply_edit(&text, e);
        }
        holds(&text)?;
    }
}

#[test]
fn the_references_themselves_hold() {
    for source in REFERENCES {
        holds(source).expect("a reference platform holds");
    }
}
