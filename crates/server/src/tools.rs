//! Receiver-side tools: `hookline verify` checks a captured callback's signatures, and
//! `hookline listen` is a local receiver that prints each callback, verifies it, and can fail or
//! delay on purpose (PRODUCT.md §5). Both use the `signing` crate's `verify_request`, the same
//! function a Rust receiver would call.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use clap::Args;
use rand::Rng;
use signing::standard::SigningSecret;
use signing::{verify_request, CapturedRequest, Check, Keys, Report};

/// How far `webhook-timestamp` may be from now.
const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The keys a receiver verifies with.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// The account's auth token (Vobiz V2/V3)
    #[arg(long, env = "HOOKLINE_VERIFY_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// The parent account's auth token (MA-V2/MA-V3 of sub-accounts)
    #[arg(long, hide_env_values = true)]
    parent_token: Option<String>,
    /// A signing secret `whsec_…` (Standard Webhooks); repeat for several
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Largest accepted clock difference for webhook-timestamp, in seconds
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECS)]
    tolerance_secs: i64,
}

struct ParsedKeys {
    auth_token: Option<Vec<u8>>,
    parent_token: Option<Vec<u8>>,
    secrets: Vec<SigningSecret>,
    tolerance_secs: i64,
}

impl KeyArgs {
    fn parse(&self) -> anyhow::Result<ParsedKeys> {
        let secrets = self
            .secrets
            .iter()
            .map(|s| SigningSecret::parse(s).with_context(|| "reading --secret".to_owned()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ParsedKeys {
            auth_token: self.auth_token.as_ref().map(|t| t.as_bytes().to_vec()),
            parent_token: self.parent_token.as_ref().map(|t| t.as_bytes().to_vec()),
            secrets,
            tolerance_secs: self.tolerance_secs,
        })
    }
}

impl ParsedKeys {
    fn any(&self) -> bool {
        self.auth_token.is_some() || !self.secrets.is_empty()
    }

    fn check(&self, url: &str, headers: &[(String, String)], body: &[u8]) -> Report {
        verify_request(
            &CapturedRequest { url, headers, body },
            &Keys {
                auth_token: self.auth_token.as_deref(),
                parent_token: self.parent_token.as_deref(),
                secrets: &self.secrets,
            },
            clock_unix(),
            self.tolerance_secs,
        )
    }
}

#[allow(clippy::disallowed_methods)] // The CLI's one wall-clock read.
fn clock_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `hookline verify`: checks the signatures of one captured callback.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The URL the callback was sent to (as configured; its query string does not matter)
    #[arg(long)]
    url: String,
    /// A request header, `Name: value`; repeat for each
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The exact request body (empty for GET)
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// A file holding the exact request body
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    keys: KeyArgs,
}

/// Runs `hookline verify`; `Ok(true)` when every signature that could be checked is valid.
///
/// # Errors
/// Bad arguments: a malformed header, an unreadable body file, no key at all.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<bool> {
    let keys = args.keys.parse()?;
    if !keys.any() {
        bail!("give --auth-token and/or --secret to verify with");
    }
    let headers = args
        .headers
        .iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} is not `Name: value`"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => body.as_bytes().to_vec(),
        (None, Some(path)) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        (None, None) => Vec::new(),
    };
    let report = keys.check(&args.url, &headers, &body);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", describe(&report)).context("writing to stdout")?;
    Ok(authentic(&report))
}

/// Every check that could run passed, and at least one ran.
fn authentic(report: &Report) -> bool {
    let checks = [
        &report.v2,
        &report.v3,
        &report.ma_v2,
        &report.ma_v3,
        &report.standard,
    ];
    report.all_valid_or_skipped() && checks.iter().any(|c| **c == Check::Valid)
}

fn describe(report: &Report) -> String {
    let word = |check: &Check| match check {
        Check::Valid => "valid",
        Check::Invalid => "INVALID",
        Check::Missing => "missing",
        Check::Skipped => "skipped",
    };
    format!(
        "v2 {}, v3 {}, ma-v2 {}, ma-v3 {}, standard {}",
        word(&report.v2),
        word(&report.v3),
        word(&report.ma_v2),
        word(&report.ma_v3),
        word(&report.standard)
    )
}

/// `hookline listen`: a local receiver for trying callbacks out.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Fraction of requests answered 500, from 0 to 1
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Wait this long before answering, in ms
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// The URL Hookline calls when it differs from http://127.0.0.1:PORT (a tunnel, a proxy)
    #[arg(long)]
    public_url: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
}

struct Listener {
    keys: ParsedKeys,
    fail_rate: f64,
    delay: Duration,
    public_base: String,
}

/// Runs `hookline listen` until Ctrl-C or SIGTERM.
///
/// # Errors
/// Bad arguments, or the port cannot be bound.
pub async fn listen(args: &ListenArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        bail!("--fail-rate must be between 0 and 1");
    }
    let keys = args.keys.parse()?;
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let public_base = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
        .trim_end_matches('/')
        .to_owned();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "hookline listening on http://{bound}").context("writing to stdout")?;
        if !keys.any() {
            writeln!(
                out,
                "(no --auth-token or --secret given: signatures are shown, not checked)"
            )
            .context("writing to stdout")?;
        }
        out.flush().context("writing to stdout")?;
    }
    let state = Arc::new(Listener {
        keys,
        fail_rate: args.fail_rate,
        delay: Duration::from_millis(args.delay_ms),
        public_base,
    });
    let app = axum::Router::new().fallback(receive).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving")?;
    Ok(())
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let url = format!("{}{}", listener.public_base, uri);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let query_fields = uri.query().unwrap_or("");
    let fields = if method == Method::GET {
        query_fields.as_bytes()
    } else {
        &body[..]
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(fields).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map_or("-", |(_, v)| v.as_str())
    };
    let signatures = if listener.keys.any() {
        let report = listener
            .keys
            .check(&url, &pairs, if method == Method::GET { &[] } else { &body[..] });
        format!("signatures: {}", describe(&report))
    } else {
        "signatures: not checked".to_owned()
    };
    if !listener.delay.is_zero() {
        tokio::time::sleep(listener.delay).await;
    }
    let fail = listener.fail_rate > 0.0 && rand::thread_rng().gen_bool(listener.fail_rate);
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let mut text = format!(
        "{method} {} Event={} CallUUID={} CallStatus={} seq={} attempt={} level={} target={} event_id={}\n  {signatures}\n",
        uri.path(),
        field("Event"),
        field("CallUUID"),
        field("CallStatus"),
        header("x-hookline-sequence"),
        header("x-hookline-attempt"),
        header("x-hookline-callback-level"),
        header("x-hookline-target"),
        header("x-hookline-event-id"),
    );
    let listed: Vec<String> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text.push_str(&format!(
        "  fields: {}\n  -> {}\n",
        listed.join(" "),
        status.as_u16()
    ));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    status
}
