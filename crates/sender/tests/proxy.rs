//! Proxy variables in the environment are ignored: a proxy would resolve the callback's host
//! itself and so bypass the guarded resolver (PRODUCT.md §4.5). Its own test binary, because it
//! sets process-wide environment variables.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::HttpMethod;
use sender::{OutboundRequest, Sender, SenderConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use urlguard::UrlPolicy;

/// Accepts connections, counts them, and answers every request with 200.
async fn counting_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    (address, count)
}

#[tokio::test]
async fn proxy_variables_are_not_used() {
    let (proxy, proxy_connections) = counting_server().await;
    let (target, target_connections) = counting_server().await;
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        std::env::set_var(name, format!("http://{proxy}"));
    }
    let sender = Sender::new(SenderConfig {
        timeout: Duration::from_millis(500),
        policy: UrlPolicy { allow_private: true },
        extra_ca_pem: None,
        accept_any_2xx: false,
        user_agent: "Hookline/test".into(),
    })
    .expect("sender");
    let outcome = sender
        .send(OutboundRequest {
            method: HttpMethod::Post,
            url: format!("http://{target}/cb"),
            headers: vec![],
            body: b"a=b".to_vec(),
        })
        .await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(target_connections.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy_connections.load(Ordering::SeqCst),
        0,
        "the proxy must not be used"
    );
}
