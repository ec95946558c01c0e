//! The HTTP application: routes, and serving until a shutdown signal (after which requests
//! in flight finish, so every acknowledged batch is committed). The state every handler
//! shares is `crate::state`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::{json_response, ApiError};
pub use crate::state::{now_ms, App};
use crate::store::Store;
use crate::{
    abandon, api, campaigns, catalog, cors, coupons, dashboard, email, erase, feed, ingest, site_config, webhooks,
};

/// All routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/{call}", post(ingest::call).options(cors::preflight))
        .route("/v1/config", get(site_config::get).put(site_config::put).options(cors::preflight))
        .route("/v1/campaigns", get(campaigns::api::get).put(campaigns::api::put))
        .route("/v1/campaigns/{id}/report", get(campaigns::report::get))
        .route("/v1/catalog", axum::routing::put(catalog::api::put))
        .route("/v1/catalog/feed", get(catalog::feed::get).options(cors::preflight))
        .route("/v1/coupons", post(coupons::issue).options(cors::preflight))
        .route("/v1/profile", get(api::read_back).options(cors::preflight))
        .route("/v1/profiles", get(api::list))
        .route("/v1/profiles/{user_id}", get(api::get_user).delete(erase::delete_user))
        .route("/v1/profiles/anonymous/{anonymous_id}", get(api::get_anonymous).delete(erase::delete_anonymous))
        .route("/v1/changes", get(feed::get))
        .route("/v1/webhooks", get(webhooks::api::list_all).post(webhooks::api::create))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::api::delete))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::api::deliveries))
        .route("/v1/unsubscribe", get(email::unsubscribe::handle).post(email::unsubscribe::handle))
        .route("/v1/dashboard/summary", get(dashboard::summary::get))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/dashboard.js", get(dashboard::script))
        .route("/dashboard/dashboard.css", get(dashboard::style))
        .route("/dashboard/favicon.svg", get(dashboard::icon))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(app)
}

async fn health() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({ "ok": true }))
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// `nudge-server serve`: opens (and migrates) the store, listens, and prints
/// `nudge-server listening on http://ADDR` once requests can be sent.
pub async fn run(config: Config) -> Result<(), String> {
    let store = Store::open(&config.database, config.db_connections)
        .await
        .map_err(|e| format!("cannot open {}: {e}", config.database.describe()))?;
    let listener =
        TcpListener::bind(config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("nudge-server listening on http://{address} ({})", config.database.describe());
    let worker = webhooks::worker::start(&store, &config.webhooks)?;
    let abandon = abandon::start(&store, &config.abandon);
    let mail = email::worker::start(&store, &config.email, &format!("http://{address}"))?;
    serve(listener, App::new(store.clone(), &config), shutdown_signal()).await.map_err(|e| e.to_string())?;
    if let Some(worker) = worker {
        worker.stop().await;
    }
    if let Some(w) = abandon {
        w.stop().await;
    }
    if let Some(w) = mail {
        w.stop().await;
    }
    store.close().await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
