//! The receiver-side tools: `hookline listen` prints and verifies real deliveries and fails on
//! purpose; `hookline verify` accepts a correctly signed request and refuses a tampered one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use signing::standard::SigningSecret;

use crate::fixture::{Account, Server};

const DEADLINE: Duration = Duration::from_secs(20);

/// A running `hookline listen` and the lines it prints.
struct Listen {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Listen {
    fn start(extra: &[&str]) -> Listen {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(["listen", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning hookline listen");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let first = lines
            .recv_timeout(DEADLINE)
            .expect("listen prints where it listens");
        let url = first
            .strip_prefix("hookline listening on ")
            .expect("the first line names the address")
            .to_owned();
        Listen { child, url, lines }
    }

    /// Reads lines until one contains `needle`; returns it and the line after it.
    fn wait_for(&self, needle: &str) -> (String, String) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("listen never printed {needle:?}"));
            if line.contains(needle) {
                let next = self.lines.recv_timeout(left).expect("a line after it");
                return (line, next);
            }
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secret_of(account: &Account) -> String {
    account.json["signing_secret"]["secret"]
        .as_str()
        .expect("a creation answer has the first secret")
        .to_owned()
}

#[tokio::test]
async fn listen_prints_and_verifies_every_signature_of_real_deliveries() {
    let server = Server::start_with(&["--dev", "--sim-ring-ms", "10", "--sim-talk-ms", "20"]).await;
    let account = server.admin_create_account("Listener").await;
    let secret = secret_of(&account);
    let listen = Listen::start(&["--auth-token", &account.auth_token, "--secret", &secret]);
    let status_url = format!("{}/status?src=test", listen.url);
    server
        .send_json(
            &account,
            Method::POST,
            &account.path("/calls"),
            &json!({"from": "+14155551234", "to": "+14155550100", "status_url": status_url}),
        )
        .await
        .expect(201);
    for event in [
        "Event=CallInitiated",
        "Event=Ring",
        "Event=StartApp",
        "Event=Hangup",
    ] {
        let (line, signatures) = listen.wait_for(event);
        assert!(line.starts_with("POST /status"), "{line}");
        assert_eq!(
            signatures.trim(),
            "signatures: v2 valid, v3 valid, ma-v2 valid, ma-v3 valid, standard valid",
            "{line}"
        );
    }
}

#[tokio::test]
async fn listen_with_a_wrong_token_reports_invalid_signatures() {
    let server = Server::start_with(&["--dev", "--sim-ring-ms", "10", "--sim-talk-ms", "20"]).await;
    let account = server.admin_create_account("Listener").await;
    let listen = Listen::start(&["--auth-token", "not-the-token"]);
    let status_url = format!("{}/status", listen.url);
    server
        .send_json(
            &account,
            Method::POST,
            &account.path("/calls"),
            &json!({"from": "+14155551234", "to": "+14155550404", "status_url": status_url}),
        )
        .await
        .expect(201);
    let (_, signatures) = listen.wait_for("Event=CallInitiated");
    assert!(
        signatures.contains("v2 INVALID") && signatures.contains("v3 INVALID"),
        "{signatures}"
    );
}

#[tokio::test]
#[allow(clippy::disallowed_methods)] // A plain client playing the sender, outside the product.
async fn listen_fails_on_purpose_when_asked() {
    let listen = Listen::start(&["--fail-rate", "1"]);
    let answer = reqwest::Client::builder()
        .build()
        .expect("client")
        .post(format!("{}/x", listen.url))
        .body("Event=Ring")
        .send()
        .await
        .expect("listen answers");
    assert_eq!(answer.status().as_u16(), 500);
    let (line, _) = listen.wait_for("POST /x");
    assert!(line.contains("Event=Ring"), "{line}");
}

/// Headers of a request to `url` with `body`, signed as Hookline signs them.
fn signed_headers(url: &str, body: &[u8], token: &str, secret: &SigningSecret) -> Vec<String> {
    let nonces = signing::vobiz::Nonces {
        v2: signing::vobiz::nonce_from(11),
        v3: signing::vobiz::nonce_from(22),
    };
    #[allow(clippy::disallowed_methods)] // The test stands in for a sender: it needs the real time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let mut headers: Vec<String> = signing::vobiz::headers(url, token.as_bytes(), token.as_bytes(), &nonces)
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    headers.push("webhook-id: evt-1".to_owned());
    headers.push(format!("webhook-timestamp: {now}"));
    headers.push(format!(
        "webhook-signature: {}",
        signing::standard::signature_header(std::slice::from_ref(secret), "evt-1", now, body)
    ));
    headers
}

fn run_verify(url: &str, headers: &[String], body: &str, token: &str, secret: &str) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command.args([
        "verify",
        "--url",
        url,
        "--body",
        body,
        "--auth-token",
        token,
        "--secret",
        secret,
    ]);
    for header in headers {
        command.args(["--header", header]);
    }
    let output = command.output().expect("running hookline verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn verify_accepts_a_signed_request_and_refuses_a_tampered_one() {
    let secret = SigningSecret::from_bytes([9; 32]);
    let token = "a-forty-character-auth-token-for-testing";
    let url = "https://hooks.example.com/status?a=1";
    let body = "Event=Hangup&CallStatus=completed";
    let headers = signed_headers(url, body.as_bytes(), token, &secret);

    let (ok, report) = run_verify(url, &headers, body, token, &secret.expose());
    assert!(ok, "{report}");
    assert_eq!(
        report.trim(),
        "v2 valid, v3 valid, ma-v2 valid, ma-v3 valid, standard valid"
    );

    let (ok, report) = run_verify(
        url,
        &headers,
        "Event=Hangup&CallStatus=busy",
        token,
        &secret.expose(),
    );
    assert!(!ok, "a changed body must not verify: {report}");
    assert!(report.contains("standard INVALID"), "{report}");

    let (ok, report) = run_verify(
        "https://evil.example.com/status",
        &headers,
        body,
        token,
        &secret.expose(),
    );
    assert!(!ok, "another URL must not verify: {report}");
    assert!(report.contains("v2 INVALID"), "{report}");
}
