//! orders: POST /orders {item, amountCents} with the caller's bearer token: verifies it with
//! auth, charges through payments, asks notifications to confirm, and stores the order.
//! GET /orders/{id}. A failing dependency turns into 503 (unavailable), 504 (timeout) or 502
//! (it failed) naming the dependency, and counts as `app_errors_total{kind="downstream"}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use platform_services::AppError;
use platform_services::client::{Downstream, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewOrder {
    item: String,
    amount_cents: i64,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    user: String,
    item: String,
    amount_cents: i64,
    charge_id: String,
    notified: bool,
}

#[derive(Clone)]
struct App {
    auth: Downstream,
    payments: Downstream,
    notifications: Downstream,
    orders: Arc<Mutex<BTreeMap<String, Order>>>,
}

fn refused(dependency: &str, status: StatusCode, message: String) -> AppError {
    // A dependency refusing what we sent is our fault unless it is about the caller.
    if status == StatusCode::UNAUTHORIZED {
        AppError::new(StatusCode::UNAUTHORIZED, message)
    } else {
        AppError::downstream(
            StatusCode::BAD_GATEWAY,
            format!("{dependency} refused the request ({status}): {message}"),
        )
    }
}

async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "no bearer token"))?;
    if new.amount_cents <= 0 || new.item.trim().is_empty() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "item must not be empty and amountCents must be positive",
        ));
    }
    let user = match app.auth.get::<Value>("/verify", Some(token)).await? {
        Reply::Ok(v) => v["user"].as_str().unwrap_or_default().to_string(),
        Reply::Refused(status, message) => return Err(refused("auth", status, message)),
    };
    let id = format!("ord_{:012x}", fastrand::u64(..) >> 16);
    let charge = match app
        .payments
        .post::<_, Value>(
            "/charges",
            &json!({"orderId": id, "amountCents": new.amount_cents}),
        )
        .await?
    {
        Reply::Ok(v) => v["id"].as_str().unwrap_or_default().to_string(),
        Reply::Refused(status, message) => return Err(refused("payments", status, message)),
    };
    let message = format!("order {id} for {} confirmed", new.item);
    match app
        .notifications
        .post::<_, Value>("/notifications", &json!({"to": user, "message": message}))
        .await?
    {
        Reply::Ok(_) => {}
        Reply::Refused(status, message) => return Err(refused("notifications", status, message)),
    }
    let order = Order {
        id: id.clone(),
        user,
        item: new.item,
        amount_cents: new.amount_cents,
        charge_id: charge,
        notified: true,
    };
    app.orders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, order.clone());
    Ok((StatusCode::CREATED, Json(order)))
}

async fn read(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Order>, AppError> {
    let orders = app.orders.lock().unwrap_or_else(|e| e.into_inner());
    orders
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("no order {id}")))
}

fn main() -> std::process::ExitCode {
    platform_services::server::main("orders", |shared| async move {
        let app = App {
            auth: Downstream::new(&shared, "auth", "AUTH_URL")?,
            payments: Downstream::new(&shared, "payments", "PAYMENTS_URL")?,
            notifications: Downstream::new(&shared, "notifications", "NOTIFICATIONS_URL")?,
            orders: Arc::default(),
        };
        Ok((
            Router::new()
                .route("/orders", post(create))
                .route("/orders/{id}", get(read)),
            app,
        ))
    })
}
