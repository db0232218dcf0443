//! The delivery tests' callback receiver: a real HTTP (or HTTPS) server on `127.0.0.1:0` that
//! records every request it gets and answers as each test scripted it, per path.
//!
//! - **Recording**: method, path, query, headers, body bytes and the arrival instant, taken when
//!   the request arrives (before any scripted delay), so gaps between attempts can be measured.
//! - **Scripts**: per path, a queue of replies used one per request, then a reply for all later
//!   requests (`Script::fail_first(3, Reply::status(500))` is "500 three times, then 200"). A
//!   reply has a status, headers (`Retry-After`) and a delay before answering (to exceed the
//!   attempt budget). Unscripted paths answer 200.
//! - **Signals**: every arrival bumps a `watch` channel, so tests wait for "N requests to /x
//!   arrived" with a deadline instead of sleeping.
//! - **TLS**: [`TestCa`] makes a throwaway CA and a `localhost` leaf; [`Receiver::start_tls`]
//!   serves with it, and counts handshakes that failed (a client that does not trust the CA).
//!
//! It is not a signature checker: tests verify what it recorded with the `signing` crate.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The largest request body recorded (callbacks are small forms).
const BODY_LIMIT: usize = 1 << 20;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_BUDGET: Duration = Duration::from_secs(5);

/// A running receiver. Dropping it stops it.
pub struct Receiver {
    base_url: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// `base URL + path + query`: the URL the sender asked for.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    delay: Duration,
}

/// How a path answers: `first` in order, one per request, then `then` forever.
#[derive(Debug, Clone)]
pub struct Script {
    first: VecDeque<Reply>,
    then: Reply,
}

/// A throwaway certificate authority and its `localhost` server certificate.
pub struct TestCa {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

struct Shared {
    base_url: String,
    scripts: Mutex<HashMap<String, Script>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// Bumped on every arrival; waiters subscribe before they look.
    signal: watch::Sender<usize>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    failed_handshakes: AtomicUsize,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay` (the request is recorded at once).
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

impl Script {
    /// The same reply to every request.
    pub fn always(reply: Reply) -> Script {
        Script {
            first: VecDeque::new(),
            then: reply,
        }
    }

    /// `failing` for the first `n` requests, then 200.
    pub fn fail_first(n: usize, failing: Reply) -> Script {
        Script {
            first: std::iter::repeat_n(failing, n).collect(),
            then: Reply::ok(),
        }
    }

    /// `replies` in order, one per request, then `then`.
    pub fn sequence(replies: Vec<Reply>, then: Reply) -> Script {
        Script {
            first: replies.into(),
            then,
        }
    }

    fn next(&mut self) -> Reply {
        self.first.pop_front().unwrap_or_else(|| self.then.clone())
    }
}

impl Arrival {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A header that must be there.
    #[track_caller]
    pub fn expect_header(&self, name: &str) -> &str {
        self.header(name).unwrap_or_else(|| {
            panic!(
                "{} {} has no {name} header: {:?}",
                self.method, self.url, self.headers
            )
        })
    }

    /// The callback's fields: the form body of a POST, the query of a GET.
    pub fn fields(&self) -> Vec<(String, String)> {
        let encoded: &[u8] = if self.method == "GET" {
            self.query.as_deref().unwrap_or("").as_bytes()
        } else {
            &self.body
        };
        url::form_urlencoded::parse(encoded).into_owned().collect()
    }

    /// One callback field (the last one of that name, as a form parser would keep).
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    #[track_caller]
    pub fn expect_field(&self, name: &str) -> String {
        self.field(name).unwrap_or_else(|| {
            panic!(
                "{} {} has no field {name}: {:?}",
                self.method,
                self.url,
                self.fields()
            )
        })
    }

    /// `X-Hookline-Event-Id`.
    #[track_caller]
    pub fn event_id(&self) -> String {
        self.expect_header("x-hookline-event-id").to_owned()
    }

    /// `X-Hookline-Attempt` as a number.
    #[track_caller]
    pub fn attempt(&self) -> u32 {
        let value = self.expect_header("x-hookline-attempt");
        value
            .parse()
            .unwrap_or_else(|_| panic!("X-Hookline-Attempt {value:?} is not a number"))
    }

    /// `X-Hookline-Sequence` as a number.
    #[track_caller]
    pub fn sequence(&self) -> u32 {
        let value = self.expect_header("x-hookline-sequence");
        value
            .parse()
            .unwrap_or_else(|_| panic!("X-Hookline-Sequence {value:?} is not a number"))
    }
}

impl Receiver {
    /// A plain HTTP receiver on `127.0.0.1:0`.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let address = listener.local_addr().expect("receiver address");
        let shared = Shared::new(format!("http://{address}"));
        let app = router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            base_url: shared.base_url.clone(),
            shared,
            tasks: vec![server],
        }
    }

    /// An HTTPS receiver for `https://localhost:PORT` with `ca`'s server certificate.
    pub async fn start_tls(ca: &TestCa) -> Receiver {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the TLS receiver");
        let address = tcp.local_addr().expect("receiver address");
        let shared = Shared::new(format!("https://localhost:{}", address.port()));
        let acceptor = TlsAcceptor::from(Arc::new(ca.server_config()));
        let (connections, incoming) = mpsc::channel(64);
        let handshakes = {
            let shared = Arc::clone(&shared);
            tokio::spawn(accept_tls(tcp, acceptor, connections, shared))
        };
        let listener = TlsListener {
            incoming,
            local: address,
        };
        let app = router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            base_url: shared.base_url.clone(),
            shared,
            tasks: vec![handshakes, server],
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The URL of `path_and_query` on this receiver.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Scripts how `path` answers from now on (replacing its earlier script).
    pub fn on(&self, path: &str, script: Script) {
        lock(&self.shared.scripts).insert(path.to_owned(), script);
    }

    /// Every request so far, in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.shared.arrivals).clone()
    }

    /// The requests to `path` so far, in arrival order.
    pub fn arrivals_to(&self, path: &str) -> Vec<Arrival> {
        lock(&self.shared.arrivals)
            .iter()
            .filter(|a| a.path == path)
            .cloned()
            .collect()
    }

    /// The most requests this receiver was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed (the client refused the certificate, say).
    pub fn failed_handshakes(&self) -> usize {
        self.shared.failed_handshakes.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds for the arrivals so far; panics naming `what` after `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Arrival]) -> bool,
    ) -> Vec<Arrival> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut signal = self.shared.signal.subscribe();
        loop {
            // Subscribed before looking: an arrival after this look still wakes the wait.
            signal.borrow_and_update();
            {
                let arrivals = lock(&self.shared.arrivals);
                if done(&arrivals) {
                    return arrivals.clone();
                }
            }
            if tokio::time::timeout_at(deadline, signal.changed()).await.is_err() {
                let arrivals = self.arrivals();
                let summary: Vec<String> = arrivals
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {} seq={:?} attempt={:?}",
                            a.method,
                            a.path,
                            a.header("x-hookline-sequence"),
                            a.header("x-hookline-attempt")
                        )
                    })
                    .collect();
                panic!(
                    "receiver: gave up after {timeout:?} waiting for {what}; {} arrivals: {summary:#?}",
                    arrivals.len()
                );
            }
        }
    }

    /// Waits until at least `n` requests to `path` arrived and returns those.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Arrival> {
        self.wait_until(&format!("{n} requests to {path}"), timeout, |all| {
            all.iter().filter(|a| a.path == path).count() >= n
        })
        .await;
        self.arrivals_to(path)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Shared {
    fn new(base_url: String) -> Arc<Shared> {
        Arc::new(Shared {
            base_url,
            scripts: Mutex::new(HashMap::new()),
            arrivals: Mutex::new(Vec::new()),
            signal: watch::Sender::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            failed_handshakes: AtomicUsize::new(0),
        })
    }

    fn next_reply(&self, path: &str) -> Reply {
        lock(&self.scripts)
            .get_mut(path)
            .map_or_else(Reply::ok, Script::next)
    }

    fn record(&self, arrival: Arrival) {
        lock(&self.arrivals).push(arrival);
        self.signal.send_modify(|n| *n += 1);
    }
}

/// Counts a request as in flight until dropped (also when the client goes away mid-answer).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> InFlight<'a> {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(answer).with_state(shared)
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let _in_flight = InFlight::enter(&shared);
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.as_str().to_owned());
    let reply = shared.next_reply(&path);
    shared.record(Arrival {
        method: parts.method.as_str().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        url: format!("{}{path_and_query}", shared.base_url),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at: Instant::now(),
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Body::from("receiver"));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("a scripted status is valid");
    for (name, value) in &reply.headers {
        response.headers_mut().append(
            HeaderName::try_from(name.as_str()).expect("a scripted header name is valid"),
            HeaderValue::try_from(value.as_str()).expect("a scripted header value is valid"),
        );
    }
    response
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands TLS connections to axum once their handshake is done; a failed handshake (an
/// untrusting client) is counted and dropped without stopping the listener.
struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop ended (the receiver is stopping): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections and runs each handshake on its own task, so a stalled client does
/// not hold up the others.
async fn accept_tls(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    connections: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((stream, peer)) = tcp.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_BUDGET, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = connections.send((tls, peer)).await;
                }
                _ => {
                    shared.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
}

impl TestCa {
    /// A new CA (valid for the test's lifetime) and a leaf for `localhost` signed by it.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

        let ca_key = KeyPair::generate().expect("generating the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Hookline test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("self-signing the CA");

        let leaf_key = KeyPair::generate().expect("generating the leaf key");
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf parameters");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("signing the leaf");
        TestCa {
            ca_pem: ca.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate as PEM into `dir` (for `--extra-ca`) and returns the path.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("writing the CA PEM");
        path
    }

    fn server_config(&self) -> rustls::ServerConfig {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone())),
            )
            .expect("the leaf certificate and key match")
    }
}
