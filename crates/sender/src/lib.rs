//! The only outbound HTTP client of Hookline.
//!
//! One `reqwest` client (rustls, HTTP/1.1 keep-alive, connections reused per host) with:
//! - a resolver that drops every address `urlguard::may_connect` refuses, so the connection goes
//!   only to an address that was checked — a DNS answer cannot change between check and
//!   connect (no rebinding); IP-literal hosts, which bypass resolvers, are checked before sending;
//! - the attempt budget (connect + TLS + request + response headers) as one deadline;
//! - no redirects (a 3xx is a failed attempt), and the response body read up to a cap, then
//!   dropped.
//!
//! A failed delivery is data, not an error: `send` always returns an [`Outcome`].

mod resolver;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::HttpMethod;
use urlguard::UrlPolicy;

pub use resolver::{Lookup, LoopbackOnlyLookup, SystemLookup};

/// The largest part of a response body that is read (and discarded).
const BODY_CAP: usize = 64 * 1024;
/// How long reading the (discarded) body may take after the headers arrived.
const BODY_READ_BUDGET: Duration = Duration::from_millis(500);

/// How the sender behaves.
#[derive(Clone)]
pub struct SenderConfig {
    /// One attempt's budget: connect + TLS + request + response headers.
    pub timeout: Duration,
    /// Which addresses may be connected to (`--dev` allows loopback and private).
    pub policy: UrlPolicy,
    /// An extra trusted root CA in PEM (tests, private PKI).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Count any 2xx as success, not only 200.
    pub accept_any_2xx: bool,
    pub user_agent: String,
}

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("the extra CA is not a valid PEM certificate")]
    ExtraCa(#[source] reqwest::Error),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// A callback request, ready to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: HttpMethod,
    /// The full URL, query string included (for GET the fields are already in it).
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The exact bytes sent (empty for GET).
    pub body: Vec<u8>,
}

/// The error kinds of the delivery log (PRODUCT.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    Connect,
    Tls,
    Dns,
    Blocked,
    /// The endpoint answered, but not with success.
    Status,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Dns => "dns",
            ErrorKind::Blocked => "blocked",
            ErrorKind::Status => "status",
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status, when the endpoint answered.
    pub status_code: Option<u16>,
    /// `None` on success.
    pub error: Option<ErrorKind>,
    /// Start to response headers (or to the failure).
    pub latency: Duration,
    /// The raw `Retry-After` of a 429 or 503.
    pub retry_after: Option<String>,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }
}

/// Sends callbacks.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    config: Arc<SenderConfig>,
}

impl Sender {
    /// # Errors
    /// When the extra CA does not parse or the client cannot be built.
    pub fn new(config: SenderConfig) -> Result<Sender, SenderError> {
        Sender::with_lookup(config, Arc::new(SystemLookup))
    }

    /// A sender whose name lookups go through `lookup` (tests answer with chosen addresses).
    ///
    /// # Errors
    /// As [`Sender::new`].
    #[allow(clippy::disallowed_methods)] // This is the one place that builds an HTTP client.
    pub fn with_lookup(config: SenderConfig, lookup: Arc<dyn Lookup>) -> Result<Sender, SenderError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself and bypass the guarded resolver.
            .no_proxy()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(config.user_agent.clone())
            .dns_resolver(Arc::new(resolver::GuardedResolver::new(lookup, config.policy)));
        if let Some(pem) = &config.extra_ca_pem {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(SenderError::ExtraCa)?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(SenderError::Client)?;
        Ok(Sender {
            client,
            config: Arc::new(config),
        })
    }

    /// One attempt's budget.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Makes one attempt.
    pub async fn send(&self, request: OutboundRequest) -> Outcome {
        let started = Instant::now();
        let failed = |kind: ErrorKind, status_code: Option<u16>| Outcome {
            status_code,
            error: Some(kind),
            latency: started.elapsed(),
            retry_after: None,
        };
        let url = match reqwest::Url::parse(&request.url) {
            Ok(url) => url,
            Err(_) => return failed(ErrorKind::Connect, None),
        };
        if let Some(ip) = literal_ip(&url) {
            if !urlguard::may_connect(ip, self.config.policy) {
                return failed(ErrorKind::Blocked, None);
            }
        }
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if request.method == HttpMethod::Post {
            builder = builder.body(request.body);
        }
        let response = match tokio::time::timeout(self.config.timeout, builder.send()).await {
            Err(_elapsed) => return failed(ErrorKind::Timeout, None),
            Ok(Err(error)) => return failed(classify(&error), None),
            Ok(Ok(response)) => response,
        };
        let latency = started.elapsed();
        let status = response.status();
        let retry_after = (status.as_u16() == 429 || status.as_u16() == 503)
            .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        drain(response).await;
        let success = status.as_u16() == 200 || (self.config.accept_any_2xx && status.is_success());
        Outcome {
            status_code: Some(status.as_u16()),
            error: (!success).then_some(ErrorKind::Status),
            latency,
            retry_after,
        }
    }
}

/// Reads up to [`BODY_CAP`] of the body so the connection can be reused; a larger or slower
/// body is dropped (and its connection with it).
async fn drain(mut response: reqwest::Response) {
    let mut read = 0usize;
    let _ = tokio::time::timeout(BODY_READ_BUDGET, async {
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > BODY_CAP {
                break;
            }
        }
    })
    .await;
}

fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Names the error kind of a failed request from its source chain.
fn classify(error: &reqwest::Error) -> ErrorKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<resolver::ResolveError>() {
            return match refused {
                resolver::ResolveError::Blocked(_) => ErrorKind::Blocked,
                resolver::ResolveError::Lookup(_) => ErrorKind::Dns,
            };
        }
        if is_tls(cause) {
            kind = ErrorKind::Tls;
        }
        source = cause.source();
    }
    kind
}

/// A rustls error, possibly inside nested `io::Error`s (whose `source()` skips the error they
/// wrap, so the plain chain walk cannot see it).
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_tls(inner))
}
