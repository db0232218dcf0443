//! The black-box fixture: starts the real `hookline` binary on `127.0.0.1:0` with a temporary
//! database, waits until it answers, and talks to it over HTTP.
//!
//! The database is SQLite (a file in the test's temporary directory) unless
//! `HOOKLINE_TEST_DATABASE=postgres` is set: then each [`DataDir`] gets a fresh database on the
//! PostgreSQL cluster this test process starts for itself ([`pgcluster::Cluster::shared`]).
//! [`DataDir::database_url`] is the one place that choice is made; [`backend`] tells the few
//! tests that must differ.
//!
//! It knows nothing of the server's internals: only the command line, the one line
//! `hookline listening on http://ADDR` the binary prints once bound, and the HTTP API. It is not
//! a test itself, but it checks one rule on every answer: a JSON body carries `api_id`, equal to
//! the `X-Api-Id` header.
//!
//! On drop the server gets SIGTERM and must exit with status 0 (PRODUCT.md §6), so every test
//! also checks graceful shutdown. A test that is already failing just kills it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgcluster::Cluster;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tempfile::TempDir;

/// The operator token every fixture server gets (the binary wants at least 16 characters).
pub const ADMIN_TOKEN: &str = "fixture-admin-token-0123456789";

/// The server key; the CLI gets the same one so that tokens it seals open in the server.
const SECRET_KEY: &str = "fixture secret key: long, random enough for tests";

/// How long the binary may take to print its listening line (a cold, busy CI machine).
const START_DEADLINE: Duration = Duration::from_secs(20);

/// How long the binary may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The line the binary prints once its listener is bound.
const LISTENING_PREFIX: &str = "hookline listening on ";

/// The environment variable that chooses the tests' database: `postgres`, or `sqlite` (the
/// default when unset).
pub const BACKEND_VAR: &str = "HOOKLINE_TEST_DATABASE";

/// The database the black-box tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend [`BACKEND_VAR`] chooses. Any other value is a mistake that would quietly test
/// SQLite twice, so it panics.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
        Ok("postgres" | "postgresql") => Backend::Postgres,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected \"postgres\" or \"sqlite\""),
    }
}

/// A temporary directory (the working directory of servers and CLI runs, where their key file
/// and logs go) and the database they share: an SQLite file in the directory, or a PostgreSQL
/// database created with it and dropped with it.
pub struct DataDir {
    dir: TempDir,
    /// The URL of this directory's PostgreSQL database, when [`backend`] is PostgreSQL.
    postgres: Option<String>,
    /// Whether dropping this directory drops its PostgreSQL database (the directory that
    /// created it; not one that shares it or was given it).
    owns_database: bool,
    /// Numbers the stderr files, so a restarted server does not overwrite its predecessor's.
    n_runs: u32,
    /// Where the SQLite file is, when not in the directory itself (a small disk of its own).
    sqlite_file: Option<PathBuf>,
    /// The SQLite URL's query (`busy_timeout_ms=…`), when a test sets one.
    sqlite_query: Option<String>,
}

/// What one `hookline serve` gets on its command line beyond the fixed settings.
struct Launch<'a> {
    extra_args: &'a [&'a str],
    admin_token: Option<&'a str>,
    secret_key: Option<&'a str>,
}

/// A running `hookline serve`. Dropping it shuts it down with SIGTERM and checks the exit.
pub struct Server {
    child: Option<Child>,
    base_url: String,
    client: reqwest::Client,
    data: Option<DataDir>,
    stderr_path: PathBuf,
    /// What the binary printed on stdout before its listening line (the `--dev` demo account).
    pub preamble: Vec<String>,
}

/// An account as created by the operator API or the CLI, with the only copy of its token.
#[derive(Debug, Clone)]
pub struct Account {
    pub auth_id: String,
    pub auth_token: String,
    /// The whole creation answer.
    pub json: Value,
}

/// An HTTP answer whose body, when there is one, is JSON carrying `api_id`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `Value::Null` for an empty body (204).
    pub json: Value,
}

impl DataDir {
    pub fn new() -> DataDir {
        let postgres = match backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                Cluster::shared()
                    .create_database()
                    .expect("creating a PostgreSQL database"),
            ),
        };
        DataDir {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
            owns_database: postgres.is_some(),
            postgres,
            n_runs: 0,
            sqlite_file: None,
            sqlite_query: None,
        }
    }

    /// This directory with its SQLite database at `file` (on a disk the test controls) and
    /// `query` on its URL. SQLite only.
    pub fn with_sqlite(mut self, file: Option<PathBuf>, query: Option<&str>) -> DataDir {
        assert!(
            self.postgres.is_none(),
            "a SQLite setting on a PostgreSQL data directory"
        );
        self.sqlite_file = file;
        self.sqlite_query = query.map(str::to_owned);
        self
    }

    /// Another directory on the same PostgreSQL database: a second node. It has its own key
    /// file place and logs, and does not drop the database (the original does).
    pub fn sharing(&self) -> DataDir {
        let url = self
            .postgres
            .clone()
            .expect("only a PostgreSQL database can be shared by several servers");
        DataDir::on_postgres(url)
    }

    /// A directory on a PostgreSQL database the test made itself (on its own cluster).
    pub fn on_postgres(url: String) -> DataDir {
        DataDir {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
            postgres: Some(url),
            owns_database: false,
            n_runs: 0,
            sqlite_file: None,
            sqlite_query: None,
        }
    }

    /// The database every server and CLI run on this directory uses; the same for the
    /// directory's whole life, so a restarted server finds what its predecessor wrote.
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => match &self.sqlite_query {
                Some(query) => format!("sqlite://{}?{query}", self.sqlite_path().display()),
                None => format!("sqlite://{}", self.sqlite_path().display()),
            },
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.sqlite_file
            .clone()
            .unwrap_or_else(|| self.dir.path().join("hookline.db"))
    }

    /// Everything the database holds, as bytes to search (for what must never be stored in
    /// plain text): the SQLite file and its write-ahead log, or `pg_dump --data-only`.
    pub fn database_contents(&self) -> Vec<u8> {
        match &self.postgres {
            Some(url) => Cluster::shared().dump_data(url).expect("dumping the database"),
            None => {
                let mut bytes = std::fs::read(self.sqlite_path()).expect("reading the database");
                let mut wal = self.sqlite_path().into_os_string();
                wal.push("-wal");
                bytes.extend(std::fs::read(wal).unwrap_or_default());
                bytes
            }
        }
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// Runs `hookline ARGS` with no server, no inherited `HOOKLINE_*` variables, in this
    /// directory. The caller passes the settings it wants.
    pub fn run_cli(&self, args: &[&str]) -> Output {
        self.cli(args).output().expect("running the hookline binary")
    }

    /// Like [`DataDir::run_cli`] for a command that should end by itself: killed after
    /// `deadline` if it did not (then its status is not a success).
    pub fn run_cli_within(&self, args: &[&str], deadline: Duration) -> Output {
        let child = self
            .cli(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the hookline binary");
        let id = child.id();
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match finished.recv_timeout(deadline) {
            Ok(output) => output.expect("waiting for the hookline binary"),
            Err(_) => {
                signal(id, "-KILL");
                finished
                    .recv()
                    .expect("the waiting thread answers")
                    .expect("waiting for the hookline binary")
            }
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
        command.args(args).current_dir(self.dir.path());
        clear_hookline_env(&mut command);
        command
    }

    /// `hookline accounts create --name NAME [--parent ID] --database … --secret-key …`,
    /// which must succeed and print the account as JSON.
    pub fn create_account_with_cli(&self, name: &str, parent: Option<&str>) -> Account {
        let database = self.database_url();
        let mut args = vec![
            "accounts",
            "create",
            "--name",
            name,
            "--database",
            &database,
            "--secret-key",
            SECRET_KEY,
        ];
        if let Some(parent) = parent {
            args.extend(["--parent", parent]);
        }
        account_from_cli_output(&self.run_cli(&args))
    }

    fn next_stderr_path(&mut self) -> PathBuf {
        self.n_runs += 1;
        self.dir.path().join(format!("serve-{}.stderr", self.n_runs))
    }
}

impl Drop for DataDir {
    /// Drops the PostgreSQL database (its servers are gone: a [`Server`] owns its directory),
    /// so a suite of hundreds of tests does not fill the disk with databases.
    fn drop(&mut self) {
        if let Some(url) = self.postgres.as_ref().filter(|_| self.owns_database) {
            if let Err(error) = Cluster::shared().drop_database(url) {
                eprintln!("dropping the test database {url}: {error}");
            }
        }
    }
}

/// Parses the JSON a successful `hookline accounts create` printed.
#[track_caller]
pub fn account_from_cli_output(output: &Output) -> Account {
    assert!(
        output.status.success(),
        "hookline accounts create failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout of accounts create is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    Account::from_creation(json)
}

fn clear_hookline_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
}

impl Server {
    /// A server on a fresh, empty database with the operator API on.
    pub async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// Like [`Server::start`] with extra `serve` arguments, e.g. `--dev`.
    pub async fn start_with(extra_args: &[&str]) -> Server {
        Server::start_on(DataDir::new(), extra_args).await
    }

    /// A server on an existing data directory (a database the CLI or an earlier server wrote).
    pub async fn start_on(data: DataDir, extra_args: &[&str]) -> Server {
        let launch = Launch {
            extra_args,
            admin_token: Some(ADMIN_TOKEN),
            secret_key: Some(SECRET_KEY),
        };
        Server::launch(data, &launch).await
    }

    /// A server without `--admin-token`: the operator API is off.
    pub async fn start_without_admin_token() -> Server {
        let launch = Launch {
            extra_args: &[],
            admin_token: None,
            secret_key: Some(SECRET_KEY),
        };
        Server::launch(DataDir::new(), &launch).await
    }

    /// A server without `--secret-key`: it uses (or creates) the key file in the data directory.
    pub async fn start_with_key_file(data: DataDir) -> Server {
        let launch = Launch {
            extra_args: &[],
            admin_token: Some(ADMIN_TOKEN),
            secret_key: None,
        };
        Server::launch(data, &launch).await
    }

    async fn launch(mut data: DataDir, launch: &Launch<'_>) -> Server {
        let stderr_path = data.next_stderr_path();
        let stderr = File::create(&stderr_path).expect("creating the stderr file");
        let database = data.database_url();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
        command
            // Tests reach no resolver: example.com URLs fail as `dns` without a query leaving.
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--offline-dns",
                "--database",
                &database,
            ])
            .args(launch.extra_args)
            .current_dir(data.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        clear_hookline_env(&mut command);
        // Tests place calls and requests far faster than the production limits allow; the rate
        // limit tests turn them on with flags (a flag beats the environment).
        for limit in ["API", "CALL", "OPERATOR"] {
            command.env(format!("HOOKLINE_{limit}_RATE_LIMIT"), "0");
        }
        if let Some(token) = launch.admin_token {
            command.args(["--admin-token", token]);
        }
        if let Some(key) = launch.secret_key {
            command.args(["--secret-key", key]);
        }
        let mut child = command.spawn().expect("spawning the hookline binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = read_lines_in_background(stdout);

        let mut server = Server {
            child: Some(child),
            base_url: String::new(),
            client: http_client(),
            data: Some(data),
            stderr_path,
            preamble: Vec::new(),
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(LISTENING_PREFIX) {
                    Some(url) => {
                        server.base_url = url.trim().to_owned();
                        break;
                    }
                    None => server.preamble.push(line),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "hookline never printed its listening line; stderr:\n{}",
                        server.stderr()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("hookline exited before listening; stderr:\n{}", server.stderr())
                }
            }
        }
        server.wait_until_healthy(deadline).await;
        server
    }

    async fn wait_until_healthy(&self, deadline: Instant) {
        loop {
            // `close`: the probe leaves no idle connection behind (the connection cap test counts).
            let probe = self
                .client
                .get(self.url("/healthz"))
                .header("connection", "close");
            if let Ok(response) = probe.send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "GET /healthz never answered 200; stderr:\n{}",
                self.stderr()
            );
            // Back off between attempts; the deadline above bounds the wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the server wrote to stderr so far (its logs), for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_else(|e| format!("(unreadable: {e})"))
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn data(&self) -> &DataDir {
        self.data
            .as_ref()
            .expect("the data directory lives as long as the server")
    }

    /// A request without credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `X-Auth-ID` and `X-Auth-Token`.
    pub fn authed(&self, account: &Account, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .header("X-Auth-ID", &account.auth_id)
            .header("X-Auth-Token", &account.auth_token)
    }

    /// A request with HTTP Basic credentials (the same pair).
    pub fn basic(&self, account: &Account, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .basic_auth(&account.auth_id, Some(&account.auth_token))
    }

    /// A request with the operator token.
    pub fn operator(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    /// `GET path` as `account`.
    pub async fn get(&self, account: &Account, path: &str) -> Answer {
        send(self.authed(account, Method::GET, path)).await
    }

    /// `METHOD path` as `account` with a JSON body.
    pub async fn send_json(&self, account: &Account, method: Method, path: &str, body: &Value) -> Answer {
        send(self.authed(account, method, path).json(body)).await
    }

    /// `DELETE path` as `account`.
    pub async fn delete(&self, account: &Account, path: &str) -> Answer {
        send(self.authed(account, Method::DELETE, path)).await
    }

    /// `POST /api/v1/admin/accounts {"name": …}`, which must answer 201.
    pub async fn admin_create_account(&self, name: &str) -> Account {
        self.admin_create(&serde_json::json!({ "name": name })).await
    }

    /// A sub-account of `parent`, created by the operator API.
    pub async fn admin_create_sub_account(&self, name: &str, parent: &Account) -> Account {
        self.admin_create(&serde_json::json!({ "name": name, "parent_auth_id": parent.auth_id }))
            .await
    }

    async fn admin_create(&self, body: &Value) -> Account {
        let answer = send(self.operator(Method::POST, "/api/v1/admin/accounts").json(body)).await;
        Account::from_creation(answer.expect(201))
    }

    /// Sends SIGTERM and waits for the exit; gives back the data directory for a restart.
    pub fn stop(mut self) -> (ExitStatus, DataDir) {
        let status = self.terminate();
        let data = self.data.take().expect("the data directory is still here");
        (status, data)
    }

    fn terminate(&mut self) -> ExitStatus {
        let child = self.child.take().expect("the server is still running");
        signal(child.id(), "-TERM");
        match wait_with_deadline(child, STOP_DEADLINE) {
            Some(status) => status,
            None => panic!(
                "hookline did not exit within {STOP_DEADLINE:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        if std::thread::panicking() {
            signal(child.id(), "-KILL");
            let _ = wait_with_deadline(child, STOP_DEADLINE);
            return;
        }
        self.child = Some(child);
        let status = self.terminate();
        assert!(
            status.success(),
            "hookline exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }
}

/// The tests' HTTP client: no proxy (the server is on loopback) and a timeout, so a hung server
/// fails the test instead of blocking it.
// clippy.toml keeps client construction in the sender, which calls customers' endpoints; this
// client only calls the API under test.
#[allow(clippy::disallowed_methods)]
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

fn signal(pid: u32, which: &str) {
    let sent = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill {which} {pid} failed");
}

/// Waits for `child` on a helper thread so the wait can have a deadline. On timeout the child
/// is killed (the helper thread then reaps it) and `None` is returned.
fn wait_with_deadline(mut child: Child, deadline: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    match receiver.recv_timeout(deadline) {
        Ok(status) => Some(status.expect("waiting for hookline")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            None
        }
    }
}

/// Forwards stdout lines over a channel from a thread that keeps draining the pipe, so the
/// binary never blocks on a full pipe.
fn read_lines_in_background(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The receiver stops listening once the server is up; keep draining anyway.
            let _ = sender.send(line);
        }
    });
    receiver
}

impl Account {
    /// Reads an account creation answer (operator API, CLI, or `--dev` demo account).
    #[track_caller]
    pub fn from_creation(json: Value) -> Account {
        let text = |field: &str| {
            json[field]
                .as_str()
                .unwrap_or_else(|| panic!("creation answer has no string {field}: {json}"))
                .to_owned()
        };
        Account {
            auth_id: text("auth_id"),
            auth_token: text("auth_token"),
            json: json.clone(),
        }
    }

    /// `/api/v1/account/{auth_id}{suffix}`
    pub fn path(&self, suffix: &str) -> String {
        format!("/api/v1/account/{}{suffix}", self.auth_id)
    }

    /// `/api/v1/Account/{auth_id}{suffix}` (the Vobiz spelling)
    pub fn alias_path(&self, suffix: &str) -> String {
        format!("/api/v1/Account/{}{suffix}", self.auth_id)
    }

    /// The same account with another token (a wrong or rotated one).
    pub fn with_token(&self, auth_token: &str) -> Account {
        Account {
            auth_token: auth_token.to_owned(),
            ..self.clone()
        }
    }
}

/// Sends a request and reads the answer. Every non-empty body must be JSON with a non-empty
/// `api_id` equal to the `X-Api-Id` header (PRODUCT.md §2).
pub async fn send(request: RequestBuilder) -> Answer {
    let (answer, api_id_header) = receive(request).await;
    if answer.json.is_null() {
        return answer;
    }
    let api_id = answer.json["api_id"].as_str().unwrap_or_default();
    assert!(
        !api_id.is_empty(),
        "answer {} has no api_id: {:.300}",
        answer.status,
        answer.json.to_string()
    );
    assert_eq!(
        api_id_header.as_deref(),
        Some(api_id),
        "X-Api-Id differs from the body's api_id"
    );
    answer
}

/// Like [`send`] for an answer whose body is a document of its own format (the OpenAPI
/// document), which cannot carry `api_id`: only the `X-Api-Id` header is checked.
pub async fn send_for_document(request: RequestBuilder) -> Answer {
    let (answer, api_id_header) = receive(request).await;
    assert!(
        api_id_header.is_some_and(|id| !id.is_empty()),
        "answer {} has no X-Api-Id header",
        answer.status
    );
    answer
}

async fn receive(request: RequestBuilder) -> (Answer, Option<String>) {
    let response = request.send().await.expect("sending the request");
    let status = response.status().as_u16();
    let api_id_header = response
        .headers()
        .get("x-api-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_text = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let bytes = response.bytes().await.expect("reading the answer");
    let json = if is_text {
        // Plain-text answers (the Prometheus exposition) are kept as a JSON string.
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "answer {status} is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (Answer { status, json }, api_id_header)
}

impl Answer {
    /// The body, after checking the status.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.json);
        self.json
    }

    /// The `details` of an error answer, after checking its status, `code` and shape.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.json);
        assert_eq!(
            self.json["code"], code,
            "unexpected error code; body: {}",
            self.json
        );
        assert!(
            self.json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "error answer without an error message: {}",
            self.json
        );
        assert!(
            self.json["details"].is_object(),
            "error answer without details: {}",
            self.json
        );
        self.json["details"].clone()
    }
}

impl Server {
    /// Freezes the server (SIGSTOP) or lets it run on (SIGCONT): a node that is alive but
    /// silent, as under a VM pause or CPU starvation.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("the server is still running");
        signal(child.id(), if frozen { "-STOP" } else { "-CONT" });
    }

    /// Kills the server with SIGKILL — a crash: no graceful shutdown, no exit status checked —
    /// and gives back the data directory for a restart.
    pub fn kill(mut self) -> DataDir {
        let child = self.child.take().expect("the server is still running");
        signal(child.id(), "-KILL");
        let _ = wait_with_deadline(child, STOP_DEADLINE);
        self.data.take().expect("the data directory is still here")
    }

    /// Like [`Server::stop`], also giving back everything the server logged (for failure
    /// messages about what happened during the shutdown).
    pub fn stop_with_logs(mut self) -> (ExitStatus, DataDir, String) {
        let status = self.terminate();
        let logs = self.stderr();
        let data = self.data.take().expect("the data directory is still here");
        (status, data, logs)
    }
}
