//! Reading a request body under the size and time limits, in a way a reverse proxy can read:
//! an oversized body of up to [`MAX_DRAINED_BODY`] bytes is read to its end and thrown away
//! before the 413 is sent, so the proxy's write completes and it reads the answer instead of
//! seeing its write fail (which nginx counts as the instance failing).

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};

use super::MAX_DRAINED_BODY;
use crate::error::ApiError;

/// Why a body was not read: the answer to send, and whether to close the connection after it
/// (`Connection: close`), as it must be when part of the body is still unread.
#[derive(Debug)]
pub struct BodyRefusal {
    /// 413 (too large), 408 (too slow) or 400 (the body broke off).
    pub error: ApiError,
    /// The connection cannot carry another request: answer with `Connection: close`.
    pub close: bool,
}

impl BodyRefusal {
    /// The header the answer carries besides its content type: `Connection: close` when the
    /// connection must close.
    pub fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        self.close
            .then(|| (CONNECTION, HeaderValue::from_static("close")))
    }
}

/// A request's `Content-Length`, when it has one valid one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads `body` (its chunks; `announced` is its `Content-Length`, if any) up to `limit` bytes
/// within `timeout`. A body over the limit is drained up to [`MAX_DRAINED_BODY`] bytes (or the
/// limit, if larger; within the same time) and refused with 413; one announced larger than that
/// is refused at once.
pub async fn read_body<S, B, E>(
    body: S,
    announced: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, BodyRefusal>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let too_large = |close| BodyRefusal {
        error: ApiError::payload_too_large(limit),
        close,
    };
    let drain_bound = MAX_DRAINED_BODY.max(limit as u64);
    if announced.is_some_and(|length| length > drain_bound) {
        return Err(too_large(true));
    }
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut bytes = Vec::with_capacity(announced.map_or(0, |n| n.min(limit as u64) as usize));
        let mut seen: u64 = 0;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                return Err(BodyRefusal {
                    error: ApiError::bad_request("The request body broke off"),
                    close: true,
                });
            };
            let chunk = chunk.as_ref();
            seen += chunk.len() as u64;
            if seen > drain_bound {
                return Err(too_large(true));
            }
            if seen <= limit as u64 {
                bytes.extend_from_slice(chunk);
            }
        }
        if seen > limit as u64 {
            // Read to its end: the connection can carry the next request.
            return Err(too_large(false));
        }
        Ok(bytes)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(BodyRefusal {
            error: ApiError::detail(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            ),
            close: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Vec<u8>, ()>> {
        stream::iter(sizes.iter().map(|n| Ok(vec![b'x'; *n])).collect::<Vec<_>>())
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let bytes = read_body(chunks(&[10, 20]), Some(30), 64, SECOND)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 30);
    }

    #[tokio::test]
    async fn an_oversized_body_is_drained_then_refused_keeping_the_connection() {
        let refusal = read_body(chunks(&[16 * 1024; 4]), None, 16 * 1024, SECOND)
            .await
            .unwrap_err();
        assert_eq!(refusal.error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!refusal.close, "the whole body was read");
    }

    #[tokio::test]
    async fn a_body_past_the_drain_bound_is_refused_and_closed() {
        let announced = read_body(chunks(&[]), Some(MAX_DRAINED_BODY + 1), 16, SECOND)
            .await
            .unwrap_err();
        assert_eq!(announced.error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(announced.close);
        let streamed = read_body(chunks(&[600 * 1024, 600 * 1024]), None, 16, SECOND)
            .await
            .unwrap_err();
        assert_eq!(streamed.error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(streamed.close);
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_answered_408_and_closed() {
        let stalled = stream::iter(vec![Ok::<_, ()>(vec![1u8; 4])]).chain(stream::pending());
        let refusal = read_body(stalled, Some(100), 1024, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(refusal.error.status, StatusCode::REQUEST_TIMEOUT);
        assert!(refusal.close);
    }

    #[tokio::test]
    async fn a_broken_body_is_a_400() {
        let broken = stream::iter(vec![Ok(vec![1u8; 4]), Err(())]);
        let refusal = read_body(broken, None, 1024, SECOND).await.unwrap_err();
        assert_eq!(refusal.error.status, StatusCode::BAD_REQUEST);
    }
}
