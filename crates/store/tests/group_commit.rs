//! A write that fails half-way leaves nothing behind, and the concurrent writes beside it are
//! kept. On SQLite this is the writer's group commit: concurrent writes share one transaction,
//! each in its own savepoint. On PostgreSQL (`HOOKLINE_TEST_DATABASE=postgres`, see
//! `common/mod.rs`) each write is its own transaction, and the same contract must hold.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::TestStore;
use domain::call::{Call, Direction, Engine};
use domain::CallUuid;
use store::{CallCreation, IdempotentAnswer, Store, StoreError};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).expect("valid")
}

fn call(auth_id: &domain::AuthId, n: u128) -> Call {
    Call::new(
        CallUuid::from_random(n | 0xbeef << 80),
        auth_id.clone(),
        Direction::Outbound,
        "+14155551234".into(),
        "+14155550100".into(),
        Engine::External,
        at(0),
    )
}

/// A store with one account and one call (whose id a second call would take again). The
/// [`TestStore`] keeps the database.
async fn store_with_a_call() -> (Arc<dyn Store>, domain::AuthId, Call, TestStore) {
    let db = TestStore::open([5; 32]).await;
    let store = Arc::clone(&db.store);
    let auth_id = store
        .create_account("Batch", None, at(0))
        .await
        .expect("account")
        .account
        .auth_id;
    let taken = call(&auth_id, 0);
    store.create_call(&taken, None, at(0)).await.expect("first call");
    (store, auth_id, taken, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_half_way_leaves_nothing_and_its_batch_neighbours_are_kept() {
    let (store, auth_id, taken, _db) = store_with_a_call().await;

    let answer = IdempotentAnswer {
        request_hash: [7; 32],
        status: 201,
        body: "{}".to_owned(),
    };
    // The idempotency key is written before the duplicate call id is refused.
    let mut writes = Vec::new();
    for n in 1..=40u128 {
        let (store, auth_id) = (Arc::clone(&store), auth_id.clone());
        writes.push(tokio::spawn(async move {
            store
                .create_call(&call(&auth_id, n), None, at(1))
                .await
                .map(|_| ())
        }));
    }
    let failing = {
        let (store, taken, answer) = (Arc::clone(&store), taken.clone(), answer.clone());
        tokio::spawn(async move { store.create_call(&taken, Some(("key-1", answer)), at(1)).await })
    };
    for write in writes {
        write.await.expect("task").expect("a distinct call is stored");
    }
    assert!(
        matches!(failing.await.expect("task"), Err(StoreError::Conflict(_))),
        "a duplicate call id is a conflict"
    );

    assert_eq!(
        store
            .idempotent_answer(&auth_id, "key-1", at(2))
            .await
            .expect("read"),
        None,
        "the failed write's idempotency key was rolled back"
    );
    for n in 1..=40u128 {
        let stored = store
            .call(None, &call(&auth_id, n).call_uuid)
            .await
            .expect("read");
        assert!(stored.is_some(), "call {n} was committed");
    }
    // The key is free again: the same request now succeeds and is remembered.
    let retried = store
        .create_call(&call(&auth_id, 99), Some(("key-1", answer.clone())), at(3))
        .await
        .expect("retry");
    assert!(matches!(retried, CallCreation::Created(_)));
    assert_eq!(
        store
            .idempotent_answer(&auth_id, "key-1", at(4))
            .await
            .expect("read"),
        Some(answer)
    );
}

#[tokio::test]
async fn a_write_failing_half_way_alone_in_its_transaction_leaves_nothing() {
    let (store, auth_id, taken, _db) = store_with_a_call().await;
    let answer = IdempotentAnswer {
        request_hash: [9; 32],
        status: 201,
        body: "{}".to_owned(),
    };
    let refused = store.create_call(&taken, Some(("key-2", answer)), at(1)).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(
        store
            .idempotent_answer(&auth_id, "key-2", at(2))
            .await
            .expect("read"),
        None,
        "the idempotency key written before the refusal was rolled back"
    );
    store
        .create_call(&call(&auth_id, 1), None, at(3))
        .await
        .expect("the writer goes on after a rolled-back write");
}
