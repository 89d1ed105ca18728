//! PromQL as `validate` reads it, without a parser: Grafana's built-in variables filled in as
//! Grafana would for a panel, and the metric names an expression selects (to tell a typo from
//! a metric without samples yet). Prometheus itself judges whether a query is valid.

use std::time::Duration;

/// Grafana's built-in variables in a PromQL query, as Grafana fills them for a panel of the
/// range (a 15 s scrape interval: `$__rate_interval` is four of them).
pub fn grafana_variables(expr: &str, range: Duration) -> String {
    let step = (range.as_secs() / 240).max(15);
    let range_s = format!("{}s", range.as_secs());
    let interval = format!("{step}s");
    let rate_interval = format!("{}s", (step + 15).max(60));
    let mut out = expr.to_string();
    for (name, value) in [
        ("__rate_interval", rate_interval.as_str()),
        ("__interval_ms", &format!("{}", step * 1000)),
        ("__interval", interval.as_str()),
        ("__range_s", &range.as_secs().to_string()),
        ("__range", range_s.as_str()),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// The metric names a PromQL expression selects: identifiers that are not functions, keywords,
/// label names (inside `{}` or a `by (...)` list), durations or strings.
pub fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 12] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "atan2",
    ];
    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' => {
                while i < chars.len() && chars[i] != '}' {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
                if KEYWORDS.contains(&word.as_str()) {
                    label_list = matches!(
                        word.as_str(),
                        "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                    );
                    continue;
                }
                // (an aggregation may come before its `by (...)`: `sum by (le) (...)`)
                if next == Some('(') || label_list || AGGREGATIONS.contains(&word.as_str()) {
                    continue;
                }
                if !out.contains(&word) {
                    out.push(word);
                }
            }
            '(' if label_list => {
                // `by (le, pod)`: label names up to the closing parenthesis.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                label_list = false;
                i += 1;
            }
            _ => {
                if !c.is_whitespace() {
                    label_list = false;
                }
                i += 1;
            }
        }
    }
    out
}
