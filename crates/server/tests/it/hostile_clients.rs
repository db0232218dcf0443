//! Hostile API clients: a client that never finishes its headers (slow loris) or its body, one
//! that opens more connections than the cap, and heads too large or with too many headers. None
//! holds a connection forever, none gets a 500, and the server goes on serving everyone else.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::{send, Server};

/// Longer than any deadline these tests set: reaching it means the server held on.
const HELD_ON: Duration = Duration::from_secs(20);

async fn connect(server: &Server) -> TcpStream {
    let address = server.base_url().trim_start_matches("http://").to_owned();
    TcpStream::connect(address).await.expect("connecting")
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(HELD_ON, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {HELD_ON:?}"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

async fn healthy(server: &Server) {
    // On a fresh connection: these tests' short header timeout also ends idle keep-alive
    // connections, and a pooled one the server is closing just then fails the request.
    send(
        server
            .request(Method::GET, "/healthz")
            .header(reqwest::header::CONNECTION, "close"),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_while_others_are_served() {
    let server = Server::start_with(&["--header-read-timeout-ms", "300"]).await;
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookline\r\nX-Slow: ")
        .await
        .expect("writing");
    let mut silent = connect(&server).await;
    // Both are open and stuck; everyone else is served meanwhile.
    healthy(&server).await;
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    let answer = read_until_closed(&mut silent).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    healthy(&server).await;
}

#[tokio::test]
async fn a_body_slower_than_its_deadline_is_answered_408_and_nothing_is_written() {
    let server = Server::start_with(&["--body-read-timeout-ms", "300"]).await;
    let account = server.admin_create_account("slow body").await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: hookline\r\nX-Auth-ID: {}\r\nX-Auth-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": ",
        account.path("/applications"),
        account.auth_id,
        account.auth_token
    );
    stream.write_all(head.as_bytes()).await.expect("writing");
    let answer = read_until_closed(&mut stream).await;
    let (status_line, rest) = answer.split_once("\r\n").unwrap_or((&answer, ""));
    assert_eq!(status_line, "HTTP/1.1 408 Request Timeout", "{answer}");
    let body: Value = serde_json::from_str(rest.split_once("\r\n\r\n").map_or("", |(_, b)| b))
        .unwrap_or_else(|e| panic!("a JSON error body ({e}): {answer}"));
    assert_eq!(body["code"], "body_timeout", "{body}");
    assert!(
        body["api_id"].is_string() && body["details"].is_object(),
        "{body}"
    );
    let list = server
        .get(&account, &account.path("/applications"))
        .await
        .expect(200);
    assert_eq!(list["meta"]["total_count"], 0, "{list}");
}

#[tokio::test]
async fn a_body_is_not_waited_for_or_buffered_before_the_credentials_are_checked() {
    let server = Server::start_with(&["--body-read-timeout-ms", "5000"]).await;
    let mut stream = connect(&server).await;
    // A body of 1 MiB announced, none sent, and credentials that do not exist.
    let head = "POST /api/v1/account/MA_NOPE0000/calls HTTP/1.1\r\nHost: hookline\r\n\
                X-Auth-ID: MA_NOPE0000\r\nX-Auth-Token: wrong\r\nContent-Type: application/json\r\n\
                Content-Length: 1048576\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("writing");
    let mut chunk = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(4), stream.read(&mut chunk))
        .await
        .expect("answered before the body deadline, without the body")
        .expect("reading");
    let answer = String::from_utf8_lossy(&chunk[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_in_the_backlog_until_one_closes() {
    let server = Server::start_with(&["--max-connections", "2"]).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: hookline\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&server).await;
        stream.write_all(request).await.expect("writing");
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.expect("an answer");
        assert!(
            chunk[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&chunk[..n])
        );
        // Kept alive: the connection stays open and counts against the cap.
        held.push(stream);
    }
    let mut waiting = connect(&server).await;
    waiting.write_all(request).await.expect("writing");
    let mut chunk = [0u8; 1024];
    // Nothing signals "not served": give it a moment in which it would have been answered.
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut chunk)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open: {:?}",
        early.map(|read| read.map(|n| String::from_utf8_lossy(&chunk[..n]).into_owned()))
    );
    drop(held.pop());
    let n = tokio::time::timeout(HELD_ON, waiting.read(&mut chunk))
        .await
        .expect("served once a connection closed")
        .expect("reading");
    assert!(
        chunk[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&chunk[..n])
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_loses_its_connection() {
    let server = Server::start_with(&["--max-connections", "1", "--header-read-timeout-ms", "500"]).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small receive buffer");
    let address = server
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let mut reader = socket.connect(address).await.expect("connecting");
    // Far more answer than the socket buffers hold, asked for at once and never read.
    let request = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: hookline\r\n\r\n".repeat(300);
    reader.write_all(request.as_bytes()).await.expect("writing");
    // It holds the only connection; the next client is served once the server gave up on it.
    let mut next = connect(&server).await;
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookline\r\nConnection: close\r\n\r\n")
        .await
        .expect("writing");
    let answer = read_until_closed(&mut next).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    drop(reader);
}

#[tokio::test]
async fn oversized_heads_and_invalid_http_get_a_4xx_and_the_server_carries_on() {
    let server = Server::start().await;
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: hookline\r\nX-Long: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: hookline\r\n{}\r\n",
        (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let cases: [(&str, &[u8], &str); 3] = [
        ("a 70 KiB header", long_header.as_bytes(), "HTTP/1.1 431"),
        ("1 000 headers", many_headers.as_bytes(), "HTTP/1.1 431"),
        ("invalid HTTP", b"HELLO WORLD\r\n\r\n", "HTTP/1.1 400"),
    ];
    for (what, request, expected) in cases {
        let mut stream = connect(&server).await;
        stream.write_all(request).await.expect("writing");
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.starts_with(expected), "{what}: {answer:.200}");
        healthy(&server).await;
    }
}
