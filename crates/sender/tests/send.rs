//! The sender against real servers on 127.0.0.1: success rules, error kinds, the SSRF guard
//! (literal and resolved addresses) and real TLS with an extra root CA.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{config, post, read_request, FixedLookup, Pki, Received};
use sender::{ErrorKind, Sender, SenderConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-shot-per-connection HTTP/1.1 server answering `response` to every request.
struct Server {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    received: tokio::sync::mpsc::UnboundedReceiver<Received>,
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    response: &'static str,
    hang: bool,
    tx: &tokio::sync::mpsc::UnboundedSender<Received>,
) {
    while let Some(received) = read_request(&mut stream).await {
        let _ = tx.send(received);
        if hang {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn server(response: &'static str, hang: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let connections = Arc::new(AtomicUsize::new(0));
    let (tx, received) = tokio::sync::mpsc::unbounded_channel();
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            tokio::spawn(async move { serve_one(stream, response, hang, &tx).await });
        }
    });
    Server {
        address,
        connections,
        received,
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn a_200_is_success_and_the_exact_body_and_headers_arrive() {
    let mut server = server(OK, false).await;
    let sender = Sender::new(config(true)).expect("sender");
    let outcome = sender
        .send(post(
            format!("http://{}/cb?x=1", server.address),
            "Event=Ring&A=b",
        ))
        .await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.status_code, Some(200));
    let received = server.received.recv().await.expect("a request");
    assert!(
        received.head.starts_with("POST /cb?x=1 HTTP/1.1"),
        "{}",
        received.head
    );
    assert!(received
        .head
        .to_ascii_lowercase()
        .contains("x-hookline-event-id: e-1"));
    assert!(received.head.contains("Hookline/test"));
    assert_eq!(received.body, b"Event=Ring&A=b");
}

#[tokio::test]
async fn connections_are_reused_across_attempts() {
    let server = server(OK, false).await;
    let sender = Sender::new(config(true)).expect("sender");
    for _ in 0..5 {
        let outcome = sender
            .send(post(format!("http://{}/cb", server.address), "a=b"))
            .await;
        assert!(outcome.is_success());
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn only_200_succeeds_unless_any_2xx_is_accepted_and_redirects_are_not_followed() {
    let no_content = server("HTTP/1.1 204 No Content\r\n\r\n", false).await;
    let strict = Sender::new(config(true)).expect("sender");
    let outcome = strict
        .send(post(format!("http://{}/", no_content.address), ""))
        .await;
    assert_eq!(
        (outcome.status_code, outcome.error),
        (Some(204), Some(ErrorKind::Status))
    );

    let lenient = Sender::new(SenderConfig {
        accept_any_2xx: true,
        ..config(true)
    })
    .expect("sender");
    assert!(lenient
        .send(post(format!("http://{}/", no_content.address), ""))
        .await
        .is_success());

    let target = server(OK, false).await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://{}/\r\ncontent-length: 0\r\n\r\n",
            target.address
        )
        .into_boxed_str(),
    );
    let redirecting = server(redirect, false).await;
    let outcome = strict
        .send(post(format!("http://{}/", redirecting.address), ""))
        .await;
    assert_eq!(
        (outcome.status_code, outcome.error),
        (Some(302), Some(ErrorKind::Status))
    );
    assert_eq!(
        target.connections.load(Ordering::SeqCst),
        0,
        "the redirect must not be followed"
    );
}

#[tokio::test]
async fn retry_after_of_a_503_is_reported() {
    let server = server(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n",
        false,
    )
    .await;
    let outcome = Sender::new(config(true))
        .expect("sender")
        .send(post(format!("http://{}/", server.address), ""))
        .await;
    assert_eq!(outcome.status_code, Some(503));
    assert_eq!(outcome.retry_after.as_deref(), Some("7"));
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_at_the_budget() {
    let server = server(OK, true).await;
    let outcome = Sender::new(config(true))
        .expect("sender")
        .send(post(format!("http://{}/", server.address), ""))
        .await;
    assert_eq!(outcome.error, Some(ErrorKind::Timeout));
    assert!(
        outcome.latency >= Duration::from_millis(500),
        "{:?}",
        outcome.latency
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let outcome = Sender::new(config(true))
        .expect("sender")
        .send(post(format!("http://{address}/"), ""))
        .await;
    assert_eq!(outcome.error, Some(ErrorKind::Connect));
}

#[tokio::test]
async fn a_loopback_literal_is_blocked_in_production_without_connecting() {
    let server = server(OK, false).await;
    let outcome = Sender::new(config(false))
        .expect("sender")
        .send(post(format!("http://{}/", server.address), ""))
        .await;
    assert_eq!(outcome.error, Some(ErrorKind::Blocked));
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_blocked_without_connecting() {
    let server = server(OK, false).await;
    let hostile = Arc::new(FixedLookup(vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "10.0.0.1".parse().expect("ip"),
    ]));
    let sender = Sender::with_lookup(config(false), hostile).expect("sender");
    let outcome = sender
        .send(post(
            format!("http://rebind.example.com:{}/", server.address.port()),
            "",
        ))
        .await;
    assert_eq!(outcome.error, Some(ErrorKind::Blocked));
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_error() {
    let sender = Sender::with_lookup(config(false), Arc::new(FixedLookup(vec![]))).expect("sender");
    let outcome = sender.send(post("https://nowhere.example.com/".into(), "")).await;
    assert_eq!(outcome.error, Some(ErrorKind::Dns));
}

async fn tls_server(acceptor: tokio_rustls::TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(stream).await {
                    serve_one(stream, OK, false, &tx).await;
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn tls_succeeds_with_the_extra_root_and_fails_as_tls_without_it() {
    let pki = Pki::new();
    let address = tls_server(pki.acceptor(&["localhost"], None)).await;
    let url = format!("https://localhost:{}/cb", address.port());
    let trusting = Sender::new(SenderConfig {
        extra_ca_pem: Some(pki.ca_pem.into_bytes()),
        ..config(true)
    })
    .expect("sender");
    let outcome = trusting.send(post(url.clone(), "a=b")).await;
    assert!(outcome.is_success(), "{outcome:?}");
    let untrusting = Sender::new(config(true)).expect("sender");
    assert_eq!(
        untrusting.send(post(url, "a=b")).await.error,
        Some(ErrorKind::Tls)
    );
}
