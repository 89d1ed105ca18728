//! Version numbers as tools print them: `v1.36.0`, `v3.19.0+g3d8990f`, `v3.19`,
//! `v1.32.4-dispatcher`, `Docker version 28.2.2, build e6534b4`, `podman version 5.4.0`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The first `MAJOR.MINOR[.PATCH]` in `text` (a missing patch is 0).
    pub fn find(text: &str) -> Option<Version> {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let starts_number =
                bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit());
            if starts_number && let Some(v) = parse_at(&text[i..]) {
                return Some(v);
            }
            i += 1;
        }
        None
    }
}

fn parse_at(text: &str) -> Option<Version> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let parts: Vec<&str> = text[..end].split('.').collect();
    if parts.len() < 2 || parts[1].is_empty() {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().ok();
    Some(Version {
        major: num(parts[0])?,
        minor: num(parts[1])?,
        patch: parts.get(2).and_then(|p| num(p)).unwrap_or(0),
    })
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_in_real_tool_output() {
        for (text, want) in [
            ("v1.36.0", (1, 36, 0)),
            ("v3.19.0+g3d8990f", (3, 19, 0)),
            ("v3.19", (3, 19, 0)),
            ("v1.32.4-dispatcher", (1, 32, 4)),
            ("Docker version 28.2.2, build e6534b4", (28, 2, 2)),
            ("podman version 5.4.0", (5, 4, 0)),
        ] {
            assert_eq!(
                Version::find(text),
                Some(Version::new(want.0, want.1, want.2)),
                "{text}"
            );
        }
        assert_eq!(Version::find("no digits"), None);
        assert_eq!(Version::find("build 7"), None);
        assert!(Version::new(1, 24, 0) > Version::new(1, 9, 9));
        assert_eq!(Version::new(3, 8, 0).to_string(), "3.8.0");
    }
}
