//! customer-api: customers, in memory. POST/GET /customers, GET/DELETE /customers/{id}.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use platform_services::AppError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize)]
struct Customer {
    id: u64,
    name: String,
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    name: String,
    email: String,
}

#[derive(Clone, Default)]
struct Store {
    next: Arc<AtomicU64>,
    customers: Arc<RwLock<BTreeMap<u64, Customer>>>,
}

impl Store {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Customer>> {
        self.customers.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Customer>> {
        self.customers.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(id: u64) -> AppError {
    AppError::new(StatusCode::NOT_FOUND, format!("no customer {id}"))
}

async fn create(
    State(store): State<Store>,
    Json(new): Json<NewCustomer>,
) -> Result<(StatusCode, Json<Customer>), AppError> {
    if new.name.trim().is_empty() || !new.email.contains('@') {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must not be empty and email must contain @",
        ));
    }
    let id = store.next.fetch_add(1, Ordering::Relaxed) + 1;
    let customer = Customer {
        id,
        name: new.name,
        email: new.email,
    };
    store.write().insert(id, customer.clone());
    Ok((StatusCode::CREATED, Json(customer)))
}

async fn list(State(store): State<Store>) -> Json<Vec<Customer>> {
    Json(store.read().values().cloned().collect())
}

async fn read(State(store): State<Store>, Path(id): Path<u64>) -> Result<Json<Customer>, AppError> {
    store
        .read()
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(id))
}

async fn delete(State(store): State<Store>, Path(id): Path<u64>) -> Result<StatusCode, AppError> {
    store
        .write()
        .remove(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| not_found(id))
}

fn main() -> std::process::ExitCode {
    platform_services::server::main("customer-api", |_| async {
        let routes = Router::new()
            .route("/customers", get(list).post(create))
            .route("/customers/{id}", get(read).delete(delete));
        Ok((routes, Store::default()))
    })
}
