//! Reading a request body: the content type must be JSON (`application/json`, or
//! `text/plain` holding JSON, which is what `sendBeacon` and preflight-free `fetch` send),
//! gzip is decoded, and the size limit applies to the decoded bytes.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Media types of a JSON body.
pub const JSON_TYPES: &[&str] = &["application/json", "text/plain"];

/// Checks `Content-Type` and `Content-Encoding`, then reads and decodes the body, refusing
/// more than `limit` bytes before or after decoding.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    read_typed(headers, body, limit, JSON_TYPES).await
}

/// [`read`] for a body whose `Content-Type` is one of `types`.
pub async fn read_typed(headers: &HeaderMap, body: Body, limit: usize, types: &[&str]) -> Result<Vec<u8>, ApiError> {
    check_content_type(headers, types)?;
    let gzip = gzip_encoded(headers)?;
    let too_large = || ApiError::too_large(format!("the body may be at most {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::bad_request("invalid_body", "the request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    if !gzip {
        return Ok(bytes);
    }
    let mut decoded = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|_| ApiError::bad_request("invalid_gzip", "the body is not valid gzip"))?;
    if decoded.len() > limit {
        return Err(too_large());
    }
    Ok(decoded)
}

/// The media type of the request (`Content-Type` without parameters, lowercase).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn check_content_type(headers: &HeaderMap, types: &[&str]) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(media) if types.contains(&media.as_str()) => Ok(()),
        _ if types == JSON_TYPES => Err(ApiError::unsupported(
            "unsupported_content_type",
            "Content-Type must be application/json (or text/plain)",
        )),
        _ => {
            Err(ApiError::unsupported("unsupported_content_type", format!("Content-Type must be {}", types.join(", "))))
        }
    }
}

fn gzip_encoded(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(false) };
    match value.to_str().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(ApiError::unsupported("unsupported_content_encoding", "Content-Encoding must be gzip or absent")),
    }
}
