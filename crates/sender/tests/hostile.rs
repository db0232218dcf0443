//! The sender against hostile receivers (issue "Hardening", bullet "Hostile endpoints"). Each
//! receiver is a real server on 127.0.0.1 that misbehaves in one way. An attempt against it must
//! end as exactly one attempt with the right outcome, within its budget (generously: speed is not
//! asserted, only that the attempt is bounded and does not hang), and without reading more than a
//! bounded part of what the receiver sends: a body receiver counts the bytes it could write
//! until the client closed the connection, which a client that kept reading never does.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, post, read_request, FixedLookup, Pki};
use sender::{ErrorKind, Outcome, Sender, SenderConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The attempt budget of these tests.
const BUDGET: Duration = Duration::from_millis(400);
/// How long the sender reads a (discarded) body after the headers: lib.rs's `BODY_READ_BUDGET`.
const BODY_READ_BUDGET: Duration = Duration::from_millis(500);
/// How much later than its bound an attempt may end: generous, the point is that it ends.
const SLACK: Duration = Duration::from_millis(1500);
/// An attempt still running after this has hung; the test fails instead of hanging too.
const HANG: Duration = Duration::from_secs(15);
/// How long a receiver may wait to see the client close the connection after the attempt ended.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The receivers' socket send buffer: small, so that what a receiver could write is mostly what
/// the client's side took, not what the receiver's own kernel buffered.
const SEND_BUFFER: u32 = 16 * 1024;
/// The most body bytes a receiver may get written before the client closes: the sender reads
/// 64 KiB; the rest is hyper's read buffer (at most ~400 KiB) and the kernel's buffers on both
/// sides of the loopback connection (seen: 144 KiB for a body, 448 KiB for an endless header
/// line). A client reading the whole body would take far more.
const ABSORBED: u64 = 4 * 1024 * 1024;
/// What an "endless" body writer gives up at: a client that is still reading by then never
/// stopped (the test then fails).
const ENDLESS: u64 = 1024 * 1024 * 1024;

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn sender_with(timeout: Duration) -> Sender {
    // Every name is 127.0.0.1: no DNS query, no address other than loopback.
    Sender::with_lookup(
        SenderConfig {
            timeout,
            ..config(true)
        },
        FixedLookup::loopback(),
    )
    .expect("sender")
}

fn sender() -> Sender {
    sender_with(BUDGET)
}

/// A receiver on 127.0.0.1 that runs `behave` on every connection it accepts.
struct Receiver {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Receiver {
    fn url(&self) -> String {
        format!("http://{}/cb", self.address)
    }

    /// `https://<host>:<port>/cb`; the host resolves to 127.0.0.1 (the test lookup).
    fn https_url(&self, host: &str) -> String {
        format!("https://{host}:{}/cb", self.address.port())
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn receiver<F, Fut>(behave: F) -> Receiver
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let socket = TcpSocket::new_v4().expect("socket");
    // Accepted connections inherit the listener's buffer size (Linux).
    socket.set_send_buffer_size(SEND_BUFFER).expect("send buffer");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let listener = socket.listen(64).expect("listen");
    let address = listener.local_addr().expect("address");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(behave(stream));
        }
    });
    Receiver { address, connections }
}

/// One attempt, timed from the outside (an `Outcome`'s latency ends at the response headers).
async fn attempt(sender: &Sender, url: String) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(HANG, sender.send(post(url, "a=b")))
        .await
        .expect("the attempt hung");
    (outcome, started.elapsed())
}

#[track_caller]
fn assert_outcome(
    case: &str,
    (outcome, elapsed): &(Outcome, Duration),
    expected: Result<u16, (ErrorKind, Option<u16>)>,
    bound: Duration,
) {
    match expected {
        Ok(status) => {
            assert!(outcome.is_success(), "{case}: {outcome:?}");
            assert_eq!(outcome.status_code, Some(status), "{case}: {outcome:?}");
        }
        Err((kind, status)) => {
            assert_eq!(
                (outcome.error, outcome.status_code),
                (Some(kind), status),
                "{case}: {outcome:?}"
            );
        }
    }
    assert!(
        *elapsed < bound + SLACK,
        "{case}: the attempt took {elapsed:?}, its bound is {bound:?}"
    );
}

/// Waits for a receiver's report, failing the test if it does not come.
async fn report<T>(reports: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(CLOSE_WAIT, reports.recv())
        .await
        .unwrap_or_else(|_| panic!("no report: {what}"))
        .expect("the receiver is gone")
}

/// What a receiver managed to write after the response head before it stopped.
#[derive(Debug, Clone, Copy)]
struct Written {
    bytes: u64,
    /// A write failed: the client closed the connection.
    closed_by_client: bool,
}

/// How a body is written.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `transfer-encoding: chunked`, never ending.
    Chunked,
    /// `content-length: <n>`, then `n` bytes.
    Length(u64),
    /// No framing: the "status line" is written as it is, then the bytes.
    Raw,
}

/// Writes `status_line` and the framing header, then up to `limit` body bytes in pieces of
/// `piece` (waiting `pace` between pieces), until a write fails.
async fn write_response(
    stream: &mut TcpStream,
    status_line: &str,
    framing: Framing,
    limit: u64,
    piece: usize,
    pace: Option<Duration>,
) -> Written {
    let head = match framing {
        Framing::Chunked => format!("{status_line}\r\ntransfer-encoding: chunked\r\n\r\n"),
        Framing::Length(n) => format!("{status_line}\r\ncontent-length: {n}\r\n\r\n"),
        Framing::Raw => status_line.to_owned(),
    };
    let mut written = Written {
        bytes: 0,
        closed_by_client: false,
    };
    if stream.write_all(head.as_bytes()).await.is_err() {
        written.closed_by_client = true;
        return written;
    }
    let data = vec![b'x'; piece];
    let mut framed = Vec::with_capacity(piece + 16);
    while written.bytes < limit {
        framed.clear();
        match framing {
            Framing::Chunked => {
                framed.extend_from_slice(format!("{piece:x}\r\n").as_bytes());
                framed.extend_from_slice(&data);
                framed.extend_from_slice(b"\r\n");
            }
            Framing::Length(_) | Framing::Raw => framed.extend_from_slice(&data),
        }
        if stream.write_all(&framed).await.is_err() {
            written.closed_by_client = true;
            break;
        }
        written.bytes += piece as u64;
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
    }
    written
}

/// A receiver that reads the request and answers with `status_line` and a body written by
/// [`write_response`]; it reports what it could write.
async fn body_receiver(
    status_line: &'static str,
    framing: Framing,
    limit: u64,
    piece: usize,
    pace: Option<Duration>,
) -> (Receiver, mpsc::UnboundedReceiver<Written>) {
    let (tx, reports) = mpsc::unbounded_channel();
    let receiver = receiver(move |mut stream| {
        let tx = tx.clone();
        async move {
            if read_request(&mut stream).await.is_some() {
                let _ = tx.send(write_response(&mut stream, status_line, framing, limit, piece, pace).await);
            }
        }
    })
    .await;
    (receiver, reports)
}

/// Case 1: the connection is reset (RST, `SO_LINGER` 0) in the middle of the header block; and,
/// for comparison, closed cleanly (FIN) there.
#[tokio::test]
async fn a_connection_reset_inside_the_header_block_is_a_connect_error() {
    for reset in [true, false] {
        let (tx, mut done) = mpsc::unbounded_channel();
        let receiver = receiver(move |mut stream| {
            let tx = tx.clone();
            async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Len").await;
                if reset {
                    stream.set_zero_linger().expect("linger");
                }
                drop(stream);
                let _ = tx.send(());
            }
        })
        .await;
        let result = attempt(&sender(), receiver.url()).await;
        report(&mut done, "the receiver answered").await;
        let case = if reset { "reset" } else { "closed" };
        assert_outcome(case, &result, Err((ErrorKind::Connect, None)), BUDGET);
        assert_eq!(receiver.connections(), 1, "{case}: one attempt, no retry");
    }
}

/// Case 2: a valid 200 trickled one byte every 100 ms, so its header block takes ~4 s.
#[tokio::test]
async fn headers_trickled_slower_than_the_budget_time_out_at_the_budget() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let receiver = receiver(move |mut stream| {
        let tx = tx.clone();
        async move {
            if read_request(&mut stream).await.is_none() {
                return;
            }
            let mut written = 0;
            for byte in OK.as_bytes() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                written += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = tx.send(written);
        }
    })
    .await;
    let result = attempt(&sender(), receiver.url()).await;
    assert_outcome("trickle", &result, Err((ErrorKind::Timeout, None)), BUDGET);
    assert!(result.0.latency >= BUDGET, "{:?}", result.0);
    let written = report(&mut reports, "the client closed the trickled connection").await;
    let head = OK.find("\r\n\r\n").expect("head") + 4;
    assert!(
        written < head,
        "the client closed after {written} of the {head} head bytes"
    );
    assert_eq!(receiver.connections(), 1);
}

/// Case 3: a body that never ends, fast (chunked, or a 1 TiB content-length) or trickled. A 500
/// is a `status` failure, a 200 a success (the status decides); either way the body is read up
/// to the cap (64 KiB, or for 500 ms) and the connection closed.
#[tokio::test]
async fn a_never_ending_body_is_read_up_to_the_cap_and_the_status_decides() {
    let cases = [
        ("HTTP/1.1 500 Internal Server Error", Framing::Chunked, None),
        (
            "HTTP/1.1 500 Internal Server Error",
            Framing::Length(1 << 40),
            None,
        ),
        ("HTTP/1.1 200 OK", Framing::Chunked, None),
        ("HTTP/1.1 200 OK", Framing::Length(1 << 40), None),
        // Trickled: 16 bytes every 10 ms, which only the body-read budget ends.
        (
            "HTTP/1.1 500 Internal Server Error",
            Framing::Chunked,
            Some(Duration::from_millis(10)),
        ),
        (
            "HTTP/1.1 200 OK",
            Framing::Chunked,
            Some(Duration::from_millis(10)),
        ),
    ];
    for (status_line, framing, pace) in cases {
        let case = format!("{status_line} {framing:?} paced {pace:?}");
        let piece = if pace.is_some() { 16 } else { 16 * 1024 };
        let (receiver, mut reports) = body_receiver(status_line, framing, ENDLESS, piece, pace).await;
        let result = attempt(&sender(), receiver.url()).await;
        let expected = if status_line.contains(" 200 ") {
            Ok(200)
        } else {
            Err((ErrorKind::Status, Some(500)))
        };
        assert_outcome(&case, &result, expected, BUDGET + BODY_READ_BUDGET);
        let written = report(&mut reports, "the client closed the endless body").await;
        assert!(
            written.closed_by_client && written.bytes < ABSORBED,
            "{case}: {written:?}"
        );
        assert_eq!(receiver.connections(), 1, "{case}");
    }
}

/// Case 4: a 10 MiB body (announced by its content-length), with a 500 and with a 200.
#[tokio::test]
async fn a_ten_mib_body_is_not_read_to_its_end() {
    const SIZE: u64 = 10 * 1024 * 1024;
    for (status_line, expected) in [
        (
            "HTTP/1.1 500 Internal Server Error",
            Err((ErrorKind::Status, Some(500))),
        ),
        ("HTTP/1.1 200 OK", Ok(200)),
    ] {
        let (receiver, mut reports) =
            body_receiver(status_line, Framing::Length(SIZE), SIZE, 16 * 1024, None).await;
        let result = attempt(&sender(), receiver.url()).await;
        assert_outcome(status_line, &result, expected, BUDGET + BODY_READ_BUDGET);
        let written = report(&mut reports, "the client closed the 10 MiB body").await;
        assert!(
            written.closed_by_client && written.bytes < ABSORBED,
            "{status_line}: {written:?}"
        );
        assert_eq!(receiver.connections(), 1, "{status_line}");
    }
}

/// Case 5: 1 000 response headers (hyper allows 100), and a header line that never ends (hyper
/// buffers at most ~400 KiB of a head): the answer failed, `connect`.
#[tokio::test]
async fn too_many_or_endless_response_headers_are_a_connect_error() {
    let mut many = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..1000 {
        many.push_str(&format!("x-header-{i}: value\r\n"));
    }
    many.push_str("content-length: 2\r\n\r\nok");
    let many: &'static str = Box::leak(many.into_boxed_str());
    let receiver_many = receiver(move |mut stream| async move {
        if read_request(&mut stream).await.is_some() {
            let _ = stream.write_all(many.as_bytes()).await;
            // Hold the connection: the client must give up on its own.
            let _ = stream.read(&mut [0u8; 1]).await;
        }
    })
    .await;
    let result = attempt(&sender(), receiver_many.url()).await;
    assert_outcome("1000 headers", &result, Err((ErrorKind::Connect, None)), BUDGET);
    assert_eq!(receiver_many.connections(), 1);

    // "HTTP/1.1 200 OK\r\nx-endless: xxxxxxxx…" for as long as the client takes it.
    let (tx, mut reports) = mpsc::unbounded_channel();
    let receiver_endless = receiver(move |mut stream| {
        let tx = tx.clone();
        async move {
            if read_request(&mut stream).await.is_some() {
                let _ = tx.send(
                    write_response(
                        &mut stream,
                        "HTTP/1.1 200 OK\r\nx-endless: ",
                        Framing::Raw,
                        ENDLESS,
                        16 * 1024,
                        None,
                    )
                    .await,
                );
            }
        }
    })
    .await;
    let result = attempt(&sender(), receiver_endless.url()).await;
    assert_outcome(
        "endless header line",
        &result,
        Err((ErrorKind::Connect, None)),
        BUDGET,
    );
    let written = report(&mut reports, "the client closed the endless head").await;
    assert!(
        written.closed_by_client && written.bytes < ABSORBED,
        "endless header line: {written:?}"
    );
    assert_eq!(receiver_endless.connections(), 1);
}

/// Case 6: answers that are not HTTP/1.1 responses.
#[tokio::test]
async fn invalid_http_is_a_connect_error() {
    let answers: [&'static [u8]; 6] = [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n",
        // A TLS alert record, as from a TLS-only port asked in plain HTTP.
        b"\x15\x03\x01\x00\x02\x02\x46",
    ];
    for answer in answers {
        let receiver = receiver(move |mut stream| async move {
            if read_request(&mut stream).await.is_some() {
                let _ = stream.write_all(answer).await;
                let _ = stream.read(&mut [0u8; 1]).await;
            }
        })
        .await;
        let case = String::from_utf8_lossy(answer).into_owned();
        let result = attempt(&sender(), receiver.url()).await;
        assert_outcome(&case, &result, Err((ErrorKind::Connect, None)), BUDGET);
        assert_eq!(receiver.connections(), 1, "{case:?}");
    }
}

/// Reads one TLS record (the ClientHello) off `stream`.
async fn read_tls_record(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let mut record = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
    stream.read_exact(&mut record).await?;
    Ok([&header[..], &record].concat())
}

/// A TCP receiver that reads the ClientHello and never answers it; it reports when the hello
/// arrived and when the client closed the connection.
async fn stalling_tls_receiver() -> (Receiver, mpsc::UnboundedReceiver<&'static str>) {
    let (tx, reports) = mpsc::unbounded_channel();
    let receiver = receiver(move |mut stream| {
        let tx = tx.clone();
        async move {
            match read_tls_record(&mut stream).await {
                // 0x16: a handshake record.
                Ok(hello) if hello[0] == 0x16 => {
                    let _ = tx.send("hello");
                }
                _ => return,
            }
            let mut rest = [0u8; 1024];
            while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
            let _ = tx.send("closed");
        }
    })
    .await;
    (receiver, reports)
}

/// Case 7: the TLS handshake stalls after the ClientHello.
#[tokio::test]
async fn a_stalled_tls_handshake_times_out_at_the_budget() {
    let (receiver, mut reports) = stalling_tls_receiver().await;
    let result = attempt(&sender(), receiver.https_url("hookline.test")).await;
    assert_eq!(report(&mut reports, "the ClientHello").await, "hello");
    assert_outcome("stalled TLS", &result, Err((ErrorKind::Timeout, None)), BUDGET);
    assert!(result.0.latency >= BUDGET, "{:?}", result.0);
    assert_eq!(
        report(&mut reports, "the client closed the stalled handshake").await,
        "closed"
    );
    assert_eq!(receiver.connections(), 1);
}

/// A TLS receiver presenting the certificate of `acceptor` and answering 200.
async fn tls_receiver(acceptor: tokio_rustls::TlsAcceptor) -> Receiver {
    receiver(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut stream) = acceptor.accept(stream).await {
                while read_request(&mut stream).await.is_some() {
                    if stream.write_all(OK.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await
}

/// Case 8: certificates the sender must refuse, issued by a CA it trusts; and the same server
/// with a good certificate, which must succeed (so the refusals are about the certificates).
#[tokio::test]
async fn expired_or_misnamed_certificates_are_tls_errors() {
    let pki = Pki::new();
    let sender = Sender::with_lookup(
        SenderConfig {
            timeout: BUDGET,
            extra_ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..config(true)
        },
        FixedLookup::loopback(),
    )
    .expect("sender");
    let cases = [
        ("valid", pki.acceptor(&["hookline.test"], None), Ok(200)),
        (
            "expired",
            pki.acceptor(&["hookline.test"], Some(((2000, 1, 1), (2001, 1, 1)))),
            Err((ErrorKind::Tls, None)),
        ),
        (
            "not yet valid",
            pki.acceptor(&["hookline.test"], Some(((2999, 1, 1), (3000, 1, 1)))),
            Err((ErrorKind::Tls, None)),
        ),
        (
            "another name",
            pki.acceptor(&["other.test"], None),
            Err((ErrorKind::Tls, None)),
        ),
    ];
    for (case, acceptor, expected) in cases {
        let receiver = tls_receiver(acceptor).await;
        let result = attempt(&sender, receiver.https_url("hookline.test")).await;
        assert_outcome(case, &result, expected, BUDGET);
        assert_eq!(receiver.connections(), 1, "{case}");
    }

    // A plain-HTTP server behind an https URL: its answer is no TLS at all.
    let plain = receiver(|mut stream| async move {
        let _ = read_tls_record(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        let _ = stream.read(&mut [0u8; 1]).await;
    })
    .await;
    let result = attempt(&sender, plain.https_url("hookline.test")).await;
    assert_outcome("plain HTTP", &result, Err((ErrorKind::Tls, None)), BUDGET);
    assert_eq!(plain.connections(), 1, "plain HTTP");
}

/// Case 9: redirects to a loopback target are never followed: the 3xx is the attempt's answer.
///
/// The tests cannot run this under the production policy: it forbids loopback, so the first
/// hop to a receiver on 127.0.0.1 is itself `blocked`, and no other address may be used. What
/// protects production is exactly what this shows in dev policy: a `Location` is never
/// connected to. Were redirects followed, a public endpoint could send the sender to an IP
/// literal such as `http://127.0.0.1/` or `http://169.254.169.254/`, which reaches no resolver
/// and so none of the guard's checks (`send` checks the literal of the original URL only).
#[tokio::test]
async fn redirects_are_never_followed() {
    let target = receiver(|mut stream| async move {
        if read_request(&mut stream).await.is_some() {
            let _ = stream.write_all(OK.as_bytes()).await;
        }
    })
    .await;
    // Absolute with an IP literal, relative (back to the redirecting receiver), and by a name
    // (which the test lookup resolves to 127.0.0.1): all lead to a loopback receiver.
    let target_url = target.url();
    let target_by_name = format!("http://hookline.test:{}/cb", target.address.port());
    for (status, reason) in [
        (301, "Moved Permanently"),
        (302, "Found"),
        (303, "See Other"),
        (307, "Temporary Redirect"),
        (308, "Permanent Redirect"),
    ] {
        for location in [target_url.as_str(), "/again", target_by_name.as_str()] {
            let answer: &'static str = Box::leak(
                format!("HTTP/1.1 {status} {reason}\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n")
                    .into_boxed_str(),
            );
            let requests = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&requests);
            let redirecting = receiver(move |mut stream| {
                let counter = Arc::clone(&counter);
                async move {
                    while read_request(&mut stream).await.is_some() {
                        counter.fetch_add(1, Ordering::SeqCst);
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            })
            .await;
            let case = format!("{status} to {location}");
            let result = attempt(&sender(), redirecting.url()).await;
            assert_outcome(&case, &result, Err((ErrorKind::Status, Some(status))), BUDGET);
            assert_eq!(requests.load(Ordering::SeqCst), 1, "{case}: one request");
        }
    }
    assert_eq!(target.connections(), 0, "a redirect target was connected to");
}

/// Case 10: hostile receivers in flight do not slow down a healthy one through the same sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_in_flight_do_not_hold_up_a_healthy_one() {
    // A budget long enough that the hostile attempts are surely still running while the healthy
    // ones are made; the trickled body is ended by the body-read budget (500 ms) instead.
    let budget = Duration::from_secs(3);
    let sender = sender_with(budget);
    let (reached_tx, mut reached) = mpsc::unbounded_channel::<&'static str>();

    let trickling = {
        let reached_tx = reached_tx.clone();
        receiver(move |mut stream| {
            let reached_tx = reached_tx.clone();
            async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                for (i, byte) in OK.as_bytes().iter().enumerate() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    if i == 0 {
                        let _ = reached_tx.send("trickle");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .await
    };
    let (stalling, mut stalling_reports) = stalling_tls_receiver().await;
    let (body_go_tx, body_go) = tokio::sync::watch::channel(false);
    let endless_body = {
        let reached_tx = reached_tx.clone();
        receiver(move |mut stream| {
            let reached_tx = reached_tx.clone();
            let mut body_go = body_go.clone();
            async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                // Start the body (the part the 500 ms body budget ends) only once the other
                // hostile attempts are in flight, so the healthy sends have all of that time.
                if body_go.wait_for(|go| *go).await.is_err() {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nxxxxxxxxxxxxxxxx\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = reached_tx.send("endless body");
                let chunk = b"10\r\nxxxxxxxxxxxxxxxx\r\n";
                while stream.write_all(chunk).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
        .await
    };
    let healthy = receiver(|mut stream| async move {
        while read_request(&mut stream).await.is_some() {
            if stream.write_all(OK.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;

    let (finished_tx, mut finished) = mpsc::unbounded_channel();
    for (name, url) in [
        ("trickle", trickling.url()),
        ("stalled TLS", stalling.https_url("hookline.test")),
        ("endless body", endless_body.url()),
    ] {
        let sender = sender.clone();
        let finished_tx = finished_tx.clone();
        tokio::spawn(async move {
            let result = attempt(&sender, url).await;
            let _ = finished_tx.send((name, result));
        });
    }
    let mut in_flight = Vec::new();
    in_flight.push(report(&mut reached, "the trickle began").await);
    assert_eq!(report(&mut stalling_reports, "the ClientHello").await, "hello");
    in_flight.push("stalled TLS");
    body_go_tx.send(true).expect("the endless body receiver");
    in_flight.push(report(&mut reached, "the endless body began").await);

    for i in 0..20 {
        let result = attempt(&sender, healthy.url()).await;
        assert_outcome(&format!("healthy {i}"), &result, Ok(200), budget);
    }
    assert!(
        finished.try_recv().is_err(),
        "a hostile attempt ended before the healthy ones did ({in_flight:?} were in flight)"
    );

    let mut ended = Vec::new();
    for _ in 0..3 {
        let (name, result) = tokio::time::timeout(HANG, finished.recv())
            .await
            .expect("a hostile attempt hung")
            .expect("finished");
        let (expected, bound) = match name {
            "endless body" => (Ok(200), budget + BODY_READ_BUDGET),
            _ => (Err((ErrorKind::Timeout, None)), budget),
        };
        assert_outcome(name, &result, expected, bound);
        ended.push(name);
    }
    ended.sort_unstable();
    assert_eq!(ended, ["endless body", "stalled TLS", "trickle"]);
}
