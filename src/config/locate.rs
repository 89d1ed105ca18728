//! Maps key paths (`services[0].strategy.canary.steps[1]`) to their line and column in a YAML
//! source, so that errors found after deserialisation can still point at the text.
//!
//! The path syntax is the one `serde_path_to_error` prints. This module only indexes; it does
//! not interpret values.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Deepest nesting of mappings and sequences a platform.yaml may have. Far more than any
/// platform needs (Helm values included), and it keeps every later pass linear: each level
/// lengthens every key path below it.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
pub struct Index {
    positions: HashMap<String, Position>,
    /// Where the source first nests deeper than [`MAX_DEPTH`]; nothing past it is indexed.
    pub too_deep: Option<Position>,
}

impl Index {
    /// Indexes the first document of `source`. A source that fails to scan yields what was
    /// indexed before the error: the deserialiser reports that error with its own position.
    pub fn build(source: &str) -> Index {
        // The YAML scanners re-scan open flow collections (serde_yaml's took 10 s on 32k `[`):
        // too deep a flow nesting is found by one linear pass first.
        if let Some(pos) = flow_too_deep(source) {
            return Index {
                positions: HashMap::new(),
                too_deep: Some(pos),
            };
        }
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(source);
        let mut too_deep = None;
        while let Ok((ev, mark)) = parser.next_token() {
            match ev {
                Event::StreamEnd | Event::DocumentEnd => break,
                Event::MappingStart(..) | Event::SequenceStart(..)
                    if builder.stack.len() >= MAX_DEPTH =>
                {
                    too_deep = Some(Builder::position(mark));
                    break;
                }
                ev => builder.on_event(ev, mark),
            }
        }
        Index {
            positions: builder.positions,
            too_deep,
        }
    }

    /// Position of `path`, or of its closest indexed ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// Where flow collections (`[`, `{`) first nest deeper than [`MAX_DEPTH`], in one pass that
/// skips comments and quoted scalars. Outside any flow collection a bracket opens one only at
/// the start of a token (`a[b` is a plain scalar); inside one, every bracket is an indicator.
fn flow_too_deep(source: &str) -> Option<Position> {
    let mut depth = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut token_start = true;
    for c in source.chars() {
        column += 1;
        if c == '\n' {
            (line, column) = (line + 1, 0);
            comment = false;
            token_start = true;
            // Quoted scalars may span lines; nothing else carries over.
            continue;
        }
        if comment {
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '#' if token_start => comment = true,
            '"' | '\'' if token_start => quote = Some(c),
            '[' | '{' if token_start || depth > 0 => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(Position { line, column });
                }
            }
            ']' | '}' if depth > 0 => depth -= 1,
            _ => {}
        }
        token_start = c.is_whitespace() || (depth > 0 && "[{,:".contains(c)) || c == ':';
    }
    None
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, String)>,
    positions: HashMap<String, Position>,
    /// Collections started but not yet located: a collection is where its first scalar is
    /// (the parser's own mark for a block mapping inside a sequence points past its first key).
    pending: Vec<String>,
}

impl Builder {
    /// Path of the node that starts now, given the enclosing frame; `None` when the event is a
    /// mapping key rather than a value.
    fn enter(&mut self) -> Option<String> {
        let (frame, base) = self.stack.last_mut()?;
        match frame {
            Frame::Map { key } => key.take().map(|k| join(base, &k)),
            Frame::Seq { next } => {
                *next += 1;
                Some(format!("{base}[{}]", *next - 1))
            }
        }
    }

    fn position(mark: Marker) -> Position {
        Position {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    Some(String::new())
                } else {
                    self.enter()
                };
                let path = path.unwrap_or_default();
                self.pending.push(path.clone());
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
            Event::Scalar(value, ..) => {
                for path in self.pending.drain(..) {
                    self.positions.entry(path).or_insert(Self::position(mark));
                }
                match self.stack.last_mut() {
                    Some((Frame::Map { key }, base)) if key.is_none() => {
                        // A key: its own position is where errors about this entry point.
                        let path = join(base, &value);
                        self.positions.entry(path).or_insert(Self::position(mark));
                        *key = Some(value);
                    }
                    Some(_) => {
                        if let Some(path) = self.enter() {
                            self.positions.entry(path).or_insert(Self::position(mark));
                        }
                    }
                    None => {}
                }
            }
            Event::Alias(_) => {
                self.enter();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str =
        "a: 1\nlist:\n  - name: x\n    steps: [20, 50]\n  - name: y\nmap:\n  k.v: z\n";

    #[test]
    fn nesting_deeper_than_the_limit_stops_the_index_where_it_starts() {
        let source = format!("a: {}", "[".repeat(40_000));
        let idx = Index::build(&source);
        assert_eq!(
            idx.too_deep,
            Some(Position {
                line: 1,
                column: 4 + MAX_DEPTH
            })
        );
        let fine = format!(
            "a: {}{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(Index::build(&fine).too_deep, None);
        // Brackets in comments, quoted scalars and plain scalars open nothing.
        let text = format!(
            "a: 'x{0}'\nb: \"{0}\\\"\" # {0}\nc: d{0}\n",
            "[".repeat(100)
        );
        assert_eq!(Index::build(&text).too_deep, None);
    }

    #[test]
    fn finds_keys_items_and_flow_sequences() {
        let idx = Index::build(SRC);
        assert_eq!(idx.find("a"), Some(Position { line: 1, column: 1 }));
        assert_eq!(
            idx.find("list[0].name"),
            Some(Position { line: 3, column: 5 })
        );
        assert_eq!(
            idx.find("list[0].steps[1]"),
            Some(Position {
                line: 4,
                column: 17
            })
        );
        assert_eq!(
            idx.find("list[1].name"),
            Some(Position { line: 5, column: 5 })
        );
        assert_eq!(
            idx.find("list[1]"),
            Some(Position { line: 5, column: 5 }),
            "an item is where its first key is"
        );
        assert_eq!(idx.find("map.k.v"), Some(Position { line: 7, column: 3 }));
    }

    #[test]
    fn falls_back_to_nearest_ancestor() {
        let idx = Index::build(SRC);
        assert_eq!(
            idx.find("list[1].missing"),
            Some(Position { line: 5, column: 5 })
        );
        assert_eq!(idx.find("nothing.here"), None);
    }
}
