//! payments: POST /charges {orderId, amountCents} captures a charge; GET /charges/{id}.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use platform_services::AppError;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChargeRequest {
    order_id: String,
    amount_cents: i64,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Charge {
    id: String,
    order_id: String,
    amount_cents: i64,
    status: &'static str,
}

type Charges = Arc<Mutex<BTreeMap<String, Charge>>>;

async fn charge(
    State(charges): State<Charges>,
    Json(req): Json<ChargeRequest>,
) -> Result<(StatusCode, Json<Charge>), AppError> {
    if req.amount_cents <= 0 {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amountCents must be positive",
        ));
    }
    let mut charges = charges.lock().unwrap_or_else(|e| e.into_inner());
    let charge = Charge {
        id: format!("ch_{}", charges.len() + 1),
        order_id: req.order_id,
        amount_cents: req.amount_cents,
        status: "captured",
    };
    charges.insert(charge.id.clone(), charge.clone());
    Ok((StatusCode::CREATED, Json(charge)))
}

async fn read(
    State(charges): State<Charges>,
    Path(id): Path<String>,
) -> Result<Json<Charge>, AppError> {
    let charges = charges.lock().unwrap_or_else(|e| e.into_inner());
    charges
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("no charge {id}")))
}

fn main() -> std::process::ExitCode {
    platform_services::server::main("payments", |_| async {
        let routes = Router::new()
            .route("/charges", post(charge))
            .route("/charges/{id}", get(read));
        Ok((routes, Charges::default()))
    })
}
