//! Isolation by endpoint within one host (PRODUCT.md §4.2: "different destinations never wait
//! on each other"): a path that hangs takes one permit of its host's ceiling and pauses its
//! own breaker, while the host's healthy paths keep their callbacks coming.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{register_call, register_calls, status_delivery, wait_until_settled, WAIT};
use crate::receiver::{Receiver, Reply, Script};

/// Calls whose only callback goes to the hanging path, and calls to the healthy path.
const N_HANGING: usize = 12;
const N_HEALTHY: usize = 20;
/// The host's ceiling: fewer than the hanging path's deliveries.
const CEILING: &str = "4";

#[tokio::test]
async fn a_hanging_path_neither_starves_nor_pauses_the_healthy_paths_of_its_host() {
    let receiver = Receiver::start().await;
    // Far past the attempt budget (1 s: roomy for a first healthy attempt on a loaded machine).
    receiver.on(
        "/hang",
        Script::always(Reply::ok().after(Duration::from_secs(10))),
    );
    // A breaker pause longer than the test's patience: had the host been paused, the healthy
    // path's callbacks could not arrive in time.
    let server = super::start_server(&[
        ("--per-host-concurrency", CEILING),
        ("--callback-timeout-ms", "1000"),
        ("--breaker-threshold", "3"),
        ("--breaker-pause-ms", "120000"),
        ("--retry-max", "20"),
    ])
    .await;
    let account = server.admin_create_account("one-host").await;
    let hanging = register_calls(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/hang") }),
        N_HANGING,
    )
    .await;
    // Wait until the hanging path has failed often enough to open a breaker (the old engine's
    // per-host breaker then paused every path of the host).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut timeouts = 0;
        for call_uuid in &hanging {
            let objects = super::callbacks(&server, &account, call_uuid).await;
            let attempts = super::attempts(status_delivery(&objects, 1)).clone();
            timeouts += attempts.iter().filter(|a| a["error"] == "timeout").count();
        }
        if timeouts >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hanging path never timed out three times"
        );
        // The delivery log has no change signal; poll it, bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Every healthy call registered now, while the hanging path's own breaker is open, is
    // delivered on its first attempt. (That a hanging path holds one permit of the host while
    // it is in flight is the fair share's unit test in `dispatcher::targets`.)
    let mut healthy = Vec::new();
    for i in 0..N_HEALTHY {
        let path = format!("/ok/{}", i % 2);
        healthy.push(register_call(&server, &account, &json!({ "status_url": receiver.url(&path) })).await);
    }
    for call_uuid in &healthy {
        let objects = wait_until_settled(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1);
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        let attempts = super::attempts(delivery);
        assert_eq!(
            attempts.len(),
            1,
            "a healthy path is never failed or paused for its neighbour: {delivery}"
        );
    }
    let on_healthy = receiver.arrivals_to("/ok/0").len() + receiver.arrivals_to("/ok/1").len();
    assert_eq!(on_healthy, N_HEALTHY);

    // The hanging path was held back, not dropped: still pending, and it never had more
    // requests than the host's ceiling before its own breaker paused it.
    for call_uuid in &hanging {
        let objects = super::callbacks(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1);
        assert_eq!(delivery["status"], "pending", "{delivery}");
    }
    let on_hanging = receiver.arrivals_to("/hang").len();
    assert!(
        on_hanging <= CEILING.parse().expect("a number"),
        "the paused path got {on_hanging} requests"
    );
}
