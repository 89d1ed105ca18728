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

#[derive(Debug, Default)]
pub struct Index {
    positions: HashMap<String, Position>,
}

impl Index {
    /// Indexes the first document of `source`. A source that fails to scan yields an empty
    /// index: the deserialiser reports that error with its own position.
    pub fn build(source: &str) -> Index {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(source).load(&mut builder, false);
        Index {
            positions: builder.positions,
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
