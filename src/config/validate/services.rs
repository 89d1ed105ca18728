//! Rules for one service: its tags, resources, probes, metrics, and its delivery strategy with
//! the analysis that gates it.

use super::values::*;
use super::{MAX_SERVICE_NAME, Problems};
use crate::config::model::*;

pub(super) fn service(out: &mut Problems, at: &str, s: &Service, envs: &[&Environment]) {
    dns_label(out, &format!("{at}.name"), &s.name, MAX_SERVICE_NAME);
    if s.name.starts_with(|c: char| c.is_ascii_digit()) {
        out.add(
            format!("{at}.name"),
            format!("`{}` must start with a letter", s.name),
        );
    }
    image(out, &format!("{at}.image"), &s.image);
    for e in envs {
        if !s.tags.contains_key(&e.name) {
            out.add(
                format!("{at}.tags"),
                format!("missing a tag for environment `{}`", e.name),
            );
        }
    }
    for (env, tag) in &s.tags {
        let path = format!("{at}.tags.{env}");
        if !envs.iter().any(|e| &e.name == env) {
            out.add(&path, format!("unknown environment `{env}`"));
        }
        image_tag(out, &path, tag);
    }
    if s.port == 0 {
        out.add(format!("{at}.port"), "must be between 1 and 65535");
    }
    let r = &s.resources;
    for (kind, list) in [("requests", &r.requests), ("limits", &r.limits)] {
        cpu(out, &format!("{at}.resources.{kind}.cpu"), &list.cpu);
        memory(out, &format!("{at}.resources.{kind}.memory"), &list.memory);
    }
    if let (Some(req), Some(lim)) = (parse_cpu(&r.requests.cpu), parse_cpu(&r.limits.cpu))
        && req > lim
    {
        out.add(
            format!("{at}.resources.requests.cpu"),
            format!("{} exceeds the limit {}", r.requests.cpu, r.limits.cpu),
        );
    }
    if let (Some(req), Some(lim)) = (
        parse_memory(&r.requests.memory),
        parse_memory(&r.limits.memory),
    ) && req > lim
    {
        out.add(
            format!("{at}.resources.requests.memory"),
            format!(
                "{} exceeds the limit {}",
                r.requests.memory, r.limits.memory
            ),
        );
    }
    for (kind, probe) in [
        ("readiness", &s.probes.readiness),
        ("liveness", &s.probes.liveness),
    ] {
        let at = format!("{at}.probes.{kind}");
        http_path(out, &format!("{at}.path"), &probe.path);
        int32(
            out,
            &format!("{at}.initialDelaySeconds"),
            probe.initial_delay_seconds,
        );
        int32(out, &format!("{at}.periodSeconds"), probe.period_seconds);
        int32(
            out,
            &format!("{at}.failureThreshold"),
            probe.failure_threshold,
        );
        if probe.period_seconds == 0 {
            out.add(format!("{at}.periodSeconds"), "must be at least 1");
        }
        if probe.failure_threshold == 0 {
            out.add(format!("{at}.failureThreshold"), "must be at least 1");
        }
    }
    config_keys(out, &format!("{at}.config"), s.config.keys());
    for (version, config) in &s.version_config {
        let path = format!("{at}.versionConfig.{version}");
        if version.contains('@') || version.contains(':') {
            out.add(&path, "a version here is a tag, without a digest");
        } else {
            image_tag(out, &path, version);
        }
        config_keys(out, &path, config.keys());
    }
    for (i, name) in s.secrets.iter().enumerate() {
        dns_subdomain(out, &format!("{at}.secrets[{i}]"), name);
    }
    http_path(out, &format!("{at}.metrics.path"), &s.metrics.path);
    let b = &s.metrics.buckets;
    if b.is_empty() {
        out.add(
            format!("{at}.metrics.buckets"),
            "at least one bucket is required",
        );
    }
    for (i, bucket) in b.iter().enumerate() {
        if !bucket.is_finite() {
            out.add(
                format!("{at}.metrics.buckets[{i}]"),
                format!(
                    "`{bucket}` is not a bucket boundary: use a finite number of seconds (Prometheus adds `+Inf` itself)"
                ),
            );
        }
    }
    for (i, w) in b.windows(2).enumerate() {
        if w[1] <= w[0] {
            out.add(
                format!("{at}.metrics.buckets[{}]", i + 1),
                format!("buckets must increase: {} after {}", w[1], w[0]),
            );
        }
    }
    if let Some(first) = b.first()
        && *first <= 0.0
    {
        out.add(
            format!("{at}.metrics.buckets[0]"),
            "buckets must be positive",
        );
    }
    strategy(out, &format!("{at}.strategy"), s);
}

fn strategy(out: &mut Problems, at: &str, s: &Service) {
    match (&s.strategy.canary, &s.strategy.blue_green) {
        (Some(_), Some(_)) => out.add(at, "set either `canary` or `blueGreen`, not both"),
        (None, None) => out.add(at, "set `canary` or `blueGreen`"),
        (Some(c), None) => {
            let at = format!("{at}.canary");
            if c.steps.is_empty() {
                out.add(format!("{at}.steps"), "at least one weight is required");
            }
            for (i, w) in c.steps.iter().enumerate() {
                if !(1..=100).contains(w) {
                    out.add(
                        format!("{at}.steps[{i}]"),
                        format!("weight must be between 1 and 100, found {w}"),
                    );
                }
                if i > 0 && *w <= c.steps[i - 1] {
                    out.add(
                        format!("{at}.steps[{i}]"),
                        format!("canary weights must increase: {w} after {}", c.steps[i - 1]),
                    );
                }
            }
            duration(out, &format!("{at}.pause"), &c.pause);
            if let Some(a) = &c.analysis {
                analysis(out, &format!("{at}.analysis"), a, s);
            }
        }
        (None, Some(bg)) => {
            let at = format!("{at}.blueGreen");
            if bg.preview_replicas == Some(0) {
                out.add(format!("{at}.previewReplicas"), "must be at least 1");
            }
            if let Some(n) = bg.preview_replicas {
                int32(out, &format!("{at}.previewReplicas"), n);
            }
            int32(
                out,
                &format!("{at}.scaleDownDelaySeconds"),
                bg.scale_down_delay_seconds,
            );
            if let Some(a) = &bg.analysis {
                analysis(out, &format!("{at}.analysis"), a, s);
            }
        }
    }
}

fn analysis(out: &mut Problems, at: &str, a: &Analysis, s: &Service) {
    if !(a.success_rate > 0.0 && a.success_rate <= 100.0) {
        out.add(
            format!("{at}.successRate"),
            format!("must be a percentage in (0, 100], found {}", a.success_rate),
        );
    }
    if let Some(l) = &a.latency {
        latency(out, &format!("{at}.latency"), l, s);
    }
    duration(out, &format!("{at}.interval"), &a.interval);
    if a.count == 0 {
        out.add(format!("{at}.count"), "must be at least 1");
    }
    int32(out, &format!("{at}.count"), a.count);
    int32(out, &format!("{at}.failureLimit"), a.failure_limit);
    // Argo Rollouts fails an analysis when more than `failureLimit` measurements fail: with
    // `count` measurements or fewer allowed to fail, it can never fail.
    if a.count > 0 && a.failure_limit >= a.count {
        out.add(
            format!("{at}.failureLimit"),
            format!(
                "must be less than count ({}), found {}: the analysis could never fail",
                a.count, a.failure_limit
            ),
        );
    }
}

pub(super) fn latency(out: &mut Problems, at: &str, l: &LatencyTarget, s: &Service) {
    if !(l.percentile > 0.0 && l.percentile < 100.0) {
        out.add(
            format!("{at}.percentile"),
            format!(
                "must be between 0 and 100 (exclusive), found {}",
                l.percentile
            ),
        );
    }
    if !s
        .metrics
        .buckets
        .iter()
        .any(|b| (b - l.threshold).abs() < 1e-9)
    {
        let list: Vec<String> = s.metrics.buckets.iter().map(|b| b.to_string()).collect();
        out.add(
            format!("{at}.threshold"),
            format!(
                "{}s is not a histogram bucket of service `{}` (buckets: {}); a latency SLI can only count requests under a bucket boundary",
                l.threshold,
                s.name,
                list.join(", ")
            ),
        );
    }
}

/// ConfigMap keys: valid, and none of the `PLATFORM_` ones platformctl sets.
fn config_keys<'a>(out: &mut Problems, at: &str, keys: impl Iterator<Item = &'a String>) {
    for key in keys {
        let ok = !key.is_empty()
            && key.len() <= 253
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !ok {
            out.add(
                format!("{at}.{key}"),
                format!("`{key}` is not a valid ConfigMap key"),
            );
        } else if key.starts_with("PLATFORM_") {
            out.add(
                format!("{at}.{key}"),
                "keys starting with PLATFORM_ are set by platformctl",
            );
        }
    }
}
