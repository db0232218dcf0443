//! Faults of the embedded database that an operator must clear (issue 11, "Store faults"):
//! another process holding the SQLite lock, a full disk, a read-only directory. The API answers
//! 503 in the error shape with `Retry-After` and a message naming the fault; what was accepted
//! before is kept; when the fault clears the server goes on by itself. SQLite only: the
//! PostgreSQL equivalents (server away, restarted) are in `nodes.rs` and `lifecycle.rs`.
//!
//! The disk tests mount a small tmpfs of their own, which needs root (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::calls::{call_body, list_total, ANSWERS, FAST};
use crate::fixture::{backend, send, Account, Backend, DataDir, Server};

/// Waits for a fault to show, or for the server to recover from one.
const DEADLINE: Duration = Duration::from_secs(30);

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            mounted.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&mounted.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .expect("running mount");
        assert!(status.success(), "remounting {mode}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Makes a call; the status and the body.
async fn place_call(server: &Server, account: &Account) -> (u16, Value) {
    let answer = send(
        server
            .authed(account, Method::POST, &account.path("/calls"))
            .json(&call_body(ANSWERS, &json!({}))),
    )
    .await;
    (answer.status, answer.json)
}

/// Checks a 503 names `fault`, and that it carries `Retry-After`.
async fn assert_unavailable(server: &Server, account: &Account, fault: &str) {
    let response = server
        .authed(account, Method::POST, &account.path("/calls"))
        .json(&call_body(ANSWERS, &json!({})))
        .send()
        .await
        .expect("sending");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "unavailable", "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains(fault), "{message:?} does not name {fault:?}");
}

#[tokio::test]
async fn another_process_holding_the_lock_gets_503_and_the_server_goes_on_when_it_lets_go() {
    if backend() == Backend::Postgres {
        return;
    }
    let data = DataDir::new().with_sqlite(None, Some("busy_timeout_ms=2000"));
    let file = data.sqlite_path();
    let server = Server::start_on(data, FAST).await;
    let account = server.admin_create_account("locked out").await;
    let (status, before) = place_call(&server, &account).await;
    assert_eq!(status, 201, "{before}");

    let other = rusqlite::Connection::open(&file).expect("another process's connection");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("taking the write lock");
    assert_unavailable(&server, &account, "another process holds the database's lock").await;
    // The next write does not wait out the busy timeout again: the writer refuses at once for a
    // moment (otherwise every queued write would wait its turn at the lock).
    let started = Instant::now();
    assert_unavailable(&server, &account, "another process holds the database's lock").await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Reads go on beside the lock (WAL).
    assert_eq!(list_total(&server, &account, "/calls").await, 1);
    other.execute_batch("COMMIT").expect("letting go");
    drop(other);

    let deadline = Instant::now() + DEADLINE;
    let after = loop {
        let (status, after) = place_call(&server, &account).await;
        if status == 201 {
            break after;
        }
        assert_eq!(status, 503, "{after}");
        assert!(Instant::now() < deadline, "never recovered from the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Both calls are kept and play to their end; the carrier's steps that met the lock were
    // written once it was let go.
    for call in [&before, &after] {
        let path = account.path(&format!("/calls/{}", call["call_uuid"].as_str().expect("uuid")));
        let deadline = Instant::now() + DEADLINE;
        loop {
            let record = server.get(&account, &path).await.expect(200);
            if record["call_status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "the call never ended: {record}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_full_disk_gets_503_nothing_accepted_is_lost_and_freeing_space_recovers() {
    if backend() == Backend::Postgres {
        return;
    }
    let disk = SmallDisk::mount("4m");
    let data = DataDir::new().with_sqlite(Some(disk.path().join("hookline.db")), None);
    let server = Server::start_on(data, FAST).await;
    let account = server.admin_create_account("full disk").await;
    let filler = fill(disk.path());

    // The WAL has some room left; keep writing until SQLite finds none.
    let mut accepted = 0u64;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = place_call(&server, &account).await;
        match status {
            201 => accepted += 1,
            503 => {
                assert!(
                    body["error"].as_str().is_some_and(|e| e.contains("disk is full")),
                    "{body}"
                );
                break;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
        assert!(
            Instant::now() < deadline,
            "{accepted} calls fitted on a full disk"
        );
    }
    assert_unavailable(&server, &account, "the database's disk is full").await;

    std::fs::remove_file(&filler).expect("freeing the disk");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = place_call(&server, &account).await;
        if status == 201 {
            accepted += 1;
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the server never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(list_total(&server, &account, "/calls").await, accepted);
}

/// Fills the disk at `dir` with one file, until the kernel refuses more.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("creating the filler");
    let block = vec![0u8; 4096];
    while file.write_all(&block).and_then(|()| file.sync_data()).is_ok() {}
    path
}

#[tokio::test]
async fn a_read_only_directory_is_refused_at_start_with_a_clear_message_and_the_data_is_kept() {
    if backend() == Backend::Postgres {
        return;
    }
    let disk = SmallDisk::mount("8m");
    let file = disk.path().join("hookline.db");
    let data = DataDir::new().with_sqlite(Some(file.clone()), None);
    let server = Server::start_on(data, &[]).await;
    let account = server.admin_create_account("read only").await;
    let (status, data) = server.stop();
    assert!(status.success());

    disk.remount("ro");
    let database = data.database_url();
    let output = data.run_cli_within(
        &["serve", "--listen", "127.0.0.1:0", "--database", &database],
        DEADLINE,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "served on a read-only directory: {stderr}"
    );
    assert!(stderr.to_lowercase().contains("read-only"), "{stderr}");

    disk.remount("rw");
    let server = Server::start_on(data, &[]).await;
    send(server.authed(&account, Method::GET, &account.path("/")))
        .await
        .expect(200);
}
