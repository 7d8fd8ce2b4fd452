//! The app over HTTP/1.1 (protocol spec C2, C3, C5): `GET /dapr/subscribe`,
//! `POST /<route>` with the CloudEvent, `OPTIONS` and `POST /<binding>`, and
//! the health probe.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::Verdict;
use super::subscriptions::{AppSubscription, Programmatic};
use crate::api::cloudevents::CLOUDEVENT_CONTENT_TYPE;
use crate::api::lenient;
use crate::kinds::Metadata;
use crate::kinds::input_binding::InputEvent;

/// Deadline of the `OPTIONS /<binding>` probe (daprd's
/// `--app-binding-options-timeout` default).
const OPTIONS_TIMEOUT: Duration = Duration::from_secs(3);

/// Headers daprd never copies from message metadata (hop-by-hop, and the
/// ones it sets itself).
const SKIPPED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
];

/// An HTTP app at `http://<address>:<port>`.
pub struct HttpApp {
    client: reqwest::Client,
    base: String,
    app_id: String,
}

/// The answer body of a pub/sub delivery: `{"status": "SUCCESS" | "RETRY" | "DROP"}`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: String,
}

impl HttpApp {
    /// A client for the app at `authority` (`host:port`).
    pub fn new(authority: &str, app_id: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        Ok(Self { client, base: format!("http://{authority}"), app_id: app_id.to_owned() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// `GET /dapr/subscribe`: 200 → the list; 404 → none; another status →
    /// none, logged; a connection error → `Err` (the caller retries).
    pub async fn list_subscriptions(&self) -> Result<Vec<AppSubscription>, String> {
        let response = self
            .client
            .get(self.url("/dapr/subscribe"))
            .header(CONTENT_TYPE, "application/json")
            .header("dapr-app-id", &self.app_id)
            .send()
            .await
            .map_err(|e| format!("GET /dapr/subscribe: {e}"))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            other => {
                tracing::error!("GET /dapr/subscribe answered {other}: no programmatic subscriptions");
                return Ok(Vec::new());
            }
        }
        let body = response.bytes().await.map_err(|e| format!("GET /dapr/subscribe: {e}"))?;
        match lenient::from_slice::<Vec<Programmatic>>(&body) {
            Ok(list) => Ok(list.into_iter().filter_map(|p| p.into_subscription("GET /dapr/subscribe")).collect()),
            Err(e) => {
                tracing::error!(
                    "GET /dapr/subscribe answered JSON plughost cannot read ({e}): no programmatic subscriptions"
                );
                Ok(Vec::new())
            }
        }
    }

    /// `POST /<path>` with the CloudEvent; the verdict per daprd's table.
    pub async fn deliver_event(&self, path: &str, envelope: &[u8], metadata: &Metadata) -> Verdict {
        let mut headers = metadata_headers(metadata);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CLOUDEVENT_CONTENT_TYPE));
        let sent = self.client.post(self.url(path)).headers(headers).body(envelope.to_vec()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Verdict::Retry(format!("POST {path}: {e}")),
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Verdict::Drop(format!("POST {path} answered 404"));
        }
        if !status.is_success() {
            return Verdict::Retry(format!("POST {path} answered {status}"));
        }
        let body = response.bytes().await.unwrap_or_default();
        // An empty body, or one that is not a JSON object, is a success.
        let answer = lenient::from_slice::<Answer>(&body).map(|a| a.status).unwrap_or_default();
        verdict(&answer, path)
    }

    /// `OPTIONS /<name>`: 2xx or 405 means the app handles the binding.
    pub async fn handles_binding(&self, name: &str) -> Result<bool, String> {
        let request = self.client.request(Method::OPTIONS, self.url(name)).timeout(OPTIONS_TIMEOUT);
        let response = request.send().await.map_err(|e| format!("OPTIONS /{name}: {e}"))?;
        let status = response.status();
        Ok(status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED)
    }

    /// `POST /<name>` with the event's bytes; a 2xx answer's body is the reply.
    pub async fn deliver_binding(&self, name: &str, event: &InputEvent) -> Result<Vec<u8>, String> {
        let mut headers = metadata_headers(&event.metadata);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let response = self
            .client
            .post(self.url(name))
            .headers(headers)
            .body(event.data.clone())
            .send()
            .await
            .map_err(|e| format!("POST /{name}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("POST /{name}: {e}"))?;
        if status.is_success() { Ok(body.to_vec()) } else { Err(format!("POST /{name} answered {status}")) }
    }

    /// `GET <path>`: healthy iff 2xx within `timeout`.
    pub async fn probe(&self, path: &str, timeout: Duration) -> Result<(), String> {
        let response = self.client.get(self.url(path)).timeout(timeout).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() { Ok(()) } else { Err(format!("GET {path} answered {}", response.status())) }
    }
}

/// `status` of a 2xx answer: exact, upper-case names (as daprd).
fn verdict(status: &str, path: &str) -> Verdict {
    match status {
        "" | "SUCCESS" => Verdict::Success,
        "DROP" => Verdict::Drop(format!("POST {path} answered DROP")),
        "RETRY" => Verdict::Retry(format!("POST {path} answered RETRY")),
        other => Verdict::Retry(format!("POST {path} answered the unknown status `{other}`")),
    }
}

/// One header per metadata entry, as daprd: `grpc-` becomes `dapr-`, names
/// ending in `-bin` and hop-by-hop names are skipped, and so is anything that
/// is not a valid header.
fn metadata_headers(metadata: &Metadata) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (key, value) in metadata {
        let key = key.to_ascii_lowercase();
        if key.ends_with("-bin") || SKIPPED_HEADERS.contains(&key.as_str()) {
            continue;
        }
        let key = match key.strip_prefix("grpc-") {
            Some(rest) => format!("dapr-{rest}"),
            None => key,
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value.as_str())) {
            headers.insert(name, value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_like_daprd() {
        let cases = [
            ("", Verdict::Success),
            ("SUCCESS", Verdict::Success),
            ("DROP", Verdict::Drop("POST /r answered DROP".into())),
            ("RETRY", Verdict::Retry("POST /r answered RETRY".into())),
            ("success", Verdict::Retry("POST /r answered the unknown status `success`".into())),
        ];
        for (status, expected) in cases {
            assert_eq!(verdict(status, "/r"), expected, "{status:?}");
        }
    }

    #[test]
    fn metadata_becomes_headers() {
        let metadata: Metadata = [("pubsubname", "ps"), ("grpc-trace", "t"), ("x-bin", "b"), ("Content-Length", "9")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let headers = metadata_headers(&metadata);
        assert_eq!(headers.len(), 2);
        assert_eq!((headers["pubsubname"].to_str().unwrap(), headers["dapr-trace"].to_str().unwrap()), ("ps", "t"));
    }
}
