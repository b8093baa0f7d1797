//! The `maple-gateway` binary: parses the command line, builds, runs; maps SIGTERM/SIGINT to the graceful
//! shutdown (a second signal forces exit after writing the backup, see `maple_gateway::shutdown`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use maple_gateway::app::Application;
use maple_gateway::config::{Settings, env_help};
use maple_gateway::{sim, telemetry};

/// mimalloc instead of glibc's allocator: under load glibc's arenas make the worker threads contend on their
/// locks (futex wake-ups in `malloc`/`free` on the cache-hit path), and the cold path allocates heavily while
/// parsing upstream JSON.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "maple-gateway",
    version,
    about = "Caching gateway for the Nexon MapleStory Open API: equipment expectations"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file (keys are the env var names without MAPLE_, lower-cased). Applies to `serve`.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Drill {
    /// Ask a Sentinel to fail the Redis master over and measure the switch (POST /admin/drills/redis-failover).
    RedisFailover,
    /// Force the Nexon breaker open for a while (POST /admin/drills/upstream-outage).
    UpstreamOutage,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway (the default when no subcommand is given).
    #[command(after_long_help = env_help(), after_help = env_help())]
    Serve,
    /// Run the Nexon Open API simulator (generated characters, fault injection, call counters).
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Seed of the generated characters (same seed + name = same bytes).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Accept only this API key (any non-empty key when unset).
        #[arg(long, env = maple_gateway::config::SIM_API_KEY_VAR, value_name = "KEY")]
        api_key: Option<String>,
    },
    /// Run an operator drill against a running gateway and print its result (token from MAPLE_ADMIN_TOKEN).
    Drill {
        drill: Drill,
        /// Base URL of the gateway, e.g. http://127.0.0.1:8080
        #[arg(long, value_name = "URL")]
        url: String,
        /// Seconds of forced outage (upstream-outage only).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The admin token (prefer the environment variable).
        #[arg(
            long,
            env = "MAPLE_ADMIN_TOKEN",
            hide_env_values = true,
            value_name = "TOKEN"
        )]
        token: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = Settings::from_process(cli.config.as_deref())?;
            telemetry::init_tracing(settings.telemetry.log_format);
            for (name, close) in maple_gateway::config::unknown_env_vars(
                std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
            ) {
                tracing::warn!(
                    variable = %name,
                    did_you_mean = %close.join(", "),
                    "unknown MAPLE_* environment variable: ignored"
                );
            }
            let app = Application::build(settings)
                .await
                .context("start-up failed")?;
            // First signal: the graceful sequence. Second signal: write the backup and exit at once.
            let emergency = app.emergency();
            let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
            // One set of signal streams for both signals, so none can fall between two registrations.
            let mut signals = Signals::new();
            tokio::spawn(async move {
                signals.next().await;
                let _ = first_tx.send(());
                signals.next().await;
                tracing::warn!("second shutdown signal: forcing exit");
                emergency.backup_and_exit();
            });
            app.run_until(async {
                let _ = first_rx.await;
            })
            .await?;
            Ok(())
        }
        Command::Sim {
            listen,
            seed,
            api_key,
        } => {
            telemetry::init_tracing(maple_gateway::config::LogFormat::Text);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot bind {listen}"))?;
            tracing::info!(addr = %listener.local_addr()?, seed, "Nexon simulator listening");
            sim::serve(
                listener,
                sim::Simulator::new(sim::SimConfig { seed, api_key }),
                shutdown_signal(),
            )
            .await?;
            Ok(())
        }
        Command::Drill {
            drill,
            url,
            seconds,
            token,
        } => {
            // The drill answers when it is done: a failover drill bounds itself at about 60 s.
            let (path, wait_s) = match drill {
                Drill::RedisFailover => ("/admin/drills/redis-failover".to_string(), 120),
                Drill::UpstreamOutage => (
                    format!("/admin/drills/upstream-outage?seconds={seconds}"),
                    seconds.saturating_add(60),
                ),
            };
            let resp = reqwest::Client::new()
                .post(format!("{}{path}", url.trim_end_matches('/')))
                .bearer_auth(token)
                .timeout(std::time::Duration::from_secs(wait_s))
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let status = resp.status();
            let body: serde_json::Value = resp
                .json()
                .await
                .context("the gateway did not answer JSON")?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            anyhow::ensure!(status.is_success(), "drill failed: HTTP {status}");
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// SIGINT and SIGTERM as one stream of shutdown requests.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves on the next SIGINT or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = one(&mut self.term) => {},
                _ = one(&mut self.int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
