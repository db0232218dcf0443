//! A local HTTP endpoint for the calls tests: it answers every request 200 and records its
//! method, path, headers and form fields (POST body or GET query), so a test can read what a
//! callback carried (`timestamp`, `HangupCause`, `RecordingID`, `X-Hookline-Sequence`, …).
//!
//! It checks nothing by itself (signatures are the delivery tests' business) and only listens on
//! loopback, so the server under test must run with `--dev`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a test waits for callbacks to arrive.
const WAIT_DEADLINE: Duration = Duration::from_secs(15);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    /// The form fields, in the order they came.
    pub fields: Vec<(String, String)>,
}

/// A running receiver; dropping it stops it.
pub struct Receiver {
    base_url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: JoinHandle<()>,
}

impl Hit {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let address = listener.local_addr().expect("the receiver's address");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(Arc::clone(&hits));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            base_url: format!("http://{address}"),
            hits,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("the receiver's lock").clone()
    }

    /// Polls until `done` holds for the requests received so far, and returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + WAIT_DEADLINE;
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}; it got {:#?}",
                hits.iter()
                    .map(|h| (h.path.as_str(), h.field("Event")))
                    .collect::<Vec<_>>()
            );
            // Polling interval; the deadline above bounds the wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(hits): State<Arc<Mutex<Vec<Hit>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let form: &[u8] = if method == Method::GET {
        uri.query().unwrap_or("").as_bytes()
    } else {
        &body
    };
    let hit = Hit {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        fields: url::form_urlencoded::parse(form).into_owned().collect(),
    };
    hits.lock().expect("the receiver's lock").push(hit);
    StatusCode::OK
}
