//! End-to-end tests of the service binaries: each test starts real processes on loopback ports
//! (BIND_ADDRESS=127.0.0.1, PLATFORM_PORT=0), reads each one's address from its "listening" log
//! line and talks HTTP to it. Every process is killed when its `Service` guard drops, so a failed
//! assertion never leaves children behind.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Service, client};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// Sends `request`; the status and the JSON body (null when the body is not JSON).
async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let r = request.send().await.expect("request failed");
    (r.status(), r.json().await.unwrap_or_default())
}

/// Asserts that each of `lines` is a whole line of the exposition `text` (the services write
/// labels in a fixed order, so a sample's line is exact).
fn assert_lines(text: &str, lines: &[String]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line} in:\n{text}"
        );
    }
}

/// `downstream_requests_total` of orders for one dependency and outcome, as a line.
fn downstream(dependency: &str, outcome: &str, n: u64) -> String {
    format!(
        r#"downstream_requests_total{{service="orders",dependency="{dependency}",outcome="{outcome}"}} {n}"#
    )
}

/// `app_errors_total` of orders for one kind, as a line.
fn errors(kind: &str, n: u64) -> String {
    format!(r#"app_errors_total{{service="orders",kind="{kind}"}} {n}"#)
}

/// `http_requests_total` of orders for POST /orders with one status, as a line.
fn post_orders(status: u16, n: u64) -> String {
    format!(
        r#"http_requests_total{{service="orders",method="POST",route="/orders",status="{status}"}} {n}"#
    )
}

/// auth, payments, notifications and orders wired together.
struct Shop {
    auth: Service,
    payments: Service,
    notifications: Service,
    orders: Service,
}

async fn shop(orders_env: &[(&str, String)], payments_env: &[(&str, String)]) -> Shop {
    let auth = Service::start("auth", env!("CARGO_BIN_EXE_auth"), &[]).await;
    let payments = Service::start("payments", env!("CARGO_BIN_EXE_payments"), payments_env).await;
    let notifications =
        Service::start("notifications", env!("CARGO_BIN_EXE_notifications"), &[]).await;
    let mut env = vec![
        ("AUTH_URL", auth.base.clone()),
        ("PAYMENTS_URL", payments.base.clone()),
        ("NOTIFICATIONS_URL", notifications.base.clone()),
    ];
    env.extend(orders_env.iter().cloned());
    let orders = Service::start("orders", env!("CARGO_BIN_EXE_orders"), &env).await;
    Shop {
        auth,
        payments,
        notifications,
        orders,
    }
}

impl Shop {
    async fn token(&self, user: &str) -> String {
        let request = client().post(self.auth.url("/tokens"));
        let (status, body) = send(request.json(&json!({"user": user}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_string()
    }

    /// POST /orders with `token`; the status and the JSON body.
    async fn order(&self, token: &str, item: &str, cents: i64) -> (StatusCode, Value) {
        let request = client().post(self.orders.url("/orders")).bearer_auth(token);
        send(request.json(&json!({"item": item, "amountCents": cents}))).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn order_flow_crosses_the_four_shop_services() {
    let shop = shop(&[], &[]).await;
    let token = shop.token("alice").await;
    let (status, order) = shop.order(&token, "book", 1250).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().expect("order id");
    let charge_id = order["chargeId"].as_str().expect("chargeId");
    assert!(id.starts_with("ord_") && !charge_id.is_empty(), "{order}");
    assert_eq!(order["user"], "alice");
    assert_eq!(order["item"], "book");
    assert_eq!(order["amountCents"], 1250);
    assert_eq!(order["notified"], true);

    // notifications recorded the confirmation for alice, naming the order.
    let (status, sent) = send(client().get(shop.notifications.url("/notifications"))).await;
    assert_eq!(status, StatusCode::OK);
    let confirms = |n: &Value| {
        let message = n["message"].as_str().unwrap_or_default();
        n["to"] == "alice" && message.contains(id) && message.contains("confirmed")
    };
    let sent = sent.as_array().expect("a list of notifications");
    assert!(
        sent.iter().any(confirms),
        "no confirmation for {id}: {sent:?}"
    );

    // payments captured the charge for this order.
    let (status, charge) =
        send(client().get(shop.payments.url(&format!("/charges/{charge_id}")))).await;
    assert_eq!(status, StatusCode::OK, "{charge}");
    assert_eq!(charge["status"], "captured", "{charge}");
    assert_eq!(charge["orderId"], id, "{charge}");
    assert_eq!(charge["amountCents"], 1250, "{charge}");

    let m = shop.orders.metrics().await;
    assert_lines(
        &m,
        &[
            downstream("auth", "ok", 1),
            downstream("payments", "ok", 1),
            downstream("notifications", "ok", 1),
            post_orders(201, 1),
            errors("downstream", 0),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_dependency_yields_503_and_the_error_metric() {
    let mut shop = shop(&[], &[("SHUTDOWN_DELAY_MS", "0".into())]).await;
    let token = shop.token("bob").await;
    shop.payments.terminate();
    let exit = shop.payments.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "payments exited with {exit}");

    let (status, body) = shop.order(&token, "lamp", 900).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().expect("error message");
    assert!(error.starts_with("payments is unavailable"), "{error}");

    let m = shop.orders.metrics().await;
    assert_lines(
        &m,
        &[
            errors("downstream", 1),
            downstream("payments", "unavailable", 1),
            post_orders(503, 1),
            // auth was asked first and answered.
            downstream("auth", "ok", 1),
        ],
    );
    // notifications was never reached.
    assert!(!m.contains(r#"dependency="notifications""#), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_dependency_yields_504() {
    let orders_env = [("DOWNSTREAM_TIMEOUT_MS", "300".into())];
    let shop = shop(&orders_env, &[("FAULT_LATENCY_MS", "1000".into())]).await;
    let token = shop.token("carol").await;
    let (status, body) = shop.order(&token, "chair", 4200).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"], "payments did not answer within 300 ms");

    let m = shop.orders.metrics().await;
    let lines = [
        downstream("payments", "timeout", 1),
        errors("downstream", 1),
        post_orders(504, 1),
    ];
    assert_lines(&m, &lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_401_not_an_error() {
    let shop = shop(&[], &[]).await;
    let (status, body) = shop.order("not-a-token", "pen", 100).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unknown token");

    let m = shop.orders.metrics().await;
    let zero = [
        errors("downstream", 0),
        errors("internal", 0),
        errors("injected", 0),
    ];
    assert_lines(&m, &zero);
    assert_lines(&m, &[post_orders(401, 1)]);
    // Nothing was charged: payments was never called and holds no charge.
    assert!(!m.contains(r#"dependency="payments""#), "{m}");
    let (status, _) = send(client().get(shop.payments.url("/charges/ch_1"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A load balancer modelled in the test: it sends only to instances whose /readyz says ready.
#[derive(Default)]
struct Lb {
    bases: [String; 2],
    ready: [AtomicBool; 2],
    next: AtomicUsize,
    stop: AtomicBool,
    /// The health checker saw instance A (index 0) answer /readyz with 503.
    a_drained: AtomicBool,
    term_sent: Mutex<Option<Instant>>,
    tally: Mutex<Tally>,
}

/// What the load balancer's clients saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
    /// Successful answers from instance A that completed after SIGTERM was sent to it.
    a_after_term: usize,
}

impl Lb {
    /// Polls each instance's /readyz every 50 ms until stopped.
    async fn check_health(&self) {
        let http = Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500));
        let http = http.build().expect("client");
        while !self.stop.load(Ordering::Relaxed) {
            for (i, base) in self.bases.iter().enumerate() {
                let status = http.get(format!("{base}/readyz")).send().await;
                let status = status.map(|r| r.status());
                if i == 0 && matches!(status, Ok(StatusCode::SERVICE_UNAVAILABLE)) {
                    self.a_drained.store(true, Ordering::Relaxed);
                }
                let up = matches!(status, Ok(StatusCode::OK));
                self.ready[i].store(up, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn fail(&self, why: String) {
        self.tally.lock().expect("tally").failures.push(why);
    }

    /// Sends GET /customers/1, round robin over the ready instances, until stopped.
    async fn work(&self, http: Client) {
        while !self.stop.load(Ordering::Relaxed) {
            let up: Vec<usize> = (0..2)
                .filter(|&i| self.ready[i].load(Ordering::Relaxed))
                .collect();
            if up.is_empty() {
                self.fail("no instance ready".into());
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let i = up[self.next.fetch_add(1, Ordering::Relaxed) % up.len()];
            let url = format!("{}/customers/1", self.bases[i]);
            let result = http.get(url).send().await;
            let done = Instant::now();
            let outcome = match result {
                Ok(r) if r.status() == StatusCode::OK => match r.json::<Value>().await {
                    Ok(v) if v["id"] == 1 => Ok(()),
                    other => Err(format!("instance {i}: bad body {other:?}")),
                },
                Ok(r) => Err(format!("instance {i}: status {}", r.status())),
                Err(e) => Err(format!("instance {i}: {e}")),
            };
            let term = *self.term_sent.lock().expect("term_sent");
            let mut t = self.tally.lock().expect("tally");
            match outcome {
                Ok(()) if i == 0 && term.is_some_and(|at| done > at) => {
                    t.ok += 1;
                    t.a_after_term += 1;
                }
                Ok(()) => t.ok += 1,
                Err(e) => t.failures.push(e),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_loses_no_request() {
    let env = [
        ("SHUTDOWN_DELAY_MS", "1000".into()),
        ("FAULT_LATENCY_MS", "100".into()),
    ];
    let bin = env!("CARGO_BIN_EXE_customer-api");
    let mut a = Service::start("customer-api A", bin, &env).await;
    let b = Service::start("customer-api B", bin, &env).await;
    let http = client();
    for s in [&a, &b] {
        let new = json!({"name": "A", "email": "a@x"});
        let (status, customer) = send(http.post(s.url("/customers")).json(&new)).await;
        assert_eq!((status, &customer["id"]), (StatusCode::CREATED, &json!(1)));
    }
    let lb = Arc::new(Lb {
        bases: [a.base.clone(), b.base.clone()],
        ready: [AtomicBool::new(true), AtomicBool::new(true)],
        ..Lb::default()
    });
    let checker = tokio::spawn({
        let lb = lb.clone();
        async move { lb.check_health().await }
    });
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (lb, http) = (lb.clone(), http.clone());
            tokio::spawn(async move { lb.work(http).await })
        })
        .collect();

    // Traffic flows to both for ~1 s; then A is told to stop while the workers keep going until
    // A has exited and ~1 s more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    *lb.term_sent.lock().expect("term_sent") = Some(Instant::now());
    a.terminate();
    let exit = a.wait_exit(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    lb.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker panicked");
    }
    checker.await.expect("checker panicked");

    let t = lb.tally.lock().expect("tally");
    let (failed, first) = (t.failures.len(), &t.failures[..t.failures.len().min(5)]);
    assert!(failed == 0, "{failed} failed requests, first: {first:?}");
    assert!(exit.success(), "instance A exited with {exit}");
    let drained = lb.a_drained.load(Ordering::Relaxed);
    assert!(drained, "the LB never saw A's /readyz say 503");
    assert!(t.a_after_term > 0, "A served no request after SIGTERM");
    // 16 workers, 100 ms a request, ~3 s: about 450 when all goes well.
    assert!(t.ok > 150, "only {} successful requests", t.ok);
    drop(b);
}

/// With every request failing by injection, a path no route matches still gets its plain 404
/// (scanners and typos do not burn the error budget), and a made-up method mints no new series.
#[tokio::test]
async fn unmatched_paths_get_no_faults_and_methods_are_a_fixed_set() {
    let api = Service::start(
        "customer-api",
        env!("CARGO_BIN_EXE_customer-api"),
        &[("FAULT_ERROR_RATE", "1".to_string())],
    )
    .await;
    let http = client();
    let (status, _) = send(http.get(api.url("/no/such/path"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(http.get(api.url("/customers/1"))).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the fault applies to real routes"
    );
    let method = reqwest::Method::from_bytes(b"FOOBAR").expect("method");
    let (status, _) = send(http.request(method, api.url("/customers"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let m = api.metrics().await;
    let l = r#"service="customer-api""#;
    assert_lines(
        &m,
        &[
            format!(r#"http_requests_total{{{l},method="GET",route="unmatched",status="404"}} 1"#),
            format!(
                r#"http_requests_total{{{l},method="OTHER",route="/customers",status="500"}} 1"#
            ),
            format!(r#"app_errors_total{{{l},kind="injected"}} 2"#),
        ],
    );
    assert!(
        !m.contains("FOOBAR"),
        "a client's method became a label value:\n{m}"
    );
}

/// Errors the framework answers itself (a body that is not JSON, a route without the method, a
/// path no route matches) are JSON like the services' own.
#[tokio::test]
async fn every_error_is_json() {
    let api = Service::start("customer-api", env!("CARGO_BIN_EXE_customer-api"), &[]).await;
    let http = client();
    for (request, want) in [
        (
            http.post(api.url("/customers"))
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.post(api.url("/customers")).body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            http.put(api.url("/customers")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (http.get(api.url("/no/such/path")), StatusCode::NOT_FOUND),
        (http.get(api.url("/customers/7")), StatusCode::NOT_FOUND),
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, want, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{want}: not a JSON error: {body}"
        );
    }
}

/// A request slower than SHUTDOWN_TIMEOUT_MS does not hold the process past it: the service
/// exits 0 on its own, well before the request would have finished (and before a kubelet's
/// SIGKILL would come).
#[tokio::test]
async fn shutdown_gives_up_on_requests_past_its_timeout() {
    let env = [
        ("FAULT_LATENCY_MS", "5000".to_string()),
        ("SHUTDOWN_DELAY_MS", "0".to_string()),
        ("SHUTDOWN_TIMEOUT_MS", "300".to_string()),
    ];
    let mut api = Service::start("customer-api", env!("CARGO_BIN_EXE_customer-api"), &env).await;
    let slow = tokio::spawn(client().get(api.url("/customers/1")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    api.terminate();
    let status = api.wait_exit(Duration::from_secs(3)).await;
    assert!(status.success(), "exit {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "waited {:?}",
        sent.elapsed()
    );
    assert!(
        slow.await.expect("join").is_err(),
        "the 5 s request cannot have completed"
    );
}
