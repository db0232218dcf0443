//! Signatures of real deliveries (PRODUCT.md §4.4, `reference/vobiz-api.md` §8): every
//! callback verifies with `signing::verify_request` under the account's auth token and its
//! signing secrets; a second secret adds a second `v1,` entry; a sub-account's `-MA-` headers
//! are keyed by its parent's token; a key change signs the very next callback. The signing
//! arithmetic itself is tested in `signing`.

use reqwest::Method;
use serde_json::json;
use signing::standard::SigningSecret;
use signing::{verify_request, CapturedRequest, Check, Keys, Report};

use super::{register_call, report_whole_call, WAIT};
use crate::fixture::{send, Account, Server};
use crate::receiver::{Arrival, Receiver};

/// How far `webhook-timestamp` may be from now (the Standard Webhooks default).
const TOLERANCE_S: i64 = 300;

/// The secret shown in the account's creation answer.
#[track_caller]
pub fn creation_secret(account: &Account) -> SigningSecret {
    let value = account.json["signing_secret"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no signing_secret.secret in {}", account.json));
    SigningSecret::parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

/// Checks every scheme on a recorded request.
pub fn verify(
    arrival: &Arrival,
    auth_token: &str,
    parent_token: Option<&str>,
    secrets: &[SigningSecret],
) -> Report {
    verify_request(
        &CapturedRequest {
            url: &arrival.url,
            headers: &arrival.headers,
            body: &arrival.body,
        },
        &Keys {
            auth_token: Some(auth_token.as_bytes()),
            parent_token: parent_token.map(str::as_bytes),
            secrets,
        },
        clock::unix_now(),
        TOLERANCE_S,
    )
}

/// All five checks valid: V2, V3, MA-V2, MA-V3 and Standard Webhooks.
#[track_caller]
pub fn assert_all_valid(report: &Report, what: &str) {
    let valid = [
        &report.v2,
        &report.v3,
        &report.ma_v2,
        &report.ma_v3,
        &report.standard,
    ]
    .iter()
    .all(|check| **check == Check::Valid);
    assert!(valid, "{what}: {report:?}");
}

/// The `v1,` entries of `webhook-signature`.
fn n_signatures(arrival: &Arrival) -> usize {
    arrival
        .expect_header("webhook-signature")
        .split(' ')
        .filter(|part| part.starts_with("v1,"))
        .count()
}

#[tokio::test]
async fn real_post_and_get_callbacks_verify_with_the_token_and_the_signing_secret() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("signed").await;
    let secret = creation_secret(&account);
    let by_post = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/post?k=v") }),
    )
    .await;
    let by_get = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/get?k=v"), "status_method": "GET" }),
    )
    .await;
    report_whole_call(&server, &by_post).await;
    report_whole_call(&server, &by_get).await;
    receiver.wait_for("/post", 4, WAIT).await;
    receiver.wait_for("/get", 4, WAIT).await;

    for arrival in receiver.arrivals() {
        let what = format!("{} {}", arrival.method, arrival.url);
        assert_all_valid(
            &verify(&arrival, &account.auth_token, None, std::slice::from_ref(&secret)),
            &what,
        );
        assert_eq!(n_signatures(&arrival), 1, "{what}: one secret, one signature");
        // A main account's MA signatures use its own token, so they equal V2 and V3.
        assert_eq!(
            arrival.expect_header("x-vobiz-signature-ma-v2"),
            arrival.expect_header("x-vobiz-signature-v2")
        );
        assert_eq!(
            arrival.expect_header("x-vobiz-signature-ma-v3"),
            arrival.expect_header("x-vobiz-signature-v3")
        );
        for nonce in ["x-vobiz-signature-v2-nonce", "x-vobiz-signature-v3-nonce"] {
            let value = arrival.expect_header(nonce);
            assert!(
                value.len() == 20 && value.bytes().all(|b| b.is_ascii_digit()),
                "{nonce} is 20 decimal digits: {value:?}"
            );
        }
    }

    // The checks are not vacuous: a wrong token, secret or body fails them.
    let sample = &receiver.arrivals_to("/post")[0];
    let wrong = verify(
        sample,
        "not-the-token",
        None,
        &[SigningSecret::from_bytes([7; 32])],
    );
    assert_eq!(
        (wrong.v2, wrong.v3, wrong.standard),
        (Check::Invalid, Check::Invalid, Check::Invalid)
    );
    let mut tampered = sample.clone();
    tampered.body.extend_from_slice(b"&Extra=1");
    assert_eq!(
        verify(&tampered, &account.auth_token, None, &[secret]).standard,
        Check::Invalid
    );
}

/// Registers a call whose only callback goes to `path` and waits for it: the newest arrival.
async fn next_callback(server: &Server, account: &Account, receiver: &Receiver, path: &str) -> Arrival {
    let n = receiver.arrivals_to(path).len();
    register_call(server, account, &json!({ "status_url": receiver.url(path) })).await;
    receiver
        .wait_for(path, n + 1, WAIT)
        .await
        .pop()
        .expect("an arrival")
}

#[tokio::test]
async fn a_second_signing_secret_adds_a_second_signature_and_either_verifies() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("rotation").await;
    let first = creation_secret(&account);
    let before = next_callback(&server, &account, &receiver, "/cb").await;
    assert_eq!(n_signatures(&before), 1);

    let created = send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let second = SigningSecret::parse(created["secret"].as_str().expect("secret")).expect("whsec_ secret");
    // The very next call's first callback: key changes have no cache window.
    let both = next_callback(&server, &account, &receiver, "/cb").await;
    assert_eq!(n_signatures(&both), 2, "signed by both secrets at once");
    for secrets in [vec![first.clone()], vec![second.clone()], vec![first, second]] {
        assert_all_valid(
            &verify(&both, &account.auth_token, None, &secrets),
            "either active secret verifies",
        );
    }
}

/// A secret deleted because it leaked must never sign again once the DELETE answered, and a
/// rotated token (the account's, or its parent's for the `-MA-` signatures) keys the very next
/// callback — with the old keys cached from the callbacks just before.
#[tokio::test]
async fn a_deleted_secret_or_a_rotated_token_never_signs_a_later_callback() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let parent = server.admin_create_account("keys-parent").await;
    let account = server.admin_create_sub_account("keys", &parent).await;
    let leaked = creation_secret(&account);
    let leaked_id = account.json["signing_secret"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_owned();
    let created = send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let kept = SigningSecret::parse(created["secret"].as_str().expect("secret")).expect("whsec_ secret");
    let signed_by_both = next_callback(&server, &account, &receiver, "/k").await;
    assert_eq!(n_signatures(&signed_by_both), 2);

    server
        .delete(&account, &account.path(&format!("/signing-secrets/{leaked_id}")))
        .await
        .expect(204);
    let after_delete = next_callback(&server, &account, &receiver, "/k").await;
    assert_eq!(n_signatures(&after_delete), 1, "one secret left, one signature");
    let tokens = (account.auth_token.as_str(), Some(parent.auth_token.as_str()));
    assert_eq!(
        verify(&after_delete, tokens.0, tokens.1, &[leaked]).standard,
        Check::Invalid,
        "the deleted secret signs nothing after the DELETE"
    );
    assert_all_valid(
        &verify(&after_delete, tokens.0, tokens.1, std::slice::from_ref(&kept)),
        "the kept secret still signs",
    );

    let rotate = |auth_id: &str| {
        let path = format!("/api/v1/admin/accounts/{auth_id}/rotate-token");
        let server = &server;
        async move {
            send(server.operator(Method::POST, &path)).await.expect(200)["auth_token"]
                .as_str()
                .expect("a new token")
                .to_owned()
        }
    };
    let own = rotate(&account.auth_id).await;
    let after_rotation = next_callback(&server, &account, &receiver, "/k").await;
    assert_all_valid(
        &verify(&after_rotation, &own, tokens.1, std::slice::from_ref(&kept)),
        "V2/V3 by the new token at once",
    );
    let old = verify(&after_rotation, tokens.0, tokens.1, std::slice::from_ref(&kept));
    assert_eq!(
        (old.v2, old.v3),
        (Check::Invalid, Check::Invalid),
        "not by the old token"
    );

    let parents = rotate(&parent.auth_id).await;
    let after_parent = next_callback(&server, &account, &receiver, "/k").await;
    assert_all_valid(
        &verify(&after_parent, &own, Some(&parents), std::slice::from_ref(&kept)),
        "MA by the parent's new token at once",
    );
    let old = verify(&after_parent, &own, tokens.1, &[kept]);
    assert_eq!(
        (old.ma_v2, old.ma_v3),
        (Check::Invalid, Check::Invalid),
        "not by the parent's old token"
    );
}

#[tokio::test]
async fn a_sub_accounts_ma_signatures_are_keyed_by_its_parents_token() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let parent = server.admin_create_account("parent").await;
    let sub = server.admin_create_sub_account("sub", &parent).await;
    let secret = creation_secret(&sub);
    register_call(&server, &sub, &json!({ "status_url": receiver.url("/sub") })).await;
    let arrival = &receiver.wait_for("/sub", 1, WAIT).await[0];
    assert_eq!(arrival.expect_field("auth_id"), sub.auth_id);

    assert_all_valid(
        &verify(
            arrival,
            &sub.auth_token,
            Some(&parent.auth_token),
            std::slice::from_ref(&secret),
        ),
        "V2/V3 by the sub-account's token, MA by the parent's",
    );
    assert_ne!(
        arrival.expect_header("x-vobiz-signature-ma-v2"),
        arrival.expect_header("x-vobiz-signature-v2")
    );
    let own_token_only = verify(arrival, &sub.auth_token, None, &[secret]);
    assert_eq!(
        (own_token_only.ma_v2, own_token_only.ma_v3),
        (Check::Invalid, Check::Invalid),
        "MA signatures are not keyed by the sub-account's own token"
    );
}

mod clock {
    //! The tests' one wall-clock read: `webhook-timestamp` is checked against real time.

    #[allow(clippy::disallowed_methods)]
    pub fn unix_now() -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970");
        i64::try_from(since_epoch.as_secs()).expect("seconds fit in i64")
    }
}
