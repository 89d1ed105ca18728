//! Rollout views and patches on objects shaped as the Argo Rollouts controller v1.9.0 writes them.

use serde_json::{Value, json};

use super::actions::{Action, plan};
use super::info::{Event, Info, Snapshot, Verdict, changes};

const STEPS: &str = r#"[{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "customer-api"}]}},
    {"setWeight": 50}, {"analysis": {"templates": [{"templateName": "customer-api"}]}}, {"setWeight": 100}]"#;

fn canary(step: u64, status: Value) -> Value {
    let mut s = json!({
        "observedGeneration": "4", "phase": "Progressing", "message": "more replicas need to be updated",
        "currentStepIndex": step, "stableRS": "5d4f8", "currentPodHash": "7b9c6",
        "replicas": 4, "updatedReplicas": 1, "readyReplicas": 4, "availableReplicas": 4,
        "canary": {"weights": {"canary": {"weight": 20, "podTemplateHash": "7b9c6"}, "stable": {"weight": 80}}}
    });
    if let (Some(s), Value::Object(extra)) = (s.as_object_mut(), status) {
        s.extend(extra);
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "customer-api", "namespace": "prod", "generation": 4, "uid": "r-1",
            "annotations": {"argocd.argoproj.io/tracking-id": "customer-platform-prod:argoproj.io/Rollout:prod/customer-api"}},
        "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "customer-api"}},
            "template": template("0.2.0", None),
            "strategy": {"canary": {"stableService": "customer-api", "canaryService": "customer-api-canary",
                "steps": serde_json::from_str::<Value>(STEPS).expect("steps")}}},
        "status": s
    })
}

fn template(tag: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app.kubernetes.io/name": "customer-api"});
    if let Some(h) = hash {
        labels["rollouts-pod-template-hash"] = h.into();
    }
    json!({"metadata": {"labels": labels, "annotations": {"platformctl.dev/config-hash": "abc"}},
        "spec": {"containers": [{"name": "customer-api", "image": format!("platformctl/customer-api:{tag}")}]}})
}

fn replica_set(hash: &str, revision: u32, tag: &str, replicas: u32) -> Value {
    json!({
        "metadata": {"name": format!("customer-api-{hash}"), "namespace": "prod",
            "labels": {"app.kubernetes.io/name": "customer-api", "rollouts-pod-template-hash": hash},
            "annotations": {"rollout.argoproj.io/revision": revision.to_string()},
            "ownerReferences": [{"kind": "Rollout", "name": "customer-api", "uid": "r-1", "controller": true}]},
        "spec": {"replicas": replicas, "template": template(tag, Some(hash))},
        "status": {"replicas": replicas, "readyReplicas": replicas}
    })
}

fn analysis_run(name: &str, revision: u32, phase: &str, values: &[(&str, &str)]) -> Value {
    let measurements: Vec<Value> = values
        .iter()
        .map(|(p, v)| json!({"phase": p, "value": v, "finishedAt": "2026-12-02T10:00:00Z"}))
        .collect();
    let failed = values.iter().filter(|(p, _)| *p == "Failed").count();
    let ok = values.iter().filter(|(p, _)| *p == "Successful").count();
    json!({
        "metadata": {"name": name, "namespace": "prod", "creationTimestamp": "2026-12-02T10:00:00Z",
            "annotations": {"rollout.argoproj.io/revision": revision.to_string()},
            "ownerReferences": [{"kind": "Rollout", "name": "customer-api", "uid": "r-1", "controller": true}]},
        "spec": {"metrics": [{"name": "success-rate", "successCondition": "result[0] >= 0.99",
            "failureCondition": "result[0] < 0.99"}]},
        "status": {"phase": phase, "metricResults": [{"name": "success-rate", "phase": phase,
            "count": values.len(), "successful": ok, "failed": failed, "measurements": measurements}]}
    })
}

fn snapshot(rollout: Value, runs: Vec<Value>) -> Snapshot {
    Snapshot {
        rollout,
        environment: Some("prod".into()),
        replica_sets: vec![
            replica_set("5d4f8", 1, "0.1.0", 3),
            replica_set("7b9c6", 2, "0.2.0", 1),
        ],
        analysis_runs: runs,
    }
}

#[test]
fn a_canary_in_its_first_analysis_shows_step_weight_revisions_and_measurements() {
    let run = analysis_run(
        "customer-api-7b9c6-2-1",
        2,
        "Running",
        &[("Successful", "[0.998]")],
    );
    let info = Info::of(&snapshot(canary(1, json!({})), vec![run]));
    assert_eq!(info.set_weight, Some(20));
    assert_eq!(info.actual_weight, Some(20));
    let step = info.step.clone().expect("a canary with steps");
    assert_eq!(
        (step.index, step.total, step.action.as_str()),
        (1, 5, "analysis")
    );
    assert_eq!(info.stable_image(), Some("platformctl/customer-api:0.1.0"));
    assert_eq!(info.revision("canary").map(|r| r.revision), Some(2));
    assert_eq!(info.revisions[0].revision, 2, "newest first");
    assert_eq!(
        info.current_analysis().map(|a| a.name.as_str()),
        Some("customer-api-7b9c6-2-1")
    );
    assert!(matches!(info.verdict(), Verdict::Progressing(_)));
    assert_eq!(
        info.progress(),
        "Progressing, step 2/5 analysis, weight 20, analysis `customer-api-7b9c6-2-1` Running, 4/3 ready, 1 updated, more replicas need to be updated"
    );
}

#[test]
fn an_aborted_canary_names_the_failed_metric_its_value_and_condition() {
    let run = analysis_run(
        "customer-api-7b9c6-2-1",
        2,
        "Failed",
        &[
            ("Successful", "[0.995]"),
            ("Failed", "[0.81]"),
            ("Failed", "[0.79]"),
        ],
    );
    let rollout = canary(
        1,
        json!({"abort": true, "phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 2: Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)"}),
    );
    let info = Info::of(&snapshot(rollout, vec![run]));
    assert_eq!(
        info.set_weight,
        Some(0),
        "an aborted canary gets no traffic"
    );
    let Verdict::Aborted(message) = info.verdict() else {
        panic!("not aborted: {:?}", info.verdict());
    };
    for part in [
        "rollout `customer-api` in namespace `prod` was aborted",
        "metric `success-rate` = [0.79]",
        "success condition `result[0] >= 0.99`",
        "2 of 3 measurements failed",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

#[test]
fn the_blue_green_gate_names_the_preview_service_and_the_command_that_continues() {
    let rollout = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "orders", "namespace": "shop", "generation": 2, "uid": "r-1"},
        "spec": {"replicas": 2, "template": template("0.2.0", None),
            "strategy": {"blueGreen": {"activeService": "orders", "previewService": "orders-preview", "autoPromotionEnabled": false}}},
        "status": {"observedGeneration": "2", "phase": "Paused", "message": "BlueGreenPause",
            "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2026-12-02T10:00:00Z"}],
            "controllerPause": true, "stableRS": "5d4f8", "currentPodHash": "7b9c6",
            "blueGreen": {"activeSelector": "5d4f8", "previewSelector": "7b9c6"}}
    });
    let info = Info::of(&Snapshot {
        rollout: rollout.clone(),
        environment: Some("prod".into()),
        replica_sets: vec![
            replica_set("5d4f8", 1, "0.1.0", 2),
            replica_set("7b9c6", 2, "0.2.0", 2),
        ],
        analysis_runs: vec![],
    });
    assert_eq!(info.revision("preview").map(|r| r.revision), Some(2));
    assert_eq!(info.revision("active").map(|r| r.revision), Some(1));
    let Verdict::Gate(message) = info.verdict() else {
        panic!("not at the gate: {:?}", info.verdict());
    };
    assert!(
        message.contains("preview Service `orders-preview`"),
        "{message}"
    );
    assert!(
        message.contains("(platformctl/customer-api:0.2.0)"),
        "{message}"
    );
    assert!(
        message.contains("`platformctl rollout promote orders --env prod` continues it"),
        "{message}"
    );
    // With auto-promotion after a while, the same pause ends by itself.
    let mut timed = rollout;
    timed["spec"]["strategy"]["blueGreen"]["autoPromotionSeconds"] = 30.into();
    let info = Info::of(&Snapshot {
        rollout: timed,
        ..Snapshot::default()
    });
    assert!(
        matches!(info.verdict(), Verdict::Progressing(_)),
        "{:?}",
        info.verdict()
    );
}

#[test]
fn a_timed_canary_pause_is_progress_and_one_without_duration_is_a_gate() {
    let mut r = canary(
        1,
        json!({"phase": "Paused", "message": "CanaryPauseStep", "controllerPause": true,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-12-02T10:00:00Z"}]}),
    );
    r["spec"]["strategy"]["canary"]["steps"][1] = json!({"pause": {"duration": "30s"}});
    let info = Info::of(&snapshot(r.clone(), vec![]));
    assert!(
        matches!(info.verdict(), Verdict::Progressing(_)),
        "{:?}",
        info.verdict()
    );
    r["spec"]["strategy"]["canary"]["steps"][1] = json!({"pause": {}});
    let Verdict::Gate(m) = Info::of(&snapshot(r, vec![])).verdict() else {
        panic!("a pause without duration waits for a person");
    };
    assert!(
        m.contains("paused at step 2 without a duration (weight 20)"),
        "{m}"
    );
}

#[test]
fn watch_events_report_each_new_measurement_once() {
    let r = canary(1, json!({}));
    let one = Info::of(&snapshot(
        r.clone(),
        vec![analysis_run(
            "ar",
            2,
            "Running",
            &[("Successful", "[0.998]")],
        )],
    ));
    let first = changes(None, &one);
    assert!(matches!(first[0], Event::Progress { .. }));
    assert_eq!(
        first
            .iter()
            .filter(|e| matches!(e, Event::Measured { .. }))
            .count(),
        1,
        "{first:?}"
    );
    let two = Info::of(&snapshot(
        r.clone(),
        vec![analysis_run(
            "ar",
            2,
            "Successful",
            &[("Successful", "[0.998]"), ("Successful", "[0.997]")],
        )],
    ));
    let next = changes(Some(&one), &two);
    assert_eq!(
        next,
        vec![
            Event::Progress {
                phase: two.phase,
                step: two.step.clone(),
                set_weight: Some(20),
                message: two.progress(),
            },
            Event::Measured {
                analysis_run: "ar".into(),
                metric: "success-rate".into(),
                phase: "Successful".into(),
                value: "[0.997]".into(),
                condition: Some("result[0] >= 0.99".into()),
            },
            Event::AnalysisFinished {
                analysis_run: "ar".into(),
                phase: "Successful".into(),
                message: String::new(),
            },
        ]
    );
    assert_eq!(
        changes(Some(&two), &two),
        vec![],
        "nothing new, nothing printed"
    );
    assert_eq!(
        next[1].to_string(),
        "  success-rate = [0.997]: Successful (`result[0] >= 0.99`) [ar]"
    );
}

#[test]
fn promote_patches_as_the_kubectl_plugin_does() {
    // Paused by the canary step: clear the pause conditions only.
    let paused = canary(
        1,
        json!({"pauseConditions": [{"reason": "CanaryPauseStep"}], "controllerPause": true}),
    );
    let p = plan(Action::Promote, &paused, &[]).expect("a plan");
    assert_eq!(p.status, Some(json!({"status": {"pauseConditions": null}})));
    assert_eq!(p.spec, None);
    // Not paused: skip to the next step.
    let p = plan(Action::Promote, &canary(1, json!({})), &[]).expect("a plan");
    assert_eq!(
        p.status,
        Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 2}}))
    );
    assert_eq!(
        p.unified,
        Some(
            json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": 2}})
        )
    );
    // Inconclusive analysis paused by the controller: on to the next step, controller pause off.
    let inconclusive = canary(
        1,
        json!({"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}], "controllerPause": true,
            "canary": {"currentStepAnalysisRunStatus": {"name": "ar", "status": "Inconclusive"}}}),
    );
    let p = plan(Action::Promote, &inconclusive, &[]).expect("a plan");
    assert_eq!(
        p.status,
        Some(
            json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": 2}})
        )
    );
    // spec.paused: unpaused through the spec.
    let mut user_paused = canary(1, json!({}));
    user_paused["spec"]["paused"] = true.into();
    let p = plan(Action::Promote, &user_paused, &[]).expect("a plan");
    assert_eq!(p.spec, Some(json!({"spec": {"paused": false}})));
    // --full: promoteFull while the new revision is not stable.
    let p = plan(Action::PromoteFull, &canary(1, json!({})), &[]).expect("a plan");
    assert_eq!(p.status, Some(json!({"status": {"promoteFull": true}})));
    let done = canary(5, json!({"currentPodHash": "5d4f8"}));
    assert!(
        plan(Action::PromoteFull, &done, &[])
            .expect("a plan")
            .nothing
            .is_some()
    );
    // abort, retry, pause.
    assert_eq!(
        plan(Action::Abort, &done, &[]).expect("a plan").status,
        Some(json!({"status": {"abort": true}}))
    );
    assert_eq!(
        plan(Action::Retry, &done, &[]).expect("a plan").status,
        Some(json!({"status": {"abort": false}}))
    );
    assert_eq!(
        plan(Action::Pause, &done, &[]).expect("a plan").spec,
        Some(json!({"spec": {"paused": true}}))
    );
    assert!(
        plan(Action::Resume, &done, &[])
            .expect("a plan")
            .nothing
            .is_some()
    );
}

#[test]
fn undo_restores_the_previous_revisions_template_without_its_hash() {
    let r = canary(5, json!({}));
    let sets = vec![
        replica_set("5d4f8", 1, "0.1.0", 0),
        replica_set("7b9c6", 2, "0.2.0", 3),
    ];
    let p = plan(Action::Undo(0), &r, &sets).expect("a plan");
    let t = p.template.expect("a template to restore");
    assert_eq!(
        t["spec"]["containers"][0]["image"],
        "platformctl/customer-api:0.1.0"
    );
    assert!(
        t["metadata"]["labels"]
            .get("rollouts-pod-template-hash")
            .is_none()
    );
    // Revision 2's template is the Rollout's own: nothing to do.
    assert!(
        plan(Action::Undo(2), &r, &sets)
            .expect("a plan")
            .nothing
            .is_some()
    );
    let missing = plan(Action::Undo(7), &r, &sets).expect_err("no revision 7");
    assert!(
        missing
            .to_string()
            .contains("no revision 7 in its history (revisions: 1, 2)"),
        "{missing}"
    );
    assert!(
        plan(Action::Undo(0), &r, &sets[1..]).is_err(),
        "nothing to go back to"
    );
}

#[test]
fn the_application_that_deploys_a_rollout_is_read_from_argo_cds_tracking_annotation() {
    assert_eq!(
        super::managed_by(&canary(0, json!({}))).as_deref(),
        Some("customer-platform-prod")
    );
    assert_eq!(super::managed_by(&json!({"metadata": {}})), None);
}
