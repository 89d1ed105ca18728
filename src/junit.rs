//! JUnit XML, as CI systems read it (the Jenkins/Surefire schema GitHub Actions, GitLab and
//! Jenkins accept): one `<testsuite>` per command run, one `<testcase>` per check, a
//! `<failure>` or `<skipped>` with the check's message. Written atomically.

use std::fmt::Write as _;
use std::path::Path;

/// What became of one test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Groups cases in CI's view: the check's category.
    pub classname: String,
    pub name: String,
    /// Seconds.
    pub time: f64,
    pub outcome: Outcome,
    /// Shown beside a passing case too.
    pub output: String,
}

/// The document for a suite `name` of `cases` that took `time` seconds.
pub fn document(name: &str, time: f64, cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" skipped=\"{3}\" time=\"{4:.3}\">",
        escape(name),
        cases.len(),
        failures,
        skipped,
        time
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" skipped=\"{3}\" time=\"{4:.3}\">",
        escape(name),
        cases.len(),
        failures,
        skipped,
        time
    );
    for c in cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&c.classname),
            escape(&c.name),
            c.time
        );
        let body = match &c.outcome {
            Outcome::Passed => String::new(),
            Outcome::Failed(m) => format!(
                "      <failure message=\"{}\" type=\"failed\">{}</failure>\n",
                escape(first_line(m)),
                escape(m)
            ),
            Outcome::Skipped(m) => {
                format!("      <skipped message=\"{}\"/>\n", escape(first_line(m)))
            }
        };
        let output = if c.output.is_empty() {
            String::new()
        } else {
            format!("      <system-out>{}</system-out>\n", escape(&c.output))
        };
        if body.is_empty() && output.is_empty() {
            out.push_str("/>\n");
        } else {
            let _ = write!(out, ">\n{body}{output}    </testcase>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Writes the document to `path` atomically (a failed write leaves the old file).
pub fn write(path: &Path, name: &str, time: f64, cases: &[Case]) -> std::io::Result<()> {
    crate::render::write_atomic(path, document(name, time, cases).as_bytes())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// XML text and attribute escaping; characters XML 1.0 cannot hold become U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_with_every_outcome() {
        let case = |name: &str, outcome| Case {
            classname: "scrape".into(),
            name: name.into(),
            time: 0.25,
            outcome,
            output: String::new(),
        };
        let doc = document(
            "platformctl validate",
            1.5,
            &[
                case("scrape/prod/a", Outcome::Passed),
                case(
                    "scrape/prod/<b>",
                    Outcome::Failed("0/3 up & \"down\"\nsecond line".into()),
                ),
                case("slo/x", Outcome::Skipped("no data\u{1}".into())),
            ],
        );
        assert!(doc.contains(
            r#"<testsuite name="platformctl validate" tests="3" failures="1" errors="0" skipped="1" time="1.500">"#
        ));
        assert!(
            doc.contains(r#"<testcase classname="scrape" name="scrape/prod/a" time="0.250"/>"#)
        );
        assert!(doc.contains(r#"name="scrape/prod/&lt;b&gt;""#));
        assert!(doc.contains(
            r#"<failure message="0/3 up &amp; &quot;down&quot;" type="failed">0/3 up &amp; &quot;down&quot;&#10;second line</failure>"#
        ));
        assert!(doc.contains("<skipped message=\"no data\u{FFFD}\"/>"));
    }
}
