//! notifications: POST /notifications {to, message} records a notification as sent (202);
//! GET /notifications lists them.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use platform_services::AppError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Notification {
    #[serde(default)]
    id: u64,
    to: String,
    message: String,
}

type Sent = Arc<Mutex<Vec<Notification>>>;

async fn send(
    State(sent): State<Sent>,
    Json(mut n): Json<Notification>,
) -> Result<(StatusCode, Json<Notification>), AppError> {
    if n.to.trim().is_empty() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "to must not be empty",
        ));
    }
    let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
    n.id = sent.len() as u64 + 1;
    sent.push(n.clone());
    Ok((StatusCode::ACCEPTED, Json(n)))
}

async fn list(State(sent): State<Sent>) -> Json<Vec<Notification>> {
    Json(sent.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

fn main() -> std::process::ExitCode {
    platform_services::server::main("notifications", |_| async {
        Ok((
            Router::new().route("/notifications", get(list).post(send)),
            Sent::default(),
        ))
    })
}
