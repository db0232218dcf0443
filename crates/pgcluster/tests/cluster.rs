//! A real cluster: it serves databases, survives a stop and a start on the same port, and
//! leaves nothing behind — when dropped, and when its process ends without dropping it (a
//! static, an exit, `kill -9`), which is how the Rust test harness ends.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgcluster::{Cluster, Options};

/// Set in the child process of the cleanup tests; says how the child ends.
const CHILD_VAR: &str = "PGCLUSTER_TEST_CHILD";

/// What the child prints once its cluster runs, before `PORT DIRECTORY` (on the harness's
/// `test child_process ... ` line, which it does not end before the test does).
const CHILD_MARKER: &str = "pgcluster-child: ";

/// How long the watchdog may take to stop the server and remove the directory.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_cluster_serves_databases_and_keeps_them_across_a_stop_and_a_start() {
    let cluster = Cluster::start(Options::for_tests()).expect("starting a cluster");
    let prefix = format!("postgres://postgres@127.0.0.1:{}/hl_", cluster.port());
    let a = cluster.create_database().expect("first database");
    let b = cluster.create_database().expect("second database");
    assert!(a.starts_with(&prefix) && b.starts_with(&prefix), "{a} {b}");
    assert_ne!(a, b);

    cluster
        .psql(
            &a,
            "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the stop')",
        )
        .expect("writing");
    assert_eq!(
        cluster
            .psql(&b, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'")
            .expect("reading"),
        "0\n",
        "the databases are separate"
    );
    assert_eq!(
        cluster.psql(&a, "SHOW fsync").expect("setting"),
        "off\n",
        "test settings"
    );

    cluster.stop().expect("stopping");
    assert!(!cluster.accepts_connections());
    assert!(
        cluster.psql(&a, "SELECT 1").is_err(),
        "a stopped cluster answers nothing"
    );
    cluster.stop().expect("stopping a stopped cluster does nothing");

    let port = cluster.port();
    cluster.start_again().expect("starting again");
    assert_eq!(cluster.port(), port);
    assert_eq!(
        cluster.psql(&a, "SELECT v FROM kept").expect("reading"),
        "before the stop\n"
    );
    let dump = String::from_utf8(cluster.dump_data(&a).expect("dumping")).expect("text");
    assert!(dump.contains("before the stop"), "{dump}");

    cluster.drop_database(&b).expect("dropping");
    assert!(cluster.psql(&b, "SELECT 1").is_err(), "dropped");
    cluster
        .drop_database(&b)
        .expect("dropping a dropped database does nothing");

    let directory = cluster.directory().to_owned();
    assert!(directory.join("data").is_dir());
    drop(cluster);
    assert!(
        !directory.exists(),
        "dropping the cluster removed {}",
        directory.display()
    );
    assert!(!refers_to(&directory), "a process of the dropped cluster is left");
    assert!(!accepts_tcp(port), "port {port} still answers");
}

#[test]
fn the_shared_cluster_is_removed_when_its_process_exits_without_dropping_it() {
    let (mut child, port, directory) = child_with_a_cluster("exit");
    let status = child.wait().expect("waiting for the child");
    assert!(status.success(), "the child failed: {status}");
    check_removed(port, &directory);
}

#[test]
fn the_shared_cluster_is_removed_when_its_process_is_killed() {
    let (mut child, port, directory) = child_with_a_cluster("hang");
    child.kill().expect("kill -9");
    child.wait().expect("reaping the child");
    check_removed(port, &directory);
}

/// Not a test by itself: the process the cleanup tests start (ignored unless [`CHILD_VAR`] is
/// set). Starts the shared cluster, says where it is, then exits without dropping it (statics
/// are never dropped) or waits to be killed.
#[test]
#[ignore = "the child process of the cleanup tests"]
fn child_process() {
    let Ok(ending) = std::env::var(CHILD_VAR) else {
        return;
    };
    let cluster = Cluster::shared();
    cluster.create_database().expect("the cluster works");
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{CHILD_MARKER}{} {}",
        cluster.port(),
        cluster.directory().display()
    )
    .expect("stdout");
    stdout.flush().expect("stdout");
    match ending.as_str() {
        "exit" => std::process::exit(0),
        // Until the parent kills it; its stdin is a pipe the parent never writes.
        _ => {
            let _ = std::io::stdin().read_line(&mut String::new());
        }
    }
}

/// Starts this test binary as [`child_process`]; returns it once its cluster runs, with the
/// cluster's port and directory.
fn child_with_a_cluster(ending: &str) -> (Child, u16, PathBuf) {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, ending)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the child");
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the child");
        if let Some((_, rest)) = line.split_once(CHILD_MARKER) {
            let (port, directory) = rest.split_once(' ').expect("PORT DIRECTORY");
            let directory = PathBuf::from(directory);
            assert!(directory.join("data").is_dir(), "{}", directory.display());
            assert!(accepts_tcp(port.parse().expect("a port")));
            return (child, port.parse().expect("a port"), directory);
        }
    }
    panic!("the child ended without starting a cluster: {:?}", child.wait());
}

/// Waits (bounded) until the watchdog has removed the directory and ended, then checks that
/// no process of the cluster is left and its port is closed.
fn check_removed(port: u16, directory: &Path) {
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    while directory.exists() || refers_to(directory) {
        assert!(
            Instant::now() < deadline,
            "{} still exists or is still used after {CLEANUP_DEADLINE:?}",
            directory.display()
        );
        // The watchdog is not our child, so there is nothing to wait on: poll, bounded above.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!accepts_tcp(port), "port {port} still answers");
}

/// Whether a process's command line names `directory` (the postmaster's `-D`, the watchdog's
/// arguments).
fn refers_to(directory: &Path) -> bool {
    let needle = directory.to_string_lossy().into_owned();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
    })
}

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2)).is_ok()
}
