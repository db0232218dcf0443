//! The process as an operator sees it (PRODUCT.md §5, §6): `/healthz` and `/readyz` without
//! credentials, exit status 0 after SIGTERM, data that survives a restart, and the `--dev` demo
//! account printed on an empty database.
//!
//! Every other test checks the SIGTERM exit too, through the fixture's drop.

use reqwest::Method;
use serde_json::{json, Value};

use crate::accounts::check_creation_answer;
use crate::fixture::{backend, send, Account, Backend, DataDir, Server};
use crate::shapes::without_api_id;

#[tokio::test]
async fn health_and_readiness_answer_without_credentials() {
    let server = Server::start().await;
    for (path, status) in [
        ("/healthz", "ok"),
        ("/healthz/", "ok"),
        ("/readyz", "ready"),
        ("/readyz/", "ready"),
    ] {
        let answer = send(server.request(Method::GET, path)).await.expect(200);
        assert_eq!(answer["status"], status, "GET {path}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_status_0() {
    let server = Server::start().await;
    let account = server.admin_create_account("before shutdown").await;
    server.get(&account, &account.path("")).await.expect(200);
    let (status, _data) = server.stop();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn a_plain_start_prints_nothing_before_the_listening_line() {
    let server = Server::start().await;
    assert!(
        server.preamble.is_empty(),
        "unexpected stdout: {:?}",
        server.preamble
    );
    assert!(
        server.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        server.base_url()
    );
}

#[tokio::test]
async fn accounts_and_their_objects_survive_a_restart() {
    let server = Server::start().await;
    let account = server.admin_create_account("durable").await;
    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "durable", "callback_events": ["call.failed"]}),
        )
        .await
        .expect(201);
    let (status, data) = server.stop();
    assert!(status.success(), "{status}");

    let server = Server::start_on(data, &[]).await;
    let path = account.path(&format!("/applications/{}", app["app_id"].as_str().expect("id")));
    let read = server.get(&account, &path).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&app));
}

fn demo_account(server: &Server) -> Account {
    let printed: Value = serde_json::from_str(&server.preamble.join("\n"))
        .unwrap_or_else(|e| panic!("the --dev preamble is not JSON ({e}): {:?}", server.preamble));
    let keys: Vec<&String> = printed.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["demo_account"]);
    Account::from_creation(printed["demo_account"].clone())
}

#[tokio::test]
async fn dev_mode_on_an_empty_database_prints_a_demo_account_whose_credentials_work() {
    let server = Server::start_with(&["--dev"]).await;
    let demo = demo_account(&server);
    check_creation_answer(&demo.json, "Demo", "MA_", None);
    let read = server.get(&demo, &demo.path("")).await.expect(200);
    assert_eq!(read["name"], "Demo");
    send(server.basic(&demo, Method::GET, &demo.path("/applications")))
        .await
        .expect(200);

    // A restart on the same, no longer empty, database creates no second demo account.
    let (status, data) = server.stop();
    assert!(status.success(), "{status}");
    let server = Server::start_on(data, &["--dev"]).await;
    assert!(
        server.preamble.is_empty(),
        "second demo account: {:?}",
        server.preamble
    );
    server.get(&demo, &demo.path("")).await.expect(200);
}

#[tokio::test]
async fn dev_mode_on_a_database_with_accounts_prints_no_demo_account() {
    let data = DataDir::new();
    let existing = data.create_account_with_cli("existing", None);
    let server = Server::start_on(data, &["--dev"]).await;
    assert!(
        server.preamble.is_empty(),
        "unexpected demo account: {:?}",
        server.preamble
    );
    server.get(&existing, &existing.path("")).await.expect(200);
}

/// SQLite has one writer (and `serve` releases every lease at start): a second `serve` on the
/// same database refuses to start and says why, the first keeps serving, and once the first is
/// gone — even by `kill -9` — a new one starts.
#[tokio::test]
async fn a_second_serve_on_the_same_sqlite_file_refuses_to_start() {
    if backend() == Backend::Postgres {
        eprintln!(
            "skipped on PostgreSQL: several `hookline serve` nodes may share one PostgreSQL \
             database, so there is no lock to refuse the second"
        );
        return;
    }
    let first = Server::start().await;
    let account = first.admin_create_account("owner").await;
    let database = first.data().database_url();
    let second = first.data().run_cli_within(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &database,
            "--secret-key",
            first.data().secret_key(),
        ],
        std::time::Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second serve ran: {stderr}");
    assert!(
        stderr.contains("another `hookline serve` is already using"),
        "the refusal says why: {stderr}"
    );
    first.get(&account, &account.path("")).await.expect(200);

    let again = Server::start_on(first.kill(), &[]).await;
    again.get(&account, &account.path("")).await.expect(200);
}
