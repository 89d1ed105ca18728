//! Rules for what operates the services: SLOs, chaos experiments and load tests, each naming a
//! service and an environment that exist.

use std::collections::BTreeSet;

use super::services::latency;
use super::values::*;
use super::{Problems, find_env, find_service};
use crate::config::model::*;

pub(super) fn slos(out: &mut Problems, p: &Platform) {
    let mut seen = BTreeSet::new();
    for (i, slo) in p.slos.iter().enumerate() {
        let at = format!("slos[{i}]");
        let svc = find_service(out, &format!("{at}.service"), p, &slo.service);
        if let Some(env) = find_env(out, &format!("{at}.environment"), p, &slo.environment)
            && !env.monitoring
        {
            out.add(
                format!("{at}.environment"),
                format!(
                    "environment `{}` has no monitoring: set `monitoring: true` on it",
                    env.name
                ),
            );
        }
        if !seen.insert((&slo.service, &slo.environment)) {
            out.add(
                at.clone(),
                format!(
                    "a second SLO for `{}` in `{}`",
                    slo.service, slo.environment
                ),
            );
        }
        if !is_duration(&slo.window) || !slo.window.ends_with(['d', 'w']) {
            out.add(
                format!("{at}.window"),
                format!(
                    "must be days or weeks such as `30d` or `4w`, found `{}`",
                    slo.window
                ),
            );
        }
        if slo.availability.is_none() && slo.latency.is_none() {
            out.add(at.clone(), "set `availability`, `latency`, or both");
        }
        if let Some(a) = &slo.availability
            && !(a.objective > 0.0 && a.objective < 100.0)
        {
            out.add(
                format!("{at}.availability.objective"),
                format!(
                    "must be a percentage between 0 and 100 (exclusive), found {}",
                    a.objective
                ),
            );
        }
        if let (Some(l), Some(s)) = (&slo.latency, svc) {
            latency(out, &format!("{at}.latency"), l, s);
        }
    }
}

pub(super) fn chaos(out: &mut Problems, p: &Platform) {
    let mut names = BTreeSet::new();
    for (i, c) in p.chaos.iter().enumerate() {
        let at = format!("chaos[{i}]");
        dns_label(out, &format!("{at}.name"), &c.name, 57);
        out.unique(&mut names, format!("{at}.name"), c.name.as_str(), || {
            format!("duplicate experiment name `{}`", c.name)
        });
        find_service(out, &format!("{at}.service"), p, &c.service);
        find_env(out, &format!("{at}.environment"), p, &c.environment);
        let needs_value = matches!(
            c.mode,
            ChaosMode::Fixed | ChaosMode::FixedPercent | ChaosMode::RandomMaxPercent
        );
        match (&c.value, needs_value) {
            (None, true) => out.add(
                format!("{at}.value"),
                format!("mode `{}` needs a value", mode_name(c.mode)),
            ),
            (Some(_), false) => out.add(
                format!("{at}.value"),
                format!("mode `{}` takes no value", mode_name(c.mode)),
            ),
            (Some(v), true) => match v.parse::<u32>() {
                Ok(n) if c.mode != ChaosMode::Fixed && !(1..=100).contains(&n) => out.add(
                    format!("{at}.value"),
                    format!("must be a percentage between 1 and 100, found {n}"),
                ),
                Ok(0) => out.add(format!("{at}.value"), "must be at least 1"),
                Ok(_) => {}
                Err(_) => out.add(
                    format!("{at}.value"),
                    format!("must be a whole number, found `{v}`"),
                ),
            },
            (None, false) => {}
        }
        match &c.duration {
            Some(d) => duration(out, &format!("{at}.duration"), d),
            None if c.action == ChaosAction::PodFailure => out.add(
                format!("{at}.duration"),
                "`pod-failure` needs a duration such as `30s`",
            ),
            None => {}
        }
        if let Some(name) = &c.container {
            dns_label(out, &format!("{at}.container"), name, 63);
        }
        if c.grace_period.is_some() && c.action != ChaosAction::PodKill {
            out.add(
                format!("{at}.gracePeriod"),
                "only `pod-kill` takes a grace period",
            );
        }
        if !(c.max_budget_burn > 0.0 && c.max_budget_burn <= 100.0) {
            out.add(
                format!("{at}.maxBudgetBurn"),
                format!(
                    "must be a percentage above 0 and at most 100, found {}",
                    c.max_budget_burn
                ),
            );
        }
        duration(out, &format!("{at}.recoveryTimeout"), &c.recovery_timeout);
        if let Some(sch) = &c.schedule
            && !is_schedule(sch)
        {
            out.add(
                format!("{at}.schedule"),
                format!("must be a cron schedule of 5 fields (`0 3 * * 1-5`) or `@every 30m`, found `{sch}`"),
            );
        }
        if c.probe_rate == 0 {
            out.add(
                format!("{at}.probeRate"),
                "must be at least 1 request per second",
            );
        }
    }
}

pub(super) fn load(out: &mut Problems, p: &Platform) {
    let mut names = BTreeSet::new();
    for (i, l) in p.load.iter().enumerate() {
        let at = format!("load[{i}]");
        dns_label(out, &format!("{at}.name"), &l.name, 63);
        out.unique(&mut names, format!("{at}.name"), l.name.as_str(), || {
            format!("duplicate load test name `{}`", l.name)
        });
        let svc = find_service(out, &format!("{at}.service"), p, &l.service);
        find_env(out, &format!("{at}.environment"), p, &l.environment);
        http_path(out, &format!("{at}.path"), &l.path);
        if !l.paths.is_empty() && l.path != "/" {
            out.add(format!("{at}.paths"), "give `path` or `paths`, not both");
        }
        for (j, path) in l.paths.iter().enumerate() {
            http_path(out, &format!("{at}.paths[{j}]"), path);
        }
        for (j, e) in l.thresholds.expressions.iter().enumerate() {
            if let Err(err) = crate::load::Threshold::parse(e) {
                out.add(
                    format!("{at}.thresholds.expressions[{j}]"),
                    format!(
                        "{} (like `p95<300ms`, `errors<1%`, `rate>=0.99*target`)",
                        err.reason
                    ),
                );
            }
        }
        if l.rate == 0 {
            out.add(
                format!("{at}.rate"),
                "must be at least 1 request per second",
            );
        }
        duration(out, &format!("{at}.duration"), &l.duration);
        if let Some(e) = l.thresholds.max_error_rate
            && !(0.0..=100.0).contains(&e)
        {
            out.add(
                format!("{at}.thresholds.maxErrorRate"),
                format!("must be a percentage between 0 and 100, found {e}"),
            );
        }
        if let (Some(lat), Some(s)) = (&l.thresholds.latency, svc) {
            latency(out, &format!("{at}.thresholds.latency"), lat, s);
        }
    }
}

/// What Chaos Mesh's Schedule takes (robfig/cron with its standard parser): five fields, a
/// descriptor such as `@hourly`, or `@every <Go duration>`.
fn is_schedule(s: &str) -> bool {
    if let Some(d) = s.strip_prefix("@every ") {
        return is_duration(d.trim());
    }
    if s.starts_with('@') {
        return [
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ]
        .contains(&s);
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().all(|f| {
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || ",-*/?".contains(c))
        })
}

fn mode_name(m: ChaosMode) -> &'static str {
    match m {
        ChaosMode::One => "one",
        ChaosMode::All => "all",
        ChaosMode::Fixed => "fixed",
        ChaosMode::FixedPercent => "fixed-percent",
        ChaosMode::RandomMaxPercent => "random-max-percent",
    }
}

#[cfg(test)]
mod tests {
    use super::is_schedule;

    #[test]
    fn schedules_are_what_chaos_mesh_parses() {
        for ok in [
            "0 10 * * 1-5",
            "*/5 * * * *",
            "@every 30m",
            "@hourly",
            "0 3 1,15 * MON",
        ] {
            assert!(is_schedule(ok), "{ok}");
        }
        for bad in [
            "",
            "0 10 * *",
            "@every soon",
            "@sometimes",
            "0 10 * * 1-5 *",
            "0 10 * * $",
        ] {
            assert!(!is_schedule(bad), "{bad}");
        }
    }
}
