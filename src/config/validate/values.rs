//! Rules for single values: Kubernetes names, image repositories and references, durations,
//! resource quantities, 32-bit integers, HTTP paths, git branches, chart repositories.
//!
//! Every parser here works on characters, never on byte offsets it has not checked, so any
//! text (a trailing `é`, a byte-order mark) is a problem to report and never a panic.

use super::Problems;

/// What Kubernetes stores as `int32` (replicas, probe seconds, analysis counts).
const INT32_MAX: u32 = i32::MAX as u32;

/// Longest duration: Go's `time.Duration` (what Argo Rollouts and Chaos Mesh parse into) holds
/// at most 2^63 - 1 nanoseconds, about 292 years.
const MAX_DURATION_SECONDS: u64 = (i64::MAX / 1_000_000_000) as u64;

pub(super) fn branch(out: &mut Problems, at: &str, b: &str) {
    let bad = b.is_empty()
        || b.contains(|c: char| c.is_whitespace() || "~^:?*[\\".contains(c))
        || b.contains("..")
        || b.starts_with('/')
        || b.ends_with('/');
    if bad {
        out.add(at, format!("`{b}` is not a valid git branch name"));
    }
}

/// RFC 1123 label: what Kubernetes requires of namespaces and most names.
pub(super) fn dns_label(out: &mut Problems, at: &str, v: &str, max: usize) {
    if !is_dns_label(v, max) {
        out.add(
            at,
            format!(
                "`{v}` is not a valid name: use at most {max} lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        );
    }
}

fn is_dns_label(v: &str, max: usize) -> bool {
    !v.is_empty()
        && v.len() <= max
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-')
}

/// RFC 1123 subdomain: Secret names and hosts.
pub(super) fn dns_subdomain(out: &mut Problems, at: &str, v: &str) {
    let ok = !v.is_empty() && v.len() <= 253 && v.split('.').all(|l| is_dns_label(l, 63));
    if !ok {
        out.add(
            at,
            format!(
                "`{v}` is not a valid DNS subdomain: use lowercase letters, digits, '-' and '.'"
            ),
        );
    }
}

pub(super) fn image(out: &mut Problems, at: &str, v: &str) {
    let last = v.rsplit('/').next().unwrap_or(v);
    if v.contains('@') || last.contains(':') {
        out.add(
            at,
            format!(
                "`{v}` carries a tag or digest: give the repository here and the tag (or digest) under `tags`"
            ),
        );
        return;
    }
    let ok = !v.is_empty()
        && v.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-:".contains(ch))
        });
    if !ok {
        out.add(at, format!("`{v}` is not a valid image repository: use lowercase letters, digits, '.', '_', '-' and '/'"));
    }
}

/// An image tag (`1.2.0`), a tag pinned by digest (`1.2.0@sha256:…`) or a digest alone
/// (`sha256:…`), as the OCI reference grammar has them; `latest` alone is refused.
pub(super) fn image_tag(out: &mut Problems, at: &str, v: &str) {
    let (tag, digest) = crate::config::split_tag(v);
    if let Some(d) = digest
        && !is_digest(d)
    {
        out.add(
            at,
            format!(
                "`{d}` is not an image digest: use `sha256:` and 64 lowercase hex digits (or `sha512:` and 128)"
            ),
        );
        return;
    }
    match tag {
        Some(t) if !is_tag(t) => out.add(
            at,
            format!(
                "`{t}` is not a valid image tag: use at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
            ),
        ),
        Some("latest") if digest.is_none() => out.add(
            at,
            "`latest` is not allowed: pin a version (or a digest) so that promotion is reproducible",
        ),
        _ => {}
    }
}

fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn is_digest(d: &str) -> bool {
    let hex = |h: &str, n: usize| {
        h.len() == n
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    match d.split_once(':') {
        Some(("sha256", h)) => hex(h, 64),
        Some(("sha512", h)) => hex(h, 128),
        _ => false,
    }
}

pub(super) fn http_path(out: &mut Problems, at: &str, v: &str) {
    if !v.starts_with('/') || v.contains(char::is_whitespace) {
        out.add(
            at,
            format!("must be an HTTP path starting with '/', found `{v}`"),
        );
    }
}

pub(super) fn duration(out: &mut Problems, at: &str, v: &str) {
    if !is_duration(v) {
        out.add(
            at,
            format!(
                "must be a duration such as `30s`, `5m` or `1h` (more than 0, at most 292 years), found `{v}`"
            ),
        );
    }
}

/// `<digits><unit>` with unit s, m, h, d or w, more than zero and within Go's
/// `time.Duration`: what Argo Rollouts, Chaos Mesh and Prometheus all accept.
pub(super) fn is_duration(v: &str) -> bool {
    duration_seconds(v).is_some_and(|s| s > 0 && s <= MAX_DURATION_SECONDS)
}

/// Seconds of a duration such as `30s` or `4w`; `None` when it is not one.
pub fn duration_seconds(v: &str) -> Option<u64> {
    let mut chars = v.chars();
    let unit = chars.next_back()?;
    let digits = chars.as_str();
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// `1.2.3`, with an optional pre-release or build suffix: an exact chart version.
pub fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// A value Kubernetes keeps in an `int32`.
pub(super) fn int32(out: &mut Problems, at: &str, v: u32) {
    if v > INT32_MAX {
        out.add(
            at,
            format!(
                "must be at most {INT32_MAX} (Kubernetes stores it as a 32-bit integer), found {v}"
            ),
        );
    }
}

pub(super) fn cpu(out: &mut Problems, at: &str, v: &str) {
    if parse_cpu(v).is_none() {
        out.add(
            at,
            format!("`{v}` is not a CPU quantity such as `250m`, `0.5` or `1`"),
        );
    }
}

pub(super) fn memory(out: &mut Problems, at: &str, v: &str) {
    if parse_memory(v).is_none() {
        out.add(
            at,
            format!("`{v}` is not a memory quantity such as `128Mi`, `1Gi` or `1e9`"),
        );
    }
}

/// Millicores of a positive CPU quantity.
pub(super) fn parse_cpu(v: &str) -> Option<f64> {
    quantity(v).map(|q| q * 1000.0).filter(|n| *n > 0.0)
}

/// Bytes of a positive memory quantity.
pub(super) fn parse_memory(v: &str) -> Option<f64> {
    quantity(v).filter(|n| *n > 0.0)
}

/// A Kubernetes quantity in its base unit, by the grammar of `resource.Quantity`:
/// `[+-]<digits>[.<digits>]` then a binary suffix (`Ki` … `Ei`), a decimal one (`n`, `u`, `m`,
/// `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`, `E-2`).
pub(super) fn quantity(v: &str) -> Option<f64> {
    let (sign, rest) = match v.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, v.strip_prefix('+').unwrap_or(v)),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    if !number.chars().any(|c| c.is_ascii_digit()) || number.matches('.').count() > 1 {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let binary = |power: i32| Some(2f64.powi(power));
    let scale = match suffix {
        "" => Some(1.0),
        "n" => Some(1e-9),
        "u" => Some(1e-6),
        "m" => Some(1e-3),
        "k" => Some(1e3),
        "M" => Some(1e6),
        "G" => Some(1e9),
        "T" => Some(1e12),
        "P" => Some(1e15),
        "E" => Some(1e18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        e => {
            let exp = e.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(10f64.powi(exp.parse::<i32>().ok()?))
        }
    }?;
    let value = sign * n * scale;
    value.is_finite().then_some(value)
}

/// An `https://`, `http://` or `oci://` chart repository URL (`addons.*.repository`, `up --charts`).
pub fn chart_repository(repo: &str) -> bool {
    ["https://", "http://", "oci://"]
        .iter()
        .any(|s| repo.len() > s.len() && repo.starts_with(s))
        && !repo.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_kubernetes_accepts_including_exponents_and_peta() {
        assert_eq!(parse_cpu("250m"), Some(250.0));
        assert_eq!(parse_cpu("1.5"), Some(1500.0));
        assert_eq!(parse_cpu(".5"), Some(500.0));
        assert_eq!(parse_cpu("abc"), None);
        assert_eq!(parse_cpu("0"), None, "zero CPU");
        assert_eq!(parse_memory("128Mi"), Some(134217728.0));
        assert_eq!(parse_memory("1G"), Some(1e9));
        assert_eq!(parse_memory("1e9"), Some(1e9));
        assert_eq!(parse_memory("1E3"), Some(1e3));
        assert_eq!(parse_memory("1Pi"), Some(2f64.powi(50)));
        assert_eq!(parse_memory("2Ei"), Some(2.0 * 2f64.powi(60)));
        assert_eq!(parse_memory("+64Mi"), Some(64.0 * 1048576.0));
        for bad in [
            "12Qi",
            "-1Gi",
            "1e",
            "e9",
            ".",
            "1..2",
            "1Mi ",
            "Mi",
            "1e9Mi",
            "1é",
            "\u{feff}1Gi",
        ] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_followed_by_non_ascii_text_are_refused_not_a_panic() {
        assert!(
            is_duration("30s") && is_duration("30d") && is_duration("4w") && is_duration("007s")
        );
        for bad in [
            "30",
            "s",
            "0s",
            "00s",
            "1.5m",
            "30é",
            "30d\u{feff}",
            "é",
            "\u{feff}",
            "",
            "3é0s",
            "99999999999999999999s",
            "300000w",
        ] {
            assert!(!is_duration(bad), "{bad:?}");
        }
        assert_eq!(duration_seconds("2h"), Some(7200));
        assert_eq!(duration_seconds("30é"), None);
    }

    #[test]
    fn image_tags_pinned_by_digest_are_valid() {
        let sha = "a".repeat(64);
        let check = |v: &str| {
            let mut out = Problems::default();
            image_tag(&mut out, "tags.prod", v);
            out.0.into_iter().map(|p| p.message).collect::<Vec<_>>()
        };
        for ok in [
            "0.1.0".to_string(),
            format!("0.1.0@sha256:{sha}"),
            format!("sha256:{sha}"),
            format!("latest@sha256:{sha}"),
            format!("sha512:{}", "0".repeat(128)),
        ] {
            assert_eq!(check(&ok), Vec::<String>::new(), "{ok}");
        }
        for bad in [
            "latest".to_string(),
            "".to_string(),
            "0.1.0@".to_string(),
            format!("0.1.0@sha256:{}", "A".repeat(64)),
            format!("0.1.0@sha256:{}", "a".repeat(63)),
            format!("@sha256:{sha}"),
            format!("-x@sha256:{sha}"),
            "md5:abc".to_string(),
            "1.0é".to_string(),
        ] {
            assert_eq!(check(&bad).len(), 1, "{bad}");
        }
    }
}
