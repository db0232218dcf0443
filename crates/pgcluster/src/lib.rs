//! Throwaway PostgreSQL clusters for tests: `initdb` into a fresh temporary directory,
//! `postgres` on a free loopback port, and everything stopped and deleted when the process
//! that started it ends — however it ends.
//!
//! ```no_run
//! let cluster = pgcluster::Cluster::shared();
//! let url = cluster.create_database().expect("a database");
//! // url = "postgres://postgres@127.0.0.1:PORT/hl_1"
//! ```
//!
//! **Cleanup without destructors.** The Rust test harness never drops statics, and a test
//! process that is killed runs no destructor at all, so cleanup cannot live in `Drop`. Each
//! cluster therefore has a *watchdog*: a small shell process whose stdin is a pipe that only
//! this process holds. When this process exits (normally, by panic, by `kill -9`) the kernel
//! closes the pipe; the watchdog reads end-of-file, stops PostgreSQL (fast shutdown) and
//! removes the directory. The watchdog runs in its own process group, so a Ctrl-C meant for
//! the tests does not kill it before it has cleaned up.
//!
//! **Running as root.** `initdb` and `postgres` refuse to run as root, so when this process's
//! effective uid is 0 the server-side programs (`initdb`, `pg_ctl`, the watchdog) run as the
//! `postgres` system user through `runuser`, and the directory is handed to that user.
//! Clients (`psql`, `pg_dump`, `pg_isready`) run as the caller and connect over TCP, where the
//! cluster trusts everyone on loopback as the superuser `postgres` (no password).
//!
//! Only the standard library and `tempfile`: no PostgreSQL client library, so any crate can use
//! it as a dev-dependency without pulling in a driver.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Where the PostgreSQL 15 programs are when [`BIN_DIR_VAR`] does not say otherwise.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The environment variable that overrides [`DEFAULT_BIN_DIR`] (another version or layout).
pub const BIN_DIR_VAR: &str = "PGCLUSTER_BIN_DIR";

/// The cluster's superuser, trusted without a password on loopback.
pub const SUPERUSER: &str = "postgres";

/// The system user that runs the server when this process is root.
const SERVER_USER: &str = "postgres";

/// How long a start may take until the server accepts connections (a cold, busy CI machine).
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The pause between two readiness checks; the deadline above bounds the wait.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How many free ports a first start tries: a port found free can be taken by someone else
/// before the server binds it.
const PORT_ATTEMPTS: usize = 5;

/// Reads end-of-file on stdin (this process is gone, or [`Cluster`] was dropped), then stops
/// the server and removes the directory. `$1` is the bin directory, `$2` the cluster's
/// directory. A fast shutdown disconnects clients and does not wait for them; immediate is the
/// fallback if that does not finish in time. Both fail harmlessly when the server is stopped.
const WATCHDOG: &str = r#"cat >/dev/null
"$1/pg_ctl" stop -D "$2/data" -m fast -w -t 30 >/dev/null 2>&1 ||
  "$1/pg_ctl" stop -D "$2/data" -m immediate -w -t 30 >/dev/null 2>&1
rm -rf "$2""#;

/// How the server is configured. [`Options::for_tests`] trades durability for speed;
/// [`Options::durable`] keeps PostgreSQL's crash safety, for measurements that must reflect it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory holding `initdb`, `pg_ctl`, `postgres`, `psql`, `pg_dump`, `pg_isready`.
    pub bin_dir: PathBuf,
    /// `false` sets `fsync`, `synchronous_commit` and `full_page_writes` off: a crash may lose
    /// or corrupt data, which a throwaway test cluster never needs, and commits get much
    /// cheaper. Benchmarks want `true`, or they measure a database nobody runs.
    pub durable: bool,
    /// Every `hookline serve` of a test suite opens a pool, several servers run at once.
    pub max_connections: u32,
    /// Kept modest: many clusters may run on one small machine.
    pub shared_buffers: String,
    /// Further `name = value` settings, written after the ones above (so they win).
    pub settings: Vec<(String, String)>,
}

impl Options {
    /// Fast and not crash-safe: `fsync`, `synchronous_commit`, `full_page_writes` off,
    /// 300 connections, 128 MB of shared buffers.
    pub fn for_tests() -> Options {
        Options {
            bin_dir: std::env::var_os(BIN_DIR_VAR)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR)),
            durable: false,
            max_connections: 300,
            shared_buffers: "128MB".to_owned(),
            settings: Vec::new(),
        }
    }

    /// Like [`Options::for_tests`] with PostgreSQL's durability settings left at their
    /// defaults (for benchmarks).
    pub fn durable() -> Options {
        Options {
            durable: true,
            ..Options::for_tests()
        }
    }

    /// Adds one `name = value` server setting.
    pub fn setting(mut self, name: &str, value: &str) -> Options {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The lines appended to `postgresql.conf` (later lines win over initdb's).
    fn config(&self, socket_dir: &Path) -> String {
        let mut settings = vec![
            ("listen_addresses".to_owned(), "127.0.0.1".to_owned()),
            (
                "unix_socket_directories".to_owned(),
                socket_dir.display().to_string(),
            ),
            ("max_connections".to_owned(), self.max_connections.to_string()),
            ("shared_buffers".to_owned(), self.shared_buffers.clone()),
        ];
        if !self.durable {
            for name in ["fsync", "synchronous_commit", "full_page_writes"] {
                settings.push((name.to_owned(), "off".to_owned()));
            }
        }
        settings.extend(self.settings.iter().cloned());
        let mut text = String::from("\n# Written by pgcluster.\n");
        for (name, value) in settings {
            text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        text
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::for_tests()
    }
}

/// One PostgreSQL cluster in its own temporary directory, listening on `127.0.0.1:`[`port`].
///
/// Stopped and removed when dropped, or — for [`Cluster::shared`] and a process that dies —
/// when the process ends (see the crate documentation).
///
/// [`port`]: Cluster::port
pub struct Cluster {
    /// The temporary directory: `data/` (the cluster), `postgres.log`, the Unix socket.
    root: PathBuf,
    port: u16,
    options: Options,
    /// Whether the server programs run as [`SERVER_USER`] (this process is root).
    as_server_user: bool,
    /// The watchdog; dropping its stdin tells it to clean up.
    watchdog: Mutex<Option<Child>>,
    /// Whether the server runs; the lock also keeps [`Cluster::stop`] and
    /// [`Cluster::start_again`] from overlapping.
    running: Mutex<bool>,
    next_database: AtomicU64,
}

impl Cluster {
    /// Creates a cluster in a fresh temporary directory and starts it on a free loopback port;
    /// returns once it accepts connections.
    ///
    /// Fault tests that stop and restart PostgreSQL should start their own cluster this way
    /// rather than stop the [shared](Cluster::shared) one under other tests.
    ///
    /// # Errors
    /// When a program is missing or fails (the error carries its output and the server log).
    pub fn start(options: Options) -> io::Result<Cluster> {
        let root = tempfile::Builder::new().prefix("pgcluster-").tempdir()?.keep();
        // This process just created the directory, so its owner is our effective uid.
        let as_server_user = std::fs::metadata(&root)?.uid() == 0;
        if as_server_user {
            let mut chown = Command::new("chown");
            chown.arg(format!("{SERVER_USER}:")).arg(&root);
            if let Err(error) = run("chown", &mut chown) {
                // The watchdog (as that user) could not remove it: remove it here.
                let _ = std::fs::remove_dir_all(&root);
                return Err(error);
            }
        }
        let mut cluster = Cluster {
            root,
            port: 0,
            options,
            as_server_user,
            watchdog: Mutex::new(None),
            running: Mutex::new(false),
            next_database: AtomicU64::new(1),
        };
        // First, so that whatever fails below is cleaned up too (by `Drop`, or at exit).
        cluster.spawn_watchdog()?;
        cluster.initdb()?;
        cluster.first_start()?;
        Ok(cluster)
    }

    /// The process's cluster, started with [`Options::for_tests`] on first use. Never
    /// stopped by the tests that share it; removed when the process ends.
    ///
    /// # Panics
    /// When the cluster cannot be started (every test using it would fail anyway).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            Cluster::start(Options::for_tests())
                .unwrap_or_else(|error| panic!("starting the shared PostgreSQL cluster: {error}"))
        })
    }

    /// The loopback TCP port the server listens on (the same after [`Cluster::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The cluster's temporary directory (removed with the cluster).
    pub fn directory(&self) -> &Path {
        &self.root
    }

    /// The server's log, for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// Creates an empty database `hl_N` (N unique in this cluster) and returns its URL.
    ///
    /// # Errors
    /// When `psql` fails, e.g. the server is stopped.
    pub fn create_database(&self) -> io::Result<String> {
        let name = format!("hl_{}", self.next_database.fetch_add(1, Ordering::Relaxed));
        self.psql(&self.url("postgres"), &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Drops the database of `url` (a URL [`Cluster::create_database`] returned), first
    /// disconnecting whoever is still connected. A database that does not exist is no error.
    ///
    /// # Errors
    /// When the URL names no plain database, or `psql` fails.
    pub fn drop_database(&self, url: &str) -> io::Result<()> {
        let name = database_name(url)?;
        self.psql(
            &self.url("postgres"),
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .map(drop)
    }

    /// Runs `sql` (one or more statements, stopping at the first error) in the database of
    /// `url` with `psql`; returns what it printed: rows unaligned, `|` between columns, one
    /// line each, no headers.
    ///
    /// # Errors
    /// When `psql` fails; the error carries its stderr.
    pub fn psql(&self, url: &str, sql: &str) -> io::Result<String> {
        let mut psql = self.client("psql");
        psql.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ]);
        let output = run("psql", &mut psql)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Every row of the database of `url`, as `pg_dump --data-only` prints it (plain SQL).
    ///
    /// # Errors
    /// When `pg_dump` fails.
    pub fn dump_data(&self, url: &str) -> io::Result<Vec<u8>> {
        let mut dump = self.client("pg_dump");
        dump.args(["--data-only", "--no-owner", "-d", url]);
        Ok(run("pg_dump", &mut dump)?.stdout)
    }

    /// Whether the server answers on its port now (`pg_isready`).
    pub fn accepts_connections(&self) -> bool {
        let mut isready = self.client("pg_isready");
        isready
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-t",
                "5",
                "-p",
            ])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        isready.status().is_ok_and(|status| status.success())
    }

    /// Stops the server with a fast shutdown (clients are disconnected, nothing is lost); the
    /// directory stays for [`Cluster::start_again`]. Stopping a stopped cluster does nothing.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub fn stop(&self) -> io::Result<()> {
        let mut running = self.lock_running();
        if !*running {
            return Ok(());
        }
        let mut stop = self.server(&self.bin("pg_ctl"));
        stop.args(["stop", "-m", "fast", "-w", "-t", "30", "-D"])
            .arg(self.data_dir());
        run("pg_ctl stop", &mut stop)?;
        *running = false;
        Ok(())
    }

    /// Starts a [stopped](Cluster::stop) server again on the same directory and port; returns
    /// once it accepts connections. Starting a running cluster does nothing.
    ///
    /// # Errors
    /// When the server does not start (the port was taken meanwhile, …).
    pub fn start_again(&self) -> io::Result<()> {
        let mut running = self.lock_running();
        if *running {
            return Ok(());
        }
        self.launch()?;
        *running = true;
        Ok(())
    }

    fn lock_running(&self) -> MutexGuard<'_, bool> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn bin(&self, program: &str) -> PathBuf {
        self.options.bin_dir.join(program)
    }

    /// A server-side program: as [`SERVER_USER`] when this process is root, in the cluster's
    /// directory (the server user may not be allowed into ours).
    fn server(&self, program: &Path) -> Command {
        let mut command = if self.as_server_user {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .find(|path| Path::new(path).exists())
                .unwrap_or("runuser");
            let mut command = Command::new(runuser);
            command.args(["-u", SERVER_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(&self.root).stdin(Stdio::null());
        clear_pg_env(&mut command);
        command
    }

    /// A client program, run as the caller; every connection detail is on its command line.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin(program));
        command.stdin(Stdio::null());
        clear_pg_env(&mut command);
        command.env("PGCONNECT_TIMEOUT", "10");
        command
    }

    fn spawn_watchdog(&mut self) -> io::Result<()> {
        let mut watchdog = self.server(Path::new("/bin/sh"));
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("pgcluster-watchdog")
            .arg(&self.options.bin_dir)
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C for the tests must not kill it before cleanup.
            .process_group(0);
        let child = watchdog.spawn()?;
        *self.watchdog.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(child);
        Ok(())
    }

    fn initdb(&self) -> io::Result<()> {
        let mut initdb = self.server(&self.bin("initdb"));
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "--auth=trust",
                "--username",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
            ])
            // The cluster is thrown away: syncing its files to disk buys nothing.
            .args(["--no-sync", "--no-instructions"]);
        run("initdb", &mut initdb)?;
        // Root may append to the file the server user owns; its owner stays that user.
        let mut config = OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))?;
        config.write_all(self.options.config(&self.root).as_bytes())
    }

    /// Starts on a free port, trying another one when the chosen port was taken meanwhile.
    fn first_start(&mut self) -> io::Result<()> {
        let mut attempt = 1;
        loop {
            self.port = free_port()?;
            let log_before = std::fs::metadata(self.log_path()).map_or(0, |m| m.len());
            match self.launch() {
                Ok(()) => {
                    *self.lock_running() = true;
                    return Ok(());
                }
                Err(_)
                    if attempt < PORT_ATTEMPTS
                        && self.log_since(log_before).contains("Address already in use") =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `pg_ctl start` on [`Cluster::port`], then waits until the port accepts connections.
    fn launch(&self) -> io::Result<()> {
        let mut start = self.server(&self.bin("pg_ctl"));
        start
            .args(["start", "-w", "-t", "30", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .arg("-o")
            .arg(format!("-p {}", self.port));
        if let Err(error) = run("pg_ctl start", &mut start) {
            return Err(io::Error::other(format!(
                "{error}\nserver log:\n{}",
                self.log_since(0)
            )));
        }
        self.wait_until_accepting()
    }

    /// `pg_ctl -w` has seen the server ready; this checks the TCP path the clients use.
    fn wait_until_accepting(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        while !self.accepts_connections() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "PostgreSQL did not accept connections on 127.0.0.1:{} within {READY_DEADLINE:?}; \
                         server log:\n{}",
                        self.port,
                        self.log_since(0)
                    ),
                ));
            }
            // Polling with a short interval; the deadline above bounds the wait.
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }

    /// The server log from byte `offset` on (empty if unreadable).
    fn log_since(&self, offset: u64) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

impl Drop for Cluster {
    /// Closes the watchdog's stdin and waits until it has stopped the server and removed the
    /// directory.
    fn drop(&mut self) {
        let watchdog = self.watchdog.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut watchdog) = watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("directory", &self.root)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The database a `postgres://…/NAME` URL names: letters, digits and `_` only, so it can be
/// quoted into SQL.
fn database_name(url: &str) -> io::Result<&str> {
    let name = url.rsplit('/').next().unwrap_or_default();
    let name = name.split('?').next().unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no plain database name in {url:?}"),
        ));
    }
    Ok(name)
}

/// A port that was free a moment ago: the kernel's pick for a listener on `127.0.0.1:0`,
/// released at once for the server to bind.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// `PG*` variables of the caller's environment (`PGHOST`, `PGDATABASE`, `PGOPTIONS`, …) would
/// change where and how the programs connect.
fn clear_pg_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
}

/// Runs `command` to its end; an error unless it succeeded, carrying what it printed.
fn run(what: &str, command: &mut Command) -> io::Result<Output> {
    let output = command
        .output()
        .map_err(|error| io::Error::new(error.kind(), format!("running {what} ({command:?}): {error}")))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(io::Error::other(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_is_read_from_its_url() {
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5/hl_7").expect("name"),
            "hl_7"
        );
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5/hl_7?sslmode=disable").expect("name"),
            "hl_7"
        );
        assert!(database_name("postgres://postgres@127.0.0.1:5/x\"; DROP").is_err());
        assert!(database_name("postgres://postgres@127.0.0.1:5/").is_err());
    }

    #[test]
    fn test_options_turn_durability_off_and_later_settings_win() {
        let config = Options::for_tests()
            .setting("fsync", "on")
            .setting("application_name", "it's")
            .config(Path::new("/tmp/x"));
        let fsync_off = config.find("fsync = 'off'").expect("off for tests");
        let fsync_on = config.find("fsync = 'on'").expect("the added setting");
        assert!(fsync_off < fsync_on, "{config}");
        assert!(config.contains("application_name = 'it''s'"), "{config}");
        assert!(config.contains("listen_addresses = '127.0.0.1'"));
        assert!(!Options::durable().config(Path::new("/tmp/x")).contains("fsync"));
    }
}
