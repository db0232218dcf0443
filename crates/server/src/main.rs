//! The `hookline` binary: parses the command line, loads the configuration, and hands over to
//! the subcommand. `serve` binds, prints where it listens, and waits for a signal.

mod config;
mod keys;
mod listener;
mod serve;
mod telemetry;
mod tools;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Layer};

#[derive(Parser)]
#[command(
    name = "hookline",
    version,
    about = "Signed, retried, never-lost callbacks for a voice platform"
)]
struct Cli {
    /// TOML config file (keys as in config.default.toml)
    #[arg(long, global = true, env = "HOOKLINE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the delivery engine and the simulated carrier
    Serve(Layer),
    /// Create or upgrade the database schema, then exit
    Migrate(Layer),
    /// Check the signatures of a captured callback (exit status 0 when authentic)
    Verify(tools::VerifyArgs),
    /// Run a local receiver that prints, verifies and (on purpose) fails or delays callbacks
    Listen(tools::ListenArgs),
    /// Manage accounts directly in the database, without a running server
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account; prints it as JSON with its auth token and first signing secret
    Create {
        #[arg(long)]
        name: String,
        /// Make it a sub-account of this main account
        #[arg(long)]
        parent: Option<String>,
        #[command(flatten)]
        settings: Layer,
    },
    /// Replace an account's auth token; prints the new token as JSON
    RotateToken {
        auth_id: String,
        #[command(flatten)]
        settings: Layer,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookline: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(layer) => serve(Config::load(layer, cli.config.as_deref())?).await,
        Command::Migrate(layer) => {
            let config = Config::load(layer, cli.config.as_deref())?;
            telemetry::init(config.log_format);
            serve::open_store(&config).await?;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Accounts { command } => accounts(command, cli.config.as_deref()).await,
        Command::Verify(args) => {
            if tools::verify(&args)? {
                Ok(())
            } else {
                anyhow::bail!("the signatures do not verify")
            }
        }
        Command::Listen(args) => {
            let shutdown = CancellationToken::new();
            serve::cancel_on_signals(shutdown.clone());
            tools::listen(&args, shutdown).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format);
    tracing::debug!(?config, "configuration");
    if config.dev {
        tracing::warn!(
            "dev mode: http and loopback/private callback targets are allowed; never use this in production"
        );
    }
    let _one_writer = serve::lock_embedded_database(&config)?;
    let store = serve::open_store(&config).await?;
    if config.dev && store.count_accounts().await? == 0 {
        let created = api::new_account(
            store.as_ref(),
            api::Field::Value("Demo".into()),
            api::Field::Absent,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the demo account: {e}"))?;
        tracing::warn!("dev mode with an empty database: created a demo account");
        print_json(&serde_json::json!({ "demo_account": api::account_created_json(created) }))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%address, "listening");
    print_line(&format!("hookline listening on http://{address}"))?;
    tracing::info!("dashboard at http://{address}/ui/ (sign in with an account's auth id and auth token)");
    let shutdown = CancellationToken::new();
    serve::cancel_on_signals(shutdown.clone());
    serve::run(config, store, listener, shutdown).await
}

async fn accounts(command: AccountsCommand, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = match &command {
        AccountsCommand::Create { settings, .. } | AccountsCommand::RotateToken { settings, .. } => {
            settings.clone()
        }
    };
    let config = Config::load(settings, file)?;
    telemetry::init(config.log_format);
    let store = serve::open_store(&config).await?;
    match command {
        AccountsCommand::Create { name, parent, .. } => {
            let parent = parent.map_or(api::Field::Absent, api::Field::Value);
            let created = api::new_account(store.as_ref(), api::Field::Value(name), parent)
                .await
                .map_err(describe)?;
            print_json(&api::account_created_json(created))
        }
        AccountsCommand::RotateToken { auth_id, .. } => {
            let id =
                domain::AuthId::parse(&auth_id).with_context(|| format!("{auth_id:?} is not an auth id"))?;
            let token = api::rotate_account_token(store.as_ref(), &id)
                .await
                .map_err(describe)?;
            print_json(&api::token_rotated_json(&id, token))
        }
    }
}

fn describe(error: api::ApiError) -> anyhow::Error {
    match error {
        api::ApiError::Invalid(details) => {
            let fields: Vec<String> = details
                .iter()
                .map(|(field, why)| format!("{field} {why}"))
                .collect();
            anyhow::anyhow!("{}", fields.join("; "))
        }
        other => anyhow::Error::new(other),
    }
}

/// The program's output (not logs) goes to stdout, flushed at once so a supervising process
/// sees it immediately.
fn print_line(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    print_line(&serde_json::to_string_pretty(value).context("encoding JSON")?)
}
