//! The delivery queue of a store: leases, reclaiming expired ones, per-call ordering, retries
//! and fallback bookkeeping, redelivery. A real database: an SQLite file in a temp directory,
//! or PostgreSQL with `HOOKLINE_TEST_DATABASE=postgres` (see `common/mod.rs`).

mod common;

use chrono::{DateTime, Utc};
use common::{Backend, TestStore};
use domain::call::{Call, Direction, Engine, Report, Target};
use domain::{CallUuid, CallbackUrl, HttpMethod, TargetKind, UrlPolicy};
use store::{AfterAttempt, AttemptRecord, ClaimedDelivery, Redelivery};

async fn store() -> TestStore {
    TestStore::open([3; 32]).await
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).expect("valid")
}

/// A call whose status channel goes to `url`.
async fn call_to(store: &TestStore, url: &str) -> Call {
    let created = store.create_account("Queue", None, at(0)).await.expect("account");
    let call = Call {
        status: Some(Target {
            url: CallbackUrl::parse(url, UrlPolicy { allow_private: true }).expect("url"),
            method: HttpMethod::Post,
        }),
        ..Call::new(
            CallUuid::from_random(rand_u128()),
            created.account.auth_id,
            Direction::Outbound,
            "+14155551234".into(),
            "+14155550100".into(),
            Engine::External,
            at(0),
        )
    };
    store.create_call(&call, None, at(0)).await.expect("call");
    call
}

fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u128::from(NEXT.fetch_add(1, Ordering::SeqCst)) << 64 | 0xfeed
}

fn attempt(claimed: &ClaimedDelivery, error: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        attempt: claimed.attempt_count + 1,
        target: claimed.target,
        url: claimed.target_url().to_owned(),
        started_at: at(1),
        latency_ms: 3,
        status_code: if error.is_none() { Some(200) } else { Some(500) },
        error: error.map(str::to_owned),
        retry_after_ms: None,
    }
}

/// One delivery claimed under a lease that lapsed (it ended at 20) and claimed again (until
/// 1 000): the stale claim and the current one.
async fn claimed_twice(store: &TestStore) -> (ClaimedDelivery, ClaimedDelivery) {
    call_to(store, "http://127.0.0.1:9/a").await;
    let stale = store.claim_due(1, at(10), at(20)).await.expect("claim").remove(0);
    let current = store
        .claim_due(1, at(30), at(1_000))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(
        stale.delivery_id, current.delivery_id,
        "the expired lease was taken over"
    );
    (stale, current)
}

#[tokio::test]
async fn a_claimed_delivery_is_not_claimed_again_until_its_lease_expires() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/a").await;
    let first = store.claim_due(10, at(10), at(1_000)).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_due(10, at(500), at(2_000))
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    let again = store.claim_due(10, at(1_000), at(3_000)).await.expect("claim");
    assert_eq!(again.len(), 1, "an expired lease is reclaimed");
    assert_eq!(again[0].event_id, first[0].event_id);
}

/// A release puts back only what the claim it names still holds: a delivery whose lease
/// lapsed and that was claimed again is not the old claim's to put back.
#[tokio::test]
async fn a_release_under_a_lapsed_lease_leaves_the_new_claim_alone() {
    let store = store().await;
    let (stale, current) = claimed_twice(&store).await;
    store
        .release(&[stale.delivery_id], at(20), at(40))
        .await
        .expect("release");
    assert!(
        store
            .claim_due(1, at(50), at(2_000))
            .await
            .expect("claim")
            .is_empty(),
        "still held by the current claim"
    );
    store
        .release(&[current.delivery_id], at(1_000), at(60))
        .await
        .expect("release");
    assert_eq!(
        store.claim_due(1, at(60), at(2_000)).await.expect("claim").len(),
        1
    );
}

/// Claims the database committed but whose answers were lost leave leases nobody works on:
/// `release_claims` puts back exactly those whose lease ends in the range, claimable at once,
/// and no other claim's.
#[tokio::test]
async fn release_claims_puts_back_the_claims_in_its_range_only() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/a").await;
    let kept = store.claim_due(1, at(10), at(1_000_000)).await.expect("claim");
    call_to(&store, "http://127.0.0.1:9/b").await;
    let lost_b = store.claim_due(1, at(20), at(1_000_001)).await.expect("claim");
    call_to(&store, "http://127.0.0.1:9/c").await;
    let lost_c = store.claim_due(1, at(20), at(1_000_002)).await.expect("claim");
    call_to(&store, "http://127.0.0.1:9/d").await;
    let later = store.claim_due(1, at(20), at(1_000_003)).await.expect("claim");
    assert_eq!(
        (kept.len(), lost_b.len(), lost_c.len(), later.len()),
        (1, 1, 1, 1)
    );
    if store.backend() == Backend::Postgres {
        // The same lease end on another node is that node's claim: left alone.
        call_to(&store, "http://127.0.0.1:9/e").await;
        let foreign = store.claim_due(1, at(20), at(1_000_002)).await.expect("claim");
        let other = format!(
            "UPDATE deliveries SET leased_by = 'another node' WHERE delivery_id = {}",
            foreign[0].delivery_id
        );
        assert_eq!(store.update_outside(&other), 1);
    }
    let (from, to) = (at(1_000_001), at(1_000_002));
    assert_eq!(store.release_claims(from, to).await.expect("release"), 2);
    let mut again: Vec<i64> = store
        .claim_due(10, at(30), at(2_000_000))
        .await
        .expect("claim")
        .iter()
        .map(|d| d.delivery_id)
        .collect();
    again.sort_unstable();
    let mut expected = vec![lost_b[0].delivery_id, lost_c[0].delivery_id];
    expected.sort_unstable();
    assert_eq!(
        again, expected,
        "the lost claims' deliveries, not the kept, the later or another node's"
    );
    assert_eq!(store.release_claims(from, to).await.expect("release"), 0);
}

/// On SQLite one process owns the file, so the leases found at start are a dead run's and are
/// all released. On PostgreSQL other nodes may be alive and holding theirs: nothing is released
/// (a dead node's leases are released by the others once it has been silent long enough).
#[tokio::test]
async fn release_all_leases_frees_claims_of_a_dead_run_on_sqlite_only() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/a").await;
    assert_eq!(
        store
            .claim_due(10, at(10), at(1_000_000))
            .await
            .expect("claim")
            .len(),
        1
    );
    let (released, claimable) = match store.backend() {
        Backend::Sqlite => (1, 1),
        Backend::Postgres => (0, 0),
    };
    assert_eq!(store.release_all_leases().await.expect("release"), released);
    assert_eq!(
        store
            .claim_due(10, at(20), at(1_000_000))
            .await
            .expect("claim")
            .len(),
        claimable
    );
}

#[tokio::test]
async fn a_later_event_waits_while_an_earlier_one_to_the_same_url_is_pending() {
    let store = store().await;
    let call = call_to(&store, "http://127.0.0.1:9/a").await;
    store
        .apply_report(None, &call.call_uuid, Report::Ring, at(5), at(5))
        .await
        .expect("ring");
    let claimed = store.claim_due(10, at(10), at(20)).await.expect("claim");
    assert_eq!(claimed.len(), 1, "only the first event is claimable");
    assert_eq!(claimed[0].sequence, 1);
    store
        .record_attempt(
            claimed[0].delivery_id,
            &attempt(&claimed[0], Some("status")),
            AfterAttempt::RetryAt(at(100)),
            at(11),
        )
        .await
        .expect("record");
    assert!(
        store
            .claim_due(10, at(50), at(60))
            .await
            .expect("claim")
            .is_empty(),
        "the second event still waits behind the retrying first"
    );
    let retried = store.claim_due(10, at(100), at(200)).await.expect("claim");
    assert_eq!(
        (retried.len(), retried[0].sequence, retried[0].target_attempts),
        (1, 1, 1)
    );
    store
        .record_attempt(
            retried[0].delivery_id,
            &attempt(&retried[0], None),
            AfterAttempt::Delivered,
            at(101),
        )
        .await
        .expect("record");
    let next = store.claim_due(10, at(102), at(200)).await.expect("claim");
    assert_eq!((next.len(), next[0].sequence), (1, 2));
}

#[tokio::test]
async fn other_calls_do_not_wait_behind_a_failing_one() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/slow").await;
    call_to(&store, "http://127.0.0.1:9/fast").await;
    let claimed = store.claim_due(10, at(10), at(20)).await.expect("claim");
    assert_eq!(claimed.len(), 2);
}

#[tokio::test]
async fn the_fallback_restarts_the_per_url_budget_and_attempts_keep_counting() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/a").await;
    let claimed = store.claim_due(1, at(10), at(20)).await.expect("claim").remove(0);
    store
        .record_attempt(
            claimed.delivery_id,
            &attempt(&claimed, Some("status")),
            AfterAttempt::FallbackAt(at(11)),
            at(11),
        )
        .await
        .expect("record");
    let again = store.claim_due(1, at(12), at(20)).await.expect("claim").remove(0);
    assert_eq!(
        (again.target, again.target_attempts, again.attempt_count),
        (TargetKind::Fallback, 0, 1)
    );
    store
        .record_attempt(
            again.delivery_id,
            &attempt(&again, Some("status")),
            AfterAttempt::Failed,
            at(13),
        )
        .await
        .expect("record");
    let log = store
        .event_deliveries(&again.auth_id, &again.event_id)
        .await
        .expect("log");
    assert_eq!(log[0].status.as_str(), "failed");
    assert_eq!(log[0].attempts.len(), 2);
    assert_eq!(log[0].attempts[1].target, TargetKind::Fallback);

    assert_eq!(
        store
            .redeliver(&again.auth_id, &again.event_id, at(20))
            .await
            .expect("redeliver"),
        Redelivery::Queued(1)
    );
    assert_eq!(
        store
            .redeliver(&again.auth_id, &again.event_id, at(21))
            .await
            .expect("redeliver"),
        Redelivery::StillPending
    );
    let redelivered = store.claim_due(1, at(22), at(30)).await.expect("claim").remove(0);
    assert_eq!(
        (
            redelivered.event_id,
            redelivered.target,
            redelivered.target_attempts,
            redelivered.attempt_count
        ),
        (again.event_id, TargetKind::Primary, 0, 2)
    );
}

#[tokio::test]
async fn a_released_delivery_comes_back_at_its_new_time_without_an_attempt() {
    let store = store().await;
    call_to(&store, "http://127.0.0.1:9/a").await;
    let claimed = store
        .claim_due(1, at(10), at(1_000))
        .await
        .expect("claim")
        .remove(0);
    store
        .release(&[claimed.delivery_id], at(1_000), at(500))
        .await
        .expect("release");
    assert!(store
        .claim_due(1, at(499), at(1_000))
        .await
        .expect("claim")
        .is_empty());
    let back = store
        .claim_due(1, at(500), at(1_000))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(back.attempt_count, 0);
    assert_eq!(
        store.next_due_at().await.expect("due"),
        Some(at(1_000)),
        "leased until then"
    );
}

#[tokio::test]
async fn a_result_recorded_under_an_expired_lease_is_logged_but_does_not_move_the_delivery() {
    let store = store().await;
    let (stale, current) = claimed_twice(&store).await;
    let finished = |claimed: &ClaimedDelivery, lease: DateTime<Utc>, after| store::FinishedAttempt {
        delivery_id: claimed.delivery_id,
        attempt: attempt(claimed, None),
        after,
        lease_until: Some(lease),
    };
    store
        .record_attempts(&[finished(&stale, at(20), AfterAttempt::Delivered)], at(40))
        .await
        .expect("record");
    let log = store
        .event_deliveries(&stale.auth_id, &stale.event_id)
        .await
        .expect("log");
    assert_eq!(log[0].status.as_str(), "pending", "the current holder decides");
    assert_eq!(log[0].attempts.len(), 1, "the stale attempt is still logged");
    store
        .record_attempts(&[finished(&current, at(1_000), AfterAttempt::Delivered)], at(50))
        .await
        .expect("record");
    let log = store
        .event_deliveries(&stale.auth_id, &stale.event_id)
        .await
        .expect("log");
    assert_eq!(log[0].status.as_str(), "delivered");
}

#[tokio::test]
async fn recording_says_when_other_work_may_have_become_claimable() {
    let store = store().await;
    let call = call_to(&store, "http://127.0.0.1:9/a").await;
    store
        .apply_report(None, &call.call_uuid, Report::Ring, at(5), at(5))
        .await
        .expect("ring");
    let record = |claimed: &ClaimedDelivery, after| store::FinishedAttempt {
        delivery_id: claimed.delivery_id,
        attempt: attempt(claimed, None),
        after,
        lease_until: None,
    };
    let first = store
        .claim_due(10, at(10), at(20))
        .await
        .expect("claim")
        .remove(0);
    assert!(
        store
            .record_attempts(&[record(&first, AfterAttempt::RetryAt(at(30)))], at(11))
            .await
            .expect("record"),
        "a retry is due at a new time"
    );
    let first = store
        .claim_due(10, at(30), at(40))
        .await
        .expect("claim")
        .remove(0);
    assert!(
        store
            .record_attempts(&[record(&first, AfterAttempt::Delivered)], at(31))
            .await
            .expect("record"),
        "the second event was waiting behind the first"
    );
    let second = store
        .claim_due(10, at(32), at(50))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(second.sequence, 2);
    assert!(
        !store
            .record_attempts(&[record(&second, AfterAttempt::Delivered)], at(33))
            .await
            .expect("record"),
        "nothing was waiting behind the last event"
    );
}

#[tokio::test]
async fn a_delivery_behind_an_earlier_event_has_no_due_time_until_that_one_ends() {
    let store = store().await;
    let call = call_to(&store, "http://127.0.0.1:9/a").await;
    for (report, ms) in [(Report::Ring, 5), (Report::Answer, 6)] {
        store
            .apply_report(None, &call.call_uuid, report, at(ms), at(ms))
            .await
            .expect("report");
    }
    let due = |log: &[store::DeliveryRecord]| -> Vec<Option<DateTime<Utc>>> {
        log.iter().map(|d| d.next_attempt_at).collect()
    };
    let log = store
        .call_deliveries(&call.auth_id, &call.call_uuid)
        .await
        .expect("log");
    assert_eq!(due(&log), vec![Some(at(0)), None, None], "the later two wait");

    let first = store
        .claim_due(10, at(10), at(20))
        .await
        .expect("claim")
        .remove(0);
    store
        .record_attempt(
            first.delivery_id,
            &attempt(&first, None),
            AfterAttempt::Failed,
            at(12),
        )
        .await
        .expect("record");
    let log = store
        .call_deliveries(&call.auth_id, &call.call_uuid)
        .await
        .expect("log");
    assert_eq!(
        due(&log),
        vec![None, Some(at(12)), None],
        "an end (even a failure) makes only the next event due"
    );
    let second = store.claim_due(10, at(13), at(30)).await.expect("claim");
    assert_eq!(second.iter().map(|d| d.sequence).collect::<Vec<_>>(), vec![2]);
}

#[tokio::test]
async fn a_delivery_whose_row_does_not_decode_is_failed_and_the_next_event_moves_on() {
    let store = store().await;
    let call = call_to(&store, "http://127.0.0.1:9/a").await;
    store
        .apply_report(None, &call.call_uuid, Report::Ring, at(5), at(5))
        .await
        .expect("ring");
    // The first event's fields altered outside Hookline (a call uuid needs no quoting).
    let altered = store.update_outside(&format!(
        "UPDATE events SET fields = 'not json' WHERE call_uuid = '{}' AND sequence = 1",
        call.call_uuid
    ));
    assert_eq!(altered, 1);

    assert!(
        store
            .claim_due(10, at(10), at(20))
            .await
            .expect("the claim itself works")
            .is_empty(),
        "the undecodable delivery is not handed out"
    );
    let log = store
        .call_deliveries(&call.auth_id, &call.call_uuid)
        .await
        .expect("log");
    assert_eq!(log[0].status.as_str(), "failed");
    let next = store.claim_due(10, at(11), at(30)).await.expect("claim");
    assert_eq!(next.iter().map(|d| d.sequence).collect::<Vec<_>>(), vec![2]);
}
