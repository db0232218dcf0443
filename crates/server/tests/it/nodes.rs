//! Several `serve` processes on one PostgreSQL database (PRODUCT.md §5, "several `serve`
//! processes on one PostgreSQL share the work"): thousands of callbacks through both nodes'
//! APIs, each delivered once and in per-call order; a node killed with `kill -9` mid-run and
//! PostgreSQL stopped mid-run lose nothing, and releases it refused are retried; a key change
//! on one node signs the other's next callback. On SQLite (one process per file) these tests have nothing to test and return.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use signing::standard::SigningSecret;
use signing::Check;

use crate::delivery::signatures::{assert_all_valid, creation_secret, verify};
use crate::delivery::{make_call, register_call, register_calls, start_server_on, update_account, WAIT};
use crate::fixture::{backend, send, Backend, DataDir, Server};
use crate::receiver::{Arrival, Receiver, Reply, Script};

/// How long the nodes may take to deliver everything.
const DRAIN: Duration = Duration::from_secs(90);

/// Whether this run is on PostgreSQL; says why a test does nothing otherwise.
fn on_postgres(test: &str) -> bool {
    let yes = backend() == Backend::Postgres;
    if !yes {
        eprintln!("{test}: several nodes need PostgreSQL (HOOKLINE_TEST_DATABASE=postgres); nothing to test on SQLite");
    }
    yes
}

/// Two nodes on one fresh database, and the directory that owns it (dropping it drops the
/// database, so the test keeps it to the end).
async fn two_nodes(settings: &[(&str, &str)]) -> (Server, Server, DataDir) {
    let data = DataDir::new();
    let a = start_server_on(data.sharing(), settings).await;
    let b = start_server_on(data.sharing(), settings).await;
    (a, b, data)
}

/// Reports `event` for every call in batches through the switch interface of `server`.
async fn report_all(server: &Server, calls: &[String], event: &str) {
    for chunk in calls.chunks(250) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|call_uuid| json!({ "call_uuid": call_uuid, "event": event }))
            .collect();
        let reported = send(
            server
                .operator(Method::POST, "/api/v1/switch/events")
                .json(&json!({ "events": batch })),
        )
        .await
        .expect(200);
        let results = reported["results"].as_array().expect("results");
        assert!(
            results.iter().all(|r| r["status"] == 201),
            "every {event} was accepted: {reported}"
        );
    }
}

/// Waits until `n` distinct event ids arrived; returns every arrival.
async fn wait_for_events(receiver: &Receiver, n: usize) -> Vec<Arrival> {
    let mut at_least = n;
    loop {
        let arrivals = receiver
            .wait_until(&format!("{at_least} arrivals"), DRAIN, |all| {
                all.len() >= at_least
            })
            .await;
        let distinct: HashSet<String> = arrivals.iter().map(Arrival::event_id).collect();
        if distinct.len() >= n {
            return arrivals;
        }
        at_least = arrivals.len() + (n - distinct.len());
    }
}

/// Each event id names one event (call, sequence, event name), and the arrived events are
/// exactly `expected`. Returns the number of duplicate arrivals.
fn check_events(arrivals: &[Arrival], expected: &HashSet<(String, u32, String)>) -> usize {
    let mut by_id: HashMap<String, (String, u32, String)> = HashMap::new();
    for arrival in arrivals {
        let event = (
            arrival.expect_field("CallUUID"),
            arrival.sequence(),
            arrival.expect_field("Event"),
        );
        let seen = by_id.entry(arrival.event_id()).or_insert_with(|| event.clone());
        assert_eq!(*seen, event, "one event id named two events");
    }
    let arrived: HashSet<(String, u32, String)> = by_id.into_values().collect();
    assert_eq!(
        arrived.len(),
        expected.len(),
        "as many events arrived as were accepted"
    );
    assert_eq!(&arrived, expected, "every accepted event arrived");
    arrivals.len() - expected.len()
}

/// The events of `calls` whose names are `events` (sequence 1, 2, …).
fn expected(calls: &[String], events: &[&str]) -> HashSet<(String, u32, String)> {
    calls
        .iter()
        .flat_map(|call| {
            events
                .iter()
                .zip(1..)
                .map(move |(event, sequence)| (call.clone(), sequence, (*event).to_owned()))
        })
        .collect()
}

/// `hookline_attempts_total{outcome="success"}` of one node.
async fn successes(server: &Server) -> u64 {
    let response = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("GET /metrics");
    let text = response.text().await.expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("hookline_attempts_total{outcome=\"success\"} "))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

#[tokio::test]
async fn two_nodes_deliver_every_callback_once_and_in_order_of_each_call() {
    if !on_postgres("two_nodes") {
        return;
    }
    const N_CALLS: usize = 800;
    const EVENTS: [&str; 4] = ["CallInitiated", "Ring", "StartApp", "Hangup"];
    let receiver = Receiver::start().await;
    receiver.on("/cb", Script::always(Reply::ok().after(Duration::from_millis(2))));
    // A real budget: with the suite's 300 ms, a loaded machine makes answered attempts time out,
    // and their retries would be counted here as sending twice.
    let (a, b, _database) = two_nodes(&[
        ("--per-host-concurrency", "16"),
        ("--callback-timeout-ms", "3000"),
    ])
    .await;
    let account = a.admin_create_account("nodes").await;
    let extra = json!({ "status_url": receiver.url("/cb") });

    // Calls and their events enter through both APIs, alternating, while both nodes deliver.
    let (on_a, on_b) = tokio::join!(
        register_calls(&a, &account, &extra, N_CALLS / 2),
        register_calls(&b, &account, &extra, N_CALLS / 2),
    );
    let calls: Vec<String> = [on_a, on_b].concat();
    report_all(&a, &calls, "Ring").await;
    report_all(&b, &calls, "StartApp").await;
    report_all(&a, &calls, "Hangup").await;

    let arrivals = wait_for_events(&receiver, N_CALLS * EVENTS.len()).await;
    let duplicates = check_events(&arrivals, &expected(&calls, &EVENTS));
    assert_eq!(duplicates, 0, "with no crash every event arrives exactly once");

    // A later event of a call is sent only once the earlier one was answered, whichever node
    // holds which: so each call's callbacks arrive in sequence order.
    let mut order: HashMap<String, Vec<u32>> = HashMap::new();
    for arrival in &arrivals {
        order
            .entry(arrival.expect_field("CallUUID"))
            .or_default()
            .push(arrival.sequence());
    }
    for (call, sequences) in &order {
        assert_eq!(sequences, &[1, 2, 3, 4], "call {call} arrived out of order");
    }
    let (by_a, by_b) = (successes(&a).await, successes(&b).await);
    assert!(by_a > 0 && by_b > 0, "both nodes delivered: {by_a} and {by_b}");
}

#[tokio::test]
async fn a_node_killed_mid_run_loses_nothing_the_other_delivers_its_share() {
    if !on_postgres("kill_9") {
        return;
    }
    const N_CALLS: usize = 1000;
    const PER_HOST: usize = 8;
    let receiver = Receiver::start().await;
    // Slow answers and a small per-host limit keep hundreds pending when the kill comes.
    receiver.on(
        "/cb",
        Script::always(Reply::ok().after(Duration::from_millis(150))),
    );
    let per_host = PER_HOST.to_string();
    let settings = [
        ("--per-host-concurrency", per_host.as_str()),
        ("--callback-timeout-ms", "5000"),
    ];
    let (a, b, _database) = two_nodes(&settings).await;
    let account = a.admin_create_account("kill").await;
    let extra = json!({ "status_url": receiver.url("/cb") });
    let (on_a, on_b) = tokio::join!(
        register_calls(&a, &account, &extra, N_CALLS / 2),
        register_calls(&b, &account, &extra, N_CALLS / 2),
    );
    let calls: Vec<String> = [on_a, on_b].concat();

    // Killed with its claims in flight; the survivor takes the rest of the run.
    drop(a.kill());
    let at_kill = receiver.arrivals().len();
    assert!(
        at_kill < N_CALLS,
        "every call's first callback arrived before the kill; the test proves nothing"
    );
    report_all(&b, &calls, "Ring").await;

    let arrivals = wait_for_events(&receiver, 2 * N_CALLS).await;
    let duplicates = check_events(&arrivals, &expected(&calls, &["CallInitiated", "Ring"]));
    // Only sends the killed node had made without recording their answers can repeat.
    assert!(
        duplicates <= 2 * PER_HOST,
        "{duplicates} duplicates: more than the killed node had in flight"
    );
    // The last answers are recorded just after they arrive.
    let deadline = Instant::now() + WAIT;
    loop {
        let pending = b
            .get(&account, &account.path("/callbacks?status=pending"))
            .await
            .expect(200);
        if pending["meta"]["total_count"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still pending after every event arrived: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = b
        .get(&account, &account.path("/callbacks?status=failed"))
        .await
        .expect(200);
    assert_eq!(failed["meta"]["total_count"], 0, "{failed}");
}

/// A node frozen (alive but silent) past the 10 s after which the other judges it dead: the
/// other takes over what it held and everything arrives; when it wakes it sends nothing it had
/// claimed before (it fences itself: `Store::may_send`), so what goes out twice is only what it
/// had in flight when it froze (answered, not recorded).
#[tokio::test]
async fn a_node_frozen_past_its_judgement_sends_nothing_it_had_claimed_when_it_wakes() {
    if !on_postgres("frozen_node") {
        return;
    }
    // Enough work, slow enough, that some is left after 14 s of the other node alone even when
    // registering it takes long on a loaded machine (600 at 150 ms was all sent there once).
    const N_CALLS: usize = 1000;
    const PER_HOST: usize = 4;
    let receiver = Receiver::start().await;
    receiver.on(
        "/cb",
        Script::always(Reply::ok().after(Duration::from_millis(250))),
    );
    let per_host = PER_HOST.to_string();
    let settings = [
        ("--per-host-concurrency", per_host.as_str()),
        ("--callback-timeout-ms", "2000"),
    ];
    let (a, b, _database) = two_nodes(&settings).await;
    let account = a.admin_create_account("frozen").await;
    let extra = json!({ "status_url": receiver.url("/cb") });
    let calls = register_calls(&b, &account, &extra, N_CALLS).await;
    receiver
        .wait_until("a first share sent", DRAIN, |all| all.len() >= 2 * PER_HOST)
        .await;
    a.freeze(true);
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(
        receiver.arrivals().len() < N_CALLS,
        "everything arrived while A was frozen; the test proves nothing"
    );
    a.freeze(false);

    let arrivals = wait_for_events(&receiver, N_CALLS).await;
    let duplicates = check_events(&arrivals, &expected(&calls, &["CallInitiated"]));
    // Repeated: what it had in flight and what was answered but not yet recorded when it froze
    // (4 in a quiet run, up to 14 under CI's load, when results wait longer for their batch).
    // Without the fence a woken node also sent the claims it had been waiting with (18 in a
    // quiet run), so this bound only catches a gross failure; the quiet-run figures are in the
    // issue's closing note.
    assert!(
        duplicates <= 8 * PER_HOST,
        "{duplicates} duplicates: the frozen node sent claims the other node had taken over"
    );
}

#[tokio::test]
async fn postgres_stopped_mid_run_answers_503_then_delivers_everything_accepted() {
    if !on_postgres("postgres_restart") {
        return;
    }
    const N_CALLS: usize = 400;
    let cluster = pgcluster::Cluster::start(pgcluster::Options::for_tests()).expect("a dedicated cluster");
    let data = DataDir::on_postgres(cluster.create_database().expect("a database"));
    let receiver = Receiver::start().await;
    receiver.on(
        "/cb",
        Script::always(Reply::ok().after(Duration::from_millis(20))),
    );
    // The production lease (300 s): a claim the database committed but whose answer the outage
    // cut off, or a release that failed, must be put back once the database answers, not when
    // its lease ends.
    let settings = [("--per-host-concurrency", "4"), ("--lease-ms", "300000")];
    let server = start_server_on(data, &settings).await;
    let account = server.admin_create_account("outage").await;
    let extra = json!({ "status_url": receiver.url("/cb") });
    let mut calls = register_calls(&server, &account, &extra, N_CALLS).await;
    assert!(
        receiver.arrivals().len() < N_CALLS,
        "everything was delivered before the outage; the test proves nothing"
    );

    cluster.stop().expect("stopping PostgreSQL");
    let refused = send(
        server
            .operator(Method::POST, "/api/v1/switch/calls")
            .json(&json!({ "auth_id": account.auth_id, "direction": "outbound", "from": "+14155551234", "to": "+14155550100", "status_url": receiver.url("/cb") })),
    )
    .await;
    refused.expect_error(503, "unavailable");
    let ready = server
        .request(Method::GET, "/readyz")
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), 503, "not ready while the database is away");

    cluster.start_again().expect("starting PostgreSQL again");
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = server
            .request(Method::GET, "/readyz")
            .send()
            .await
            .expect("GET /readyz");
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready {WAIT:?} after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Accepted again, and delivered with everything accepted before the outage.
    calls.push(register_call(&server, &account, &extra).await);
    let arrivals = wait_for_events(&receiver, calls.len()).await;
    check_events(&arrivals, &expected(&calls, &["CallInitiated"]));
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

/// Releases the database refuses while a failover makes it read-only for a moment (SQLSTATE
/// 25006, raised here by a trigger on releases while a flag row exists) are retried once it
/// accepts writes again: the deferred deliveries go out then, not when their lease (the
/// production 300 s) ends.
#[tokio::test]
async fn releases_the_database_refused_are_retried_once_it_accepts_writes() {
    if !on_postgres("refused_releases") {
        return;
    }
    const N_CALLS: usize = 12;
    let receiver = Receiver::start().await;
    receiver.on(
        "/slow",
        Script::always(Reply::ok().after(Duration::from_millis(300))),
    );
    // One at a time and four claimed: the rest of the calls are deferred, again and again.
    let settings = [
        ("--per-host-concurrency", "1"),
        ("--callback-timeout-ms", "2000"),
        ("--lease-ms", "300000"),
    ];
    let data = DataDir::new();
    let server = start_server_on(data.sharing(), &settings).await;
    let url = data.database_url();
    let psql = |sql: &str| {
        pgcluster::Cluster::shared()
            .psql(&url, sql)
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    };
    psql(
        "CREATE TABLE refuse_releases (on_since TIMESTAMPTZ);
         CREATE FUNCTION refuse_release() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF EXISTS (SELECT 1 FROM refuse_releases) THEN
               RAISE EXCEPTION 'read-only for a moment' USING ERRCODE = '25006';
             END IF;
             RETURN NEW;
           END $$;
         CREATE TRIGGER refuse_releases BEFORE UPDATE ON deliveries FOR EACH ROW
           WHEN (OLD.leased_until IS NOT NULL AND NEW.leased_until IS NULL
                 AND NEW.attempt_count = OLD.attempt_count)
           EXECUTE FUNCTION refuse_release();",
    );
    let account = server.admin_create_account("refused").await;
    psql("INSERT INTO refuse_releases VALUES (now())");
    let calls = register_calls(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/slow") }),
        N_CALLS,
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while !server
        .stderr()
        .contains("putting deliveries back in the queue failed")
    {
        assert!(
            Instant::now() < deadline,
            "no release was refused: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    psql("DELETE FROM refuse_releases");
    let arrivals = wait_for_events(&receiver, calls.len()).await;
    check_events(&arrivals, &expected(&calls, &["CallInitiated"]));
}

#[tokio::test]
async fn a_secret_created_and_one_deleted_on_node_a_sign_node_bs_next_callback() {
    if !on_postgres("keys_across_nodes") {
        return;
    }
    let receiver = Receiver::start().await;
    let data = DataDir::new();
    let b = start_server_on(data.sharing(), &[]).await;
    let account = b.admin_create_account("keys").await;
    let old = creation_secret(&account);
    let old_id = account.json["signing_secret"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_owned();
    let extra = json!({ "status_url": receiver.url("/k") });
    // B signs a callback with the first secret (and caches its keys).
    register_call(&b, &account, &extra).await;
    let first = receiver.wait_for("/k", 1, WAIT).await.pop().expect("an arrival");
    assert_all_valid(
        &verify(&first, &account.auth_token, None, std::slice::from_ref(&old)),
        "before",
    );

    // A changes the keys, then stops: the next callback can only come from B.
    let a = start_server_on(data.sharing(), &[]).await;
    let created = send(a.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let new = SigningSecret::parse(created["secret"].as_str().expect("secret")).expect("whsec_ secret");
    a.delete(&account, &account.path(&format!("/signing-secrets/{old_id}")))
        .await
        .expect(204);
    drop(a.stop());

    register_call(&b, &account, &extra).await;
    let next = receiver.wait_for("/k", 2, WAIT).await.pop().expect("an arrival");
    assert_all_valid(
        &verify(&next, &account.auth_token, None, &[new]),
        "signed with A's new secret",
    );
    assert_eq!(
        verify(&next, &account.auth_token, None, &[old]).standard,
        Check::Invalid,
        "the secret A deleted signs nothing on B"
    );
}

#[tokio::test]
async fn a_simulated_call_whose_node_dies_is_played_to_its_end_by_the_other_node_once() {
    if !on_postgres("carrier_adoption") {
        return;
    }
    let receiver = Receiver::start().await;
    // A talk long enough to kill the playing node in the middle of it.
    let settings = [("--sim-ring-ms", "100"), ("--sim-talk-ms", "3000")];
    let (a, b, _database) = two_nodes(&settings).await;
    let account = a.admin_create_account("carrier").await;
    update_account(
        &a,
        &account,
        &json!({ "default_callback_url": receiver.url("/sim") }),
    )
    .await;
    let call_uuid = make_call(&a, &account, &json!({})).await;
    // Ring and StartApp played by A, then A dies while the call is talking.
    receiver.wait_for("/sim", 3, WAIT).await;
    drop(a.kill());

    let arrivals = receiver
        .wait_until("the Hangup", WAIT, |all| {
            all.iter().any(|a| a.field("Event").as_deref() == Some("Hangup"))
        })
        .await;
    // The kill may catch a send in flight: that event arrives twice, under one event id.
    let mut events: Vec<(u32, String)> = arrivals
        .iter()
        .map(|a| (a.sequence(), a.expect_field("Event")))
        .collect();
    events.dedup();
    assert_eq!(
        events,
        [
            (1, "CallInitiated".to_owned()),
            (2, "Ring".to_owned()),
            (3, "StartApp".to_owned()),
            (4, "Hangup".to_owned()),
        ],
        "the call ended, played on by the surviving node, its events in order"
    );
    assert!(arrivals.iter().all(|a| a.expect_field("CallUUID") == call_uuid));
    let ids: HashSet<String> = arrivals.iter().map(Arrival::event_id).collect();
    assert_eq!(ids.len(), 4, "a repeated send carries its event's id");
    // No step was played twice: the call's log holds each event once, and it ended.
    let log = b
        .get(&account, &account.path(&format!("/calls/{call_uuid}/callbacks")))
        .await
        .expect(200);
    let sequences: Vec<u64> = log["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["sequence"].as_u64())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4], "{log}");
    let call = b
        .get(&account, &account.path(&format!("/calls/{call_uuid}")))
        .await
        .expect(200);
    assert_eq!(call["call_status"], "completed", "{call}");
}

#[tokio::test]
async fn a_node_with_another_secret_key_refuses_to_start_on_the_database() {
    if !on_postgres("secret_key_mismatch") {
        return;
    }
    let data = DataDir::new();
    let first = start_server_on(data.sharing(), &[]).await;
    first.admin_create_account("sealed").await;
    let other = data.sharing();
    let url = other.database_url();
    let output = other.run_cli_within(
        &[
            "serve",
            "--database",
            &url,
            "--secret-key",
            "another key that cannot open the stored tokens",
            "--listen",
            "127.0.0.1:0",
        ],
        Duration::from_secs(30),
    );
    assert!(!output.status.success(), "a node with another key must not serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("same secret_key"),
        "the reason is named: {stderr}"
    );
}
