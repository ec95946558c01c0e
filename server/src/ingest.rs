//! Ingest, wire-compatible with the Segment HTTP Tracking API: `POST /v1/batch` and the
//! single calls `/v1/{track,page,screen,identify,group,alias}` (and analytics.js's short
//! forms `/v1/{b,t,p,s,i,g,a}`).
//!
//! Order of checks: address rate, Basic key rate, content type and encoding, size, JSON,
//! key (Basic user or body `writeKey`), browser origin, then each message. Valid messages
//! are stored in one transaction and the reply is sent after the commit; invalid ones are
//! listed by index in the reply and nothing else is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{json_response, ApiError};
use crate::limits::{MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use crate::message::{self, parse_time, Defaults};
use crate::state::App;
use crate::store::{NewEvent, Site};
use crate::{auth, body, cors};

/// `POST /v1/{call}`: a batch or a single call, by name.
pub async fn call(
    State(app): State<Arc<App>>,
    Path(call): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let kind = match call.as_str() {
        "batch" | "b" => None,
        "track" | "t" => Some("track"),
        "page" | "p" => Some("page"),
        "screen" | "s" => Some("screen"),
        "identify" | "i" => Some("identify"),
        "group" | "g" => Some("group"),
        "alias" | "a" => Some("alias"),
        _ => return ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route /v1/{call}")).into_response(),
    };
    let origin = cors::request_origin(&headers).map(str::to_owned);
    let mut response = match ingest(&app, peer, &headers, body, kind).await {
        Ok(response) => response,
        // A refused origin gets no CORS headers: the browser must not read the answer.
        Err(e) if e.code == "origin_not_allowed" => return e.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(origin) = origin {
        cors::allow(&mut response, &origin);
    }
    response
}

/// The parts of a batch body the server reads; other fields are ignored.
#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<Value>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    integrations: Option<Value>,
}

/// The key of a single-call body (the rest is the message itself).
#[derive(Deserialize)]
struct SingleBody {
    #[serde(rename = "writeKey", default)]
    write_key: Option<Value>,
}

/// One message that was not stored.
#[derive(Debug, Serialize)]
struct Rejected {
    index: usize,
    error: &'static str,
    message: String,
}

/// The reply to an ingest request that was read.
#[derive(Serialize)]
struct Reply {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Valid messages: newly stored plus already stored.
    accepted: usize,
    stored: usize,
    duplicates: usize,
    /// Accepted but dropped: they name a person who was erased.
    #[serde(skip_serializing_if = "is_zero")]
    dropped: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rejected: Vec<Rejected>,
}

async fn ingest(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    kind: Option<&'static str>,
) -> Result<Response, ApiError> {
    let now = Instant::now();
    let address = client_address(app, peer, headers);
    app.addr_limiter.check(&address, now).map_err(|s| ApiError::rate_limited("address", s))?;
    let basic_key = auth::basic_user(headers)?;
    if let Some(key) = &basic_key {
        app.key_limiter.check(key, now).map_err(|s| ApiError::rate_limited("write key", s))?;
    }
    let limit = if kind.is_none() { MAX_BATCH_BYTES } else { MAX_MESSAGE_BYTES };
    let bytes = body::read(headers, body, limit).await?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8"))?;
    let invalid_json = |e: serde_json::Error| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}"));
    let received_ms = crate::state::now_ms();

    let mut events: Vec<NewEvent> = Vec::new();
    let mut rejected = Vec::new();
    let site = match kind {
        None => {
            let batch: BatchBody = serde_json::from_str(text).map_err(invalid_json)?;
            let site = authenticate(app, basic_key, batch.write_key.as_deref(), headers, now).await?;
            let defaults = Defaults {
                kind: None,
                context: batch.context.as_ref().and_then(Value::as_object),
                integrations: batch.integrations.as_ref().filter(|v| v.is_object()),
                sent_at: batch.sent_at.as_ref().and_then(Value::as_str).and_then(parse_time),
                received_ms,
            };
            events.reserve(batch.batch.len());
            for (index, raw) in batch.batch.iter().enumerate() {
                match message::parse(raw.get(), &defaults) {
                    Ok(event) => events.push(event),
                    Err(r) => rejected.push(Rejected { index, error: r.code, message: r.message }),
                }
            }
            site
        }
        Some(kind) => {
            let single: SingleBody = serde_json::from_str(text).map_err(invalid_json)?;
            let body_key = single.write_key.as_ref().and_then(Value::as_str);
            let site = authenticate(app, basic_key, body_key, headers, now).await?;
            match message::parse(text, &Defaults { kind: Some(kind), received_ms, ..Defaults::default() }) {
                Ok(event) => events.push(event),
                Err(r) => rejected.push(Rejected { index: 0, error: r.code, message: r.message }),
            }
            site
        }
    };

    let accepted = events.len();
    // Stored and folded into profiles in one transaction (shared with concurrent
    // requests); this returns after its commit.
    let outcome = app.store.ingest(&site.id, events, received_ms).await.map_err(|e| ApiError::storage(&e))?;
    let dropped = outcome.dropped;
    let reply = Reply {
        success: rejected.is_empty(),
        error: None,
        message: None,
        accepted,
        stored: outcome.stored.len(),
        duplicates: outcome.duplicates,
        dropped,
        rejected: Vec::new(),
    };
    if rejected.is_empty() {
        return Ok(json_response(StatusCode::OK, &reply));
    }
    let too_large = rejected.iter().any(|r| r.error == "message_too_large");
    let (status, code) = if too_large {
        (StatusCode::PAYLOAD_TOO_LARGE, "message_too_large")
    } else {
        (StatusCode::BAD_REQUEST, "invalid_messages")
    };
    let message = format!(
        "{} of {} messages rejected (see `rejected`); the other {accepted} were accepted",
        rejected.len(),
        accepted + rejected.len()
    );
    Ok(json_response(status, &Reply { error: Some(code), message: Some(message), rejected, ..reply }))
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The site for the request's key (Basic user first, else the body's `writeKey`), after the
/// key's rate limit and the browser origin check.
async fn authenticate(
    app: &App,
    basic_key: Option<String>,
    body_key: Option<&str>,
    headers: &HeaderMap,
    now: Instant,
) -> Result<Arc<Site>, ApiError> {
    let key = match (basic_key, body_key) {
        (Some(key), _) => key,
        (None, Some(key)) if !key.is_empty() => {
            app.key_limiter.check(key, now).map_err(|s| ApiError::rate_limited("write key", s))?;
            key.to_string()
        }
        _ => {
            return Err(ApiError::unauthorized(
                "missing_write_key",
                "send the write key as the HTTP Basic user name, or as writeKey in the body",
            ))
        }
    };
    let site = app
        .sites
        .by_write_key(&app.store, &key)
        .await
        .map_err(|e| ApiError::storage(&e))?
        .ok_or_else(|| ApiError::unauthorized("invalid_write_key", "no site has this write key"))?;
    if let Some(origin) = cors::request_origin(headers) {
        if !cors::site_allows(&site, origin) {
            return Err(cors::forbidden(origin));
        }
    }
    Ok(site)
}

/// The address rate limits apply to: the socket peer, or with `--trust-forwarded-for` the
/// last `X-Forwarded-For` entry (the one the nearest proxy added, which a client cannot
/// forge).
pub fn client_address(app: &App, peer: SocketAddr, headers: &HeaderMap) -> String {
    if app.trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(address) = forwarded {
            return address.to_string();
        }
    }
    peer.ip().to_string()
}
