//! List answers of applications and trunks: the `{"api_id","meta","objects"}` envelope, paging
//! by `limit`/`offset` oldest first, `next`/`previous` links, and the 400 for a bad `limit` or
//! `offset` (PRODUCT.md §2, §6).
//!
//! The same checks run on both collections and on both path spellings.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{send, Account, Server};
use crate::shapes::{detail_for, len, without_api_id};

/// One collection under the account: its path and the id field of its objects.
struct Collection {
    suffix: &'static str,
    id_field: &'static str,
}

const APPLICATIONS: Collection = Collection {
    suffix: "/applications",
    id_field: "app_id",
};

const TRUNKS: Collection = Collection {
    suffix: "/trunks",
    id_field: "trunk_id",
};

/// Creates `n` objects one after another and returns their ids in creation order.
async fn create_many(server: &Server, account: &Account, collection: &Collection, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let created = server
            .send_json(
                account,
                Method::POST,
                &account.path(collection.suffix),
                &json!({"name": format!("item {i}")}),
            )
            .await
            .expect(201);
        ids.push(created[collection.id_field].as_str().expect("id").to_owned());
    }
    ids
}

fn ids_of(page: &Value, id_field: &str) -> Vec<String> {
    page["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|object| object[id_field].as_str().expect("id").to_owned())
        .collect()
}

/// Five objects, `limit=2`: three pages forward by `next`, then back by `previous`.
async fn check_paging(collection: &Collection) {
    let server = Server::start().await;
    let account = server.admin_create_account("lists").await;
    let ids = create_many(&server, &account, collection, 5).await;

    let first = server
        .get(&account, &format!("{}?limit=2", account.path(collection.suffix)))
        .await
        .expect(200);
    let mut keys: Vec<&String> = first.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["api_id", "meta", "objects"]);
    assert_eq!(first["meta"]["limit"], 2);
    assert_eq!(first["meta"]["offset"], 0);
    assert_eq!(first["meta"]["total_count"], 5);
    assert_eq!(first["meta"]["previous"], Value::Null);
    assert_eq!(ids_of(&first, collection.id_field), ids[0..2]);

    let mut pages = vec![first];
    while let Some(next) = pages.last().and_then(|page| page["meta"]["next"].as_str()) {
        assert!(next.starts_with('/'), "next is a path: {next}");
        let page = server.get(&account, next).await.expect(200);
        pages.push(page);
        assert!(pages.len() <= 3, "more than three pages of two for five objects");
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(ids_of(&pages[1], collection.id_field), ids[2..4]);
    assert_eq!(ids_of(&pages[2], collection.id_field), ids[4..5]);
    assert_eq!(pages[2]["meta"]["offset"], 4);
    assert_eq!(pages[2]["meta"]["next"], Value::Null);
    for page in &pages {
        assert_eq!(page["meta"]["total_count"], 5);
        assert_eq!(page["meta"]["limit"], 2);
    }

    let back = pages[2]["meta"]["previous"]
        .as_str()
        .expect("the last page has a previous");
    let middle = server.get(&account, back).await.expect(200);
    assert_eq!(without_api_id(&middle), without_api_id(&pages[1]));
    let back = middle["meta"]["previous"]
        .as_str()
        .expect("the middle page has a previous");
    let start = server.get(&account, back).await.expect(200);
    assert_eq!(ids_of(&start, collection.id_field), ids[0..2]);
    assert_eq!(start["meta"]["previous"], Value::Null);

    let everything = server
        .get(&account, &account.path(collection.suffix))
        .await
        .expect(200);
    assert_eq!(everything["meta"]["limit"], 20, "default limit");
    assert_eq!(everything["meta"]["offset"], 0);
    assert_eq!(everything["meta"]["next"], Value::Null);
    assert_eq!(everything["meta"]["previous"], Value::Null);
    assert_eq!(ids_of(&everything, collection.id_field), ids);

    let past_the_end = server
        .get(&account, &format!("{}?offset=5", account.path(collection.suffix)))
        .await
        .expect(200);
    assert_eq!(len(&past_the_end["objects"]), 0);
    assert_eq!(past_the_end["meta"]["next"], Value::Null);
    assert_eq!(past_the_end["meta"]["total_count"], 5);

    for limit in [1usize, 100] {
        let page = server
            .get(
                &account,
                &format!("{}/?limit={limit}&offset=1", account.path(collection.suffix)),
            )
            .await
            .expect(200);
        assert_eq!(page["meta"]["limit"], limit);
        assert_eq!(ids_of(&page, collection.id_field), ids[1..(1 + limit).min(5)]);
    }
}

#[tokio::test]
async fn applications_are_listed_oldest_first_in_pages_linked_by_next_and_previous() {
    check_paging(&APPLICATIONS).await;
}

#[tokio::test]
async fn trunks_are_listed_oldest_first_in_pages_linked_by_next_and_previous() {
    check_paging(&TRUNKS).await;
}

#[tokio::test]
async fn paging_works_on_the_vobiz_application_path() {
    let server = Server::start().await;
    let account = server.admin_create_account("lists").await;
    let ids = create_many(&server, &account, &APPLICATIONS, 3).await;
    let page = server
        .get(&account, &account.alias_path("/Application/?limit=1&offset=2"))
        .await
        .expect(200);
    assert_eq!(ids_of(&page, "app_id"), ids[2..3]);
    assert_eq!(page["meta"]["total_count"], 3);
    assert_eq!(page["meta"]["next"], Value::Null);
    let previous = page["meta"]["previous"].as_str().expect("previous");
    let earlier = server.get(&account, previous).await.expect(200);
    assert_eq!(ids_of(&earlier, "app_id"), ids[1..2]);
}

#[tokio::test]
async fn a_bad_limit_or_offset_is_refused_naming_the_parameter() {
    let server = Server::start().await;
    let account = server.admin_create_account("lists").await;
    create_many(&server, &account, &APPLICATIONS, 1).await;
    create_many(&server, &account, &TRUNKS, 1).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=1.5", "offset"),
        ("offset=", "offset"),
        ("limit=2&offset=-5", "offset"),
    ];
    let mut failures = Vec::new();
    for collection in [APPLICATIONS, TRUNKS] {
        for list in [
            account.path(collection.suffix),
            account.alias_path(&format!("{}/", collection.suffix)),
        ] {
            for (query, parameter) in cases {
                let path = format!("{list}?{query}");
                let answer = send(server.authed(&account, Method::GET, &path)).await;
                let named = detail_for(&answer.json["details"], parameter).is_some();
                if answer.status != 400 || answer.json["code"] != "invalid_field" || !named {
                    failures.push(format!("GET {path}: {} {}", answer.status, answer.json));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "refusals that went wrong:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_largest_offset_answers_an_empty_page_without_links_past_the_end() {
    let server = Server::start().await;
    let account = server.admin_create_account("Offsets").await;
    let path = account.path(&format!("/applications?offset={}", u64::MAX));
    let page = server.get(&account, &path).await.expect(200);
    assert_eq!(page["objects"], json!([]));
    assert_eq!(page["meta"]["next"], Value::Null, "{page}");
}
