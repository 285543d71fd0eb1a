//! Serving the BrowserChannel client (`bcsocket.js`) from a configured file.

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Answers `GET` and `HEAD` for the client library, with an `ETag` built
/// from the file's size and modification time.
pub(super) async fn serve(path: &Path, method: &Method, headers: &HeaderMap) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (metadata, contents) = match tokio::fs::metadata(path).await {
        Ok(metadata) => match tokio::fs::read(path).await {
            Ok(contents) => (metadata, contents),
            Err(error) => return unreadable(path, error),
        },
        Err(error) => return unreadable(path, error),
    };
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis());
    let etag = format!("\"{}-{}\"", metadata.len(), modified);
    let etag_value = HeaderValue::from_str(&etag).expect("an ETag of digits and a dash");

    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if matches {
        let mut response = status(StatusCode::NOT_MODIFIED);
        response.headers_mut().insert(header::ETAG, etag_value);
        return response;
    }

    let length = contents.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(contents)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript"),
    );
    headers.insert(header::ETAG, etag_value);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn unreadable(path: &Path, error: std::io::Error) -> Response<Body> {
    tracing::warn!(path = %path.display(), %error, "cannot read the client library");
    status(StatusCode::NOT_FOUND)
}
