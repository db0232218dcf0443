//! Helpers shared by the sender's integration tests: the configuration, a request, name lookups
//! that answer without any DNS query, reading a request off a raw stream, and a small PKI for
//! real TLS servers. Every server the tests run listens on 127.0.0.1.

// Each test binary includes this module and uses its own part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::HttpMethod;
use sender::{Lookup, OutboundRequest, SenderConfig};
use tokio::io::{AsyncRead, AsyncReadExt};
use urlguard::UrlPolicy;

/// A 500 ms budget; `dev` allows loopback and private addresses (the tests' servers are on
/// loopback, so only the blocking tests run with `dev == false`).
pub fn config(dev: bool) -> SenderConfig {
    SenderConfig {
        timeout: Duration::from_millis(500),
        policy: UrlPolicy { allow_private: dev },
        extra_ca_pem: None,
        accept_any_2xx: false,
        user_agent: "Hookline/test".into(),
    }
}

pub fn post(url: String, body: &str) -> OutboundRequest {
    OutboundRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("x-hookline-event-id".into(), "e-1".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// What a test server received: the raw request head and body.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// Reads one request (head, then a `content-length` body); `None` when the peer closed first.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = buffer[end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some(Received { head, body });
        }
    }
}

/// Answers every name with fixed addresses, like a hostile or rebinding DNS server; an empty
/// answer is NXDOMAIN. Sends no query.
pub struct FixedLookup(pub Vec<IpAddr>);

impl FixedLookup {
    /// Every name is 127.0.0.1, so a test can use any host name (for TLS) and still only ever
    /// connect to loopback.
    pub fn loopback() -> Arc<FixedLookup> {
        Arc::new(FixedLookup(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

impl Lookup for FixedLookup {
    fn lookup(&self, _host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let answer = self.0.clone();
        Box::pin(async move {
            if answer.is_empty() {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "NXDOMAIN"))
            } else {
                Ok(answer)
            }
        })
    }
}

/// A test CA that issues server certificates.
pub struct Pki {
    /// The CA certificate, for `SenderConfig::extra_ca_pem`.
    pub ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A date as (year, month, day).
pub type Ymd = (i32, u8, u8);

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    /// A TLS acceptor presenting a certificate for `names`, issued by this CA, valid from the
    /// first to the second date (`None`: rcgen's default, 1975 to 4096).
    pub fn acceptor(&self, names: &[&str], validity: Option<(Ymd, Ymd)>) -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        if let Some(((y1, m1, d1), (y2, m2, d2))) = validity {
            params.not_before = rcgen::date_time_ymd(y1, m1, d1);
            params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        }
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).expect("cert");
        let chain = vec![cert.der().clone()];
        let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, private)
                .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
