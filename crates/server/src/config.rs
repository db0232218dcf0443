//! Hookline's configuration: one struct, layered defaults (`config.default.toml`, embedded) <
//! config file < `HOOKLINE_*` environment < flags, validated once at start-up.
//!
//! Loading reads the config file and nothing else: no side effects, no globals. The result is
//! passed down explicitly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::BoolishValueParser;
use clap::Args;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config.default.toml");

/// Every setting as it may arrive from a flag, the environment or a file: all optional, so
/// the layers can be merged field by field.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// API address [default: 127.0.0.1:8080]
    #[arg(long, env = "HOOKLINE_LISTEN")]
    pub listen: Option<String>,
    /// sqlite://PATH or postgres://… [default: sqlite://./hookline-data/hookline.db]
    #[arg(long, env = "HOOKLINE_DATABASE")]
    pub database: Option<String>,
    /// Allow http and loopback/private callback targets (development only)
    #[arg(long, env = "HOOKLINE_DEV", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub dev: Option<bool>,
    /// Resolve only localhost names and send no DNS query (tests, air-gapped runs)
    #[arg(long, env = "HOOKLINE_OFFLINE_DNS", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub offline_dns: Option<bool>,
    /// PEM file of an extra trusted root CA for callback TLS
    #[arg(long, env = "HOOKLINE_EXTRA_CA")]
    pub extra_ca: Option<PathBuf>,
    /// Operator token for /api/v1/admin and /api/v1/switch (off when unset)
    #[arg(long, env = "HOOKLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Encrypts auth tokens and signing secrets at rest [default: key file in the data directory]
    #[arg(long, env = "HOOKLINE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// One attempt's budget in ms [default: 3000]
    #[arg(long, env = "HOOKLINE_CALLBACK_TIMEOUT_MS")]
    pub callback_timeout_ms: Option<u64>,
    /// Retries after the first attempt, per URL [default: 3]
    #[arg(long, env = "HOOKLINE_RETRY_MAX")]
    pub retry_max: Option<u32>,
    /// First backoff in ms; doubles each retry [default: 2000]
    #[arg(long, env = "HOOKLINE_RETRY_BASE_MS")]
    pub retry_base_ms: Option<u64>,
    /// ± fraction applied to each backoff [default: 0.2]
    #[arg(long, env = "HOOKLINE_RETRY_JITTER")]
    pub retry_jitter: Option<f64>,
    /// Longest Retry-After honoured, in ms [default: 60000]
    #[arg(long, env = "HOOKLINE_RETRY_AFTER_CAP_MS")]
    pub retry_after_cap_ms: Option<u64>,
    /// Count any 2xx as success [default: false]
    #[arg(long, env = "HOOKLINE_ACCEPT_ANY_2XX", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub accept_any_2xx: Option<bool>,
    /// In-flight attempts per target host [default: 32]
    #[arg(long, env = "HOOKLINE_PER_HOST_CONCURRENCY")]
    pub per_host_concurrency: Option<usize>,
    /// Failures in a row that pause a target host [default: 5]
    #[arg(long, env = "HOOKLINE_BREAKER_THRESHOLD")]
    pub breaker_threshold: Option<u32>,
    /// How long a failing host is paused, in ms [default: 5000]
    #[arg(long, env = "HOOKLINE_BREAKER_PAUSE_MS")]
    pub breaker_pause_ms: Option<u64>,
    /// How long a claimed delivery is held before another worker may take it, in ms [default: 300000]
    #[arg(long, env = "HOOKLINE_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Simulated carrier ring time in ms [default: 1000]
    #[arg(long, env = "HOOKLINE_SIM_RING_MS")]
    pub sim_ring_ms: Option<u64>,
    /// Simulated carrier talk time in ms [default: 5000]
    #[arg(long, env = "HOOKLINE_SIM_TALK_MS")]
    pub sim_talk_ms: Option<u64>,
    /// human or json [default: human]
    #[arg(long, env = "HOOKLINE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Open API connections at most; more wait in the listen backlog [default: 1024]
    #[arg(long, env = "HOOKLINE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers (and how long an idle
    /// keep-alive connection stays open), in ms [default: 10000]
    #[arg(long, env = "HOOKLINE_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// How long a client may take to send a request's body, in ms [default: 30000]
    #[arg(long, env = "HOOKLINE_BODY_READ_TIMEOUT_MS")]
    pub body_read_timeout_ms: Option<u64>,
    /// Requests per second per account on the API, 0 = no limit [default: 200]
    #[arg(long, env = "HOOKLINE_API_RATE_LIMIT")]
    pub api_rate_limit: Option<f64>,
    /// Requests an account may send at once before the per-second limit applies [default: 400]
    #[arg(long, env = "HOOKLINE_API_RATE_BURST")]
    pub api_rate_burst: Option<f64>,
    /// Calls per second per account through make-call, 0 = no limit [default: 20]
    #[arg(long, env = "HOOKLINE_CALL_RATE_LIMIT")]
    pub call_rate_limit: Option<f64>,
    /// Calls an account may place at once before the per-second limit applies [default: 40]
    #[arg(long, env = "HOOKLINE_CALL_RATE_BURST")]
    pub call_rate_burst: Option<f64>,
    /// Requests per second on the operator's switch and admin routes, 0 = no limit [default: 20000]
    #[arg(long, env = "HOOKLINE_OPERATOR_RATE_LIMIT")]
    pub operator_rate_limit: Option<f64>,
    /// Operator requests at once before the per-second limit applies [default: 40000]
    #[arg(long, env = "HOOKLINE_OPERATOR_RATE_BURST")]
    pub operator_rate_burst: Option<f64>,
}

impl Layer {
    /// Fills every unset field of `self` from `lower`.
    fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            database: self.database.or(lower.database),
            dev: self.dev.or(lower.dev),
            offline_dns: self.offline_dns.or(lower.offline_dns),
            extra_ca: self.extra_ca.or(lower.extra_ca),
            admin_token: self.admin_token.or(lower.admin_token),
            secret_key: self.secret_key.or(lower.secret_key),
            callback_timeout_ms: self.callback_timeout_ms.or(lower.callback_timeout_ms),
            retry_max: self.retry_max.or(lower.retry_max),
            retry_base_ms: self.retry_base_ms.or(lower.retry_base_ms),
            retry_jitter: self.retry_jitter.or(lower.retry_jitter),
            retry_after_cap_ms: self.retry_after_cap_ms.or(lower.retry_after_cap_ms),
            accept_any_2xx: self.accept_any_2xx.or(lower.accept_any_2xx),
            per_host_concurrency: self.per_host_concurrency.or(lower.per_host_concurrency),
            breaker_threshold: self.breaker_threshold.or(lower.breaker_threshold),
            breaker_pause_ms: self.breaker_pause_ms.or(lower.breaker_pause_ms),
            lease_ms: self.lease_ms.or(lower.lease_ms),
            sim_ring_ms: self.sim_ring_ms.or(lower.sim_ring_ms),
            sim_talk_ms: self.sim_talk_ms.or(lower.sim_talk_ms),
            log_format: self.log_format.or(lower.log_format),
            max_connections: self.max_connections.or(lower.max_connections),
            header_read_timeout_ms: self.header_read_timeout_ms.or(lower.header_read_timeout_ms),
            body_read_timeout_ms: self.body_read_timeout_ms.or(lower.body_read_timeout_ms),
            api_rate_limit: self.api_rate_limit.or(lower.api_rate_limit),
            api_rate_burst: self.api_rate_burst.or(lower.api_rate_burst),
            call_rate_limit: self.call_rate_limit.or(lower.call_rate_limit),
            call_rate_burst: self.call_rate_burst.or(lower.call_rate_burst),
            operator_rate_limit: self.operator_rate_limit.or(lower.operator_rate_limit),
            operator_rate_burst: self.operator_rate_burst.or(lower.operator_rate_burst),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: String,
    pub dev: bool,
    pub offline_dns: bool,
    pub extra_ca: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub secret_key: Option<String>,
    pub callback_timeout: Duration,
    pub retry_max: u32,
    pub retry_base: Duration,
    pub retry_jitter: f64,
    pub retry_after_cap: Duration,
    pub accept_any_2xx: bool,
    pub per_host_concurrency: usize,
    pub breaker_threshold: u32,
    pub breaker_pause: Duration,
    pub lease: Duration,
    pub sim_ring: Duration,
    pub sim_talk: Duration,
    pub log_format: LogFormat,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub rate_limits: api::RateLimits,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| if set { "REDACTED" } else { "unset" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &redact_dsn(&self.database))
            .field("dev", &self.dev)
            .field("offline_dns", &self.offline_dns)
            .field("extra_ca", &self.extra_ca)
            .field("admin_token", &redacted(self.admin_token.is_some()))
            .field("secret_key", &redacted(self.secret_key.is_some()))
            .field("callback_timeout", &self.callback_timeout)
            .field("retry_max", &self.retry_max)
            .field("retry_base", &self.retry_base)
            .field("retry_jitter", &self.retry_jitter)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("accept_any_2xx", &self.accept_any_2xx)
            .field("per_host_concurrency", &self.per_host_concurrency)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_pause", &self.breaker_pause)
            .field("lease", &self.lease)
            .field("sim_ring", &self.sim_ring)
            .field("sim_talk", &self.sim_talk)
            .field("log_format", &self.log_format)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// A limit and its burst (`{name}_limit`, `{name}_burst`): a limit of 0 is no limit; otherwise
/// the burst must let at least one request through.
fn rate(limit: Option<f64>, burst: Option<f64>, name: &str) -> anyhow::Result<api::Rate> {
    let limit = limit.ok_or_else(|| anyhow::anyhow!("setting {name}_limit has no value"))?;
    let burst = burst.ok_or_else(|| anyhow::anyhow!("setting {name}_burst has no value"))?;
    if limit == 0.0 {
        return Ok(api::Rate::OFF);
    }
    // Below one request a day a limit is a mistake, and its waits would not fit a Duration.
    if !limit.is_finite() || limit < 1.0 / 86_400.0 {
        bail!("{name}_limit must be 0 (no limit) or a number of requests per second of at least 1/86400");
    }
    if !burst.is_finite() || burst < 1.0 {
        bail!("{name}_burst must be at least 1 when {name}_limit is set");
    }
    Ok(api::Rate {
        per_second: limit,
        burst,
    })
}

/// A DSN without its password, for logs.
pub fn redact_dsn(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => dsn.to_owned(),
    }
}

impl Config {
    /// Merges the layers (flags and environment in `flags`, then the file, then the defaults)
    /// and validates the result.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value is out of range.
    pub fn load(flags: Layer, file: Option<&Path>) -> anyhow::Result<Config> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Layer::default(),
        };
        let defaults: Layer = toml::from_str(DEFAULTS).context("parsing the embedded defaults")?;
        Config::validate(flags.over(from_file).over(defaults))
    }

    fn validate(layer: Layer) -> anyhow::Result<Config> {
        let required = |name: &str| anyhow::anyhow!("setting {name} has no value");
        let listen_text = layer.listen.ok_or_else(|| required("listen"))?;
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("listen {listen_text:?} is not an address like 127.0.0.1:8080"))?;
        let database = layer.database.ok_or_else(|| required("database"))?;
        if !database.starts_with("sqlite:")
            && !database.starts_with("postgres:")
            && !database.starts_with("postgresql:")
        {
            bail!("database must start with sqlite:// or postgres://");
        }
        let jitter = layer.retry_jitter.ok_or_else(|| required("retry_jitter"))?;
        if !(0.0..1.0).contains(&jitter) {
            bail!("retry_jitter must be at least 0 and below 1");
        }
        let per_host_concurrency = layer
            .per_host_concurrency
            .ok_or_else(|| required("per_host_concurrency"))?;
        if per_host_concurrency == 0 {
            bail!("per_host_concurrency must be at least 1");
        }
        let timeout_ms = layer
            .callback_timeout_ms
            .ok_or_else(|| required("callback_timeout_ms"))?;
        if timeout_ms == 0 {
            bail!("callback_timeout_ms must be at least 1");
        }
        let log_format = match layer.log_format.as_deref() {
            Some("human") | None => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log_format {other:?} must be human or json"),
        };
        if layer.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            bail!("admin_token must be at least 16 characters");
        }
        let rate_limits = api::RateLimits {
            api: rate(layer.api_rate_limit, layer.api_rate_burst, "api_rate")?,
            calls: rate(layer.call_rate_limit, layer.call_rate_burst, "call_rate")?,
            operator: rate(
                layer.operator_rate_limit,
                layer.operator_rate_burst,
                "operator_rate",
            )?,
        };
        let max_connections = layer.max_connections.ok_or_else(|| required("max_connections"))?;
        if max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        let positive_ms = |value: Option<u64>, name: &str| match value {
            None => Err(required(name)),
            Some(0) => Err(anyhow::anyhow!("{name} must be at least 1")),
            Some(ms) => Ok(Duration::from_millis(ms)),
        };
        let header_read_timeout = positive_ms(layer.header_read_timeout_ms, "header_read_timeout_ms")?;
        let body_read_timeout = positive_ms(layer.body_read_timeout_ms, "body_read_timeout_ms")?;
        let ms = Duration::from_millis;
        Ok(Config {
            listen,
            database,
            dev: layer.dev.unwrap_or(false),
            offline_dns: layer.offline_dns.unwrap_or(false),
            extra_ca: layer.extra_ca,
            admin_token: layer.admin_token.filter(|t| !t.is_empty()),
            secret_key: layer.secret_key.filter(|k| !k.is_empty()),
            callback_timeout: ms(timeout_ms),
            retry_max: layer.retry_max.ok_or_else(|| required("retry_max"))?,
            retry_base: ms(layer.retry_base_ms.ok_or_else(|| required("retry_base_ms"))?),
            retry_jitter: jitter,
            retry_after_cap: ms(layer
                .retry_after_cap_ms
                .ok_or_else(|| required("retry_after_cap_ms"))?),
            accept_any_2xx: layer.accept_any_2xx.unwrap_or(false),
            per_host_concurrency,
            breaker_threshold: layer
                .breaker_threshold
                .ok_or_else(|| required("breaker_threshold"))?
                .max(1),
            breaker_pause: ms(layer
                .breaker_pause_ms
                .ok_or_else(|| required("breaker_pause_ms"))?),
            lease: ms(layer
                .lease_ms
                .ok_or_else(|| required("lease_ms"))?
                .max(timeout_ms.saturating_mul(2))),
            sim_ring: ms(layer.sim_ring_ms.ok_or_else(|| required("sim_ring_ms"))?),
            sim_talk: ms(layer.sim_talk_ms.ok_or_else(|| required("sim_talk_ms"))?),
            log_format,
            max_connections,
            header_read_timeout,
            body_read_timeout,
            rate_limits,
        })
    }

    /// Where the key file and the default SQLite database live: the database file's directory,
    /// or `./hookline-data` for a server database.
    pub fn data_dir(&self) -> PathBuf {
        self.database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
            .map(|path| path.split('?').next().unwrap_or(path))
            .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("./hookline-data"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_alone_give_the_documented_values() {
        let config = Config::load(Layer::default(), None).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database, "sqlite://./hookline-data/hookline.db");
        assert_eq!(config.callback_timeout, Duration::from_millis(3000));
        assert_eq!(config.retry_max, 3);
        assert_eq!(config.retry_base, Duration::from_millis(2000));
        assert_eq!(config.per_host_concurrency, 32);
        assert!(!config.dev);
        assert_eq!(config.data_dir(), PathBuf::from("./hookline-data"));
        let per = |per_second, burst| api::Rate { per_second, burst };
        assert_eq!(
            config.rate_limits,
            api::RateLimits {
                api: per(200.0, 400.0),
                calls: per(20.0, 40.0),
                operator: per(20_000.0, 40_000.0),
            }
        );
    }

    #[test]
    fn a_flag_beats_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hookline.toml");
        std::fs::write(
            &file,
            "retry_max = 5\nsim_ring_ms = 10\nlisten = \"127.0.0.1:9999\"\n",
        )
        .expect("write");
        let flags = Layer {
            listen: Some("127.0.0.1:7777".into()),
            ..Layer::default()
        };
        let config = Config::load(flags, Some(&file)).expect("valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:7777");
        assert_eq!(config.retry_max, 5);
        assert_eq!(config.sim_ring, Duration::from_millis(10));
        assert_eq!(config.sim_talk, Duration::from_millis(5000));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "retry_maximum = 5\n").expect("write");
        assert!(Config::load(Layer::default(), Some(&file)).is_err());
        let bad = |layer: Layer| Config::load(layer, None).is_err();
        assert!(bad(Layer {
            listen: Some("nowhere".into()),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            retry_jitter: Some(1.5),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            database: Some("mysql://x".into()),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            per_host_concurrency: Some(0),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            call_rate_limit: Some(-1.0),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            api_rate_burst: Some(0.5),
            ..Layer::default()
        }));
    }

    #[test]
    fn passwords_in_a_dsn_are_redacted() {
        assert_eq!(
            redact_dsn("postgres://u:secret@h/db"),
            "postgres://u:REDACTED@h/db"
        );
        let flags = Layer {
            admin_token: Some("operator-token-0123456789".into()),
            secret_key: Some("server-key-material".into()),
            ..Layer::default()
        };
        let shown = format!("{:?}", Config::load(flags, None).expect("valid"));
        assert!(
            !shown.contains("operator-token") && !shown.contains("server-key-material"),
            "{shown}"
        );
    }
}
