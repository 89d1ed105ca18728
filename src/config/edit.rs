//! In-place edits of platform.yaml: a scalar value replaced where it stands, everything else —
//! comments, key order, flow or block style, the other values' quoting — byte for byte as the
//! user wrote it. Used by `set-image` and `promote`, which change one tag each.
//!
//! Only scalars that exist are replaced (every environment has a tag: validation sees to it);
//! this module does not add or remove keys.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`{0}` is not a scalar value in the file")]
    NotFound(String),
    #[error("`{0}` spans lines: edit it by hand")]
    Multiline(String),
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

/// Finds the value scalar at one key path (`services[0].tags.dev`, as `locate` spells paths).
struct Finder<'a> {
    want: &'a str,
    stack: Vec<(Frame, String)>,
    found: Option<(Marker, TScalarStyle)>,
}

impl Finder<'_> {
    fn enter(&mut self) -> Option<String> {
        let (frame, base) = self.stack.last_mut()?;
        Some(match frame {
            Frame::Map { key } => {
                let k = key.take()?;
                if base.is_empty() {
                    k
                } else {
                    format!("{base}.{k}")
                }
            }
            Frame::Seq { next } => {
                *next += 1;
                format!("{base}[{}]", *next - 1)
            }
        })
    }
}

impl MarkedEventReceiver for Finder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    String::new()
                } else {
                    self.enter().unwrap_or_default()
                };
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                };
                self.stack.push((frame, path));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(value, style, ..) => match self.stack.last_mut() {
                Some((Frame::Map { key }, _)) if key.is_none() => *key = Some(value),
                _ => {
                    if self.enter().as_deref() == Some(self.want) && self.found.is_none() {
                        self.found = Some((mark, style));
                    }
                }
            },
            _ => {}
        }
    }
}

/// Byte range of the scalar at `path` in `source` (quotes included).
fn span(source: &str, path: &str) -> Result<(usize, usize, TScalarStyle), Error> {
    let mut finder = Finder {
        want: path,
        stack: Vec::new(),
        found: None,
    };
    let mut parser = Parser::new_from_str(source);
    while let Ok((ev, mark)) = parser.next_token() {
        if matches!(ev, Event::StreamEnd | Event::DocumentEnd) {
            break;
        }
        finder.on_event(ev, mark);
    }
    let (mark, style) = finder
        .found
        .ok_or_else(|| Error::NotFound(path.to_string()))?;
    // The parser counts characters; slicing needs bytes.
    let start = source
        .char_indices()
        .nth(mark.index())
        .map_or(source.len(), |(b, _)| b);
    let rest = &source[start..];
    let len = match style {
        TScalarStyle::SingleQuoted => {
            let bytes = rest.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i) {
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break i + 1,
                    Some(b'\n') | None => return Err(Error::Multiline(path.to_string())),
                    Some(_) => i += 1,
                }
            }
        }
        TScalarStyle::DoubleQuoted => {
            let bytes = rest.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') => break i + 1,
                    Some(b'\n') | None => return Err(Error::Multiline(path.to_string())),
                    Some(_) => i += 1,
                }
            }
        }
        TScalarStyle::Plain => {
            // A plain scalar ends at the line's end, a comment, or (in a flow collection) at
            // `,`, `}` or `]`; a valid tag holds none of them.
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                let comment = c == '#' && rest[..i].ends_with([' ', '\t']);
                if c == '\n' || c == ',' || c == '}' || c == ']' || comment {
                    end = i;
                    break;
                }
            }
            rest[..end].trim_end().len()
        }
        _ => return Err(Error::Multiline(path.to_string())),
    };
    Ok((start, start + len, style))
}

/// Whether `v` must be quoted to stay the string it is (YAML 1.1 and 1.2 would read a number,
/// a boolean or null, or it holds an indicator).
fn needs_quotes(v: &str) -> bool {
    let keyword = matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ""
    );
    let numeric = v
        .chars()
        .all(|c| c.is_ascii_digit() || "._+-eE".contains(c))
        && v.chars().any(|c| c.is_ascii_digit())
        && v.parse::<f64>().is_ok()
        || v.chars().all(|c| c.is_ascii_digit() || c == '.') && v.matches('.').count() <= 1;
    let plain = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !v.starts_with(['-', '.']);
    keyword || numeric || !plain
}

/// `source` with the scalar at `path` replaced by `value`, in the scalar's own quoting (plain
/// values that would not read back as this string get double quotes). Unchanged when it already
/// holds `value`.
pub fn set(source: &str, path: &str, value: &str) -> Result<String, Error> {
    let (start, end, style) = span(source, path)?;
    let written = match style {
        TScalarStyle::SingleQuoted => format!("'{}'", value.replace('\'', "''")),
        TScalarStyle::DoubleQuoted => serde_json::to_string(value).unwrap_or_default(),
        _ if needs_quotes(value) => serde_json::to_string(value).unwrap_or_default(),
        _ => value.to_string(),
    };
    let mut out = String::with_capacity(source.len() + written.len());
    out.push_str(&source[..start]);
    out.push_str(&written);
    out.push_str(&source[end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "\
# the platform
services:
  - name: api   # first
    tags:
      dev: 0.1.0    # bumped by CI
      prod: '0.1.0'
  - name: web
    tags: { dev: \"1.0.0\", prod: 1.0.0 }
";

    #[test]
    fn a_tag_changes_where_it_stands_and_nothing_else_does() {
        let out = set(BLOCK, "services[0].tags.dev", "0.2.0").expect("edited");
        assert_eq!(
            out,
            BLOCK.replace("dev: 0.1.0    #", "dev: 0.2.0    #"),
            "comment, spacing and order kept"
        );
        let out = set(BLOCK, "services[0].tags.prod", "0.2.0").expect("edited");
        assert!(out.contains("      prod: '0.2.0'\n"), "{out}");
        let out = set(BLOCK, "services[1].tags.prod", "1.1.0").expect("edited");
        assert!(
            out.contains("tags: { dev: \"1.0.0\", prod: 1.1.0 }\n"),
            "{out}"
        );
        let out = set(BLOCK, "services[1].tags.dev", "2.0.0-rc.1").expect("edited");
        assert!(out.contains("{ dev: \"2.0.0-rc.1\", prod"), "{out}");
    }

    #[test]
    fn values_that_would_read_back_as_another_type_are_quoted() {
        for (value, written) in [
            ("1.0", "\"1.0\""),
            ("2", "\"2\""),
            ("on", "\"on\""),
            ("1.2.3", "1.2.3"),
            ("v1.2.3", "v1.2.3"),
            ("1.2.0@sha256:abc", "\"1.2.0@sha256:abc\""),
        ] {
            let out = set(BLOCK, "services[0].tags.dev", value).expect("edited");
            assert!(
                out.contains(&format!("dev: {written}    #")),
                "{value}: {out}"
            );
            let back: serde_yaml::Value = serde_yaml::from_str(&out).expect("still YAML");
            assert_eq!(back["services"][0]["tags"]["dev"].as_str(), Some(value));
        }
    }

    #[test]
    fn a_path_that_is_not_a_scalar_is_refused() {
        assert_eq!(
            set(BLOCK, "services[0].tags.qa", "1"),
            Err(Error::NotFound("services[0].tags.qa".into()))
        );
        assert!(set(BLOCK, "services[0].tags", "1").is_err());
    }

    #[test]
    fn multibyte_text_before_the_value_does_not_shift_it() {
        let src = "# café ☕\nservices:\n  - name: api\n    tags: {dev: 0.1.0}\n";
        let out = set(src, "services[0].tags.dev", "0.2.0").expect("edited");
        assert_eq!(out, src.replace("0.1.0", "0.2.0"));
    }
}
