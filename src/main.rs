//! Thin entry point: parse flags, load and validate the configuration, set up
//! logging and signals, run the command, and turn an error into one clear
//! sentence and an exit code (1: the command failed; 2: configuration or usage).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use callscribe::cli::{Cli, Command};
use callscribe::config::{LogConfig, LogFormat, RawConfig};

fn flag_overrides(cli: &Cli) -> figment::value::Dict {
    use figment::value::{Dict, Value};
    let mut root = Dict::new();
    let mut section = |name: &str, key: &str, v: Value| {
        let entry = root.entry(name.to_string()).or_insert_with(|| Value::from(Dict::new()));
        if let Value::Dict(_, d) = entry {
            d.insert(key.to_string(), v);
        }
    };
    if let Some(url) = &cli.global.database_url {
        section("database", "url", url.clone().into());
    }
    if let Some(f) = &cli.global.log_format {
        section("log", "format", f.clone().into());
    }
    if let Some(l) = &cli.global.log_level {
        section("log", "level", l.clone().into());
    }
    if let Command::Transcribe(t) = &cli.command {
        // Flags go through the configuration's checks: a bad value exits 2.
        if let Some(m) = &t.model {
            section("asr", "model", m.display().to_string().into());
        }
        if let Some(l) = &t.language {
            section("asr", "language", l.clone().into());
        }
        if let Some(ls) = &t.languages {
            section("asr", "languages", ls.iter().map(|l| Value::from(l.clone())).collect::<Vec<_>>().into());
        }
        if let Some(n) = t.threads {
            section("asr", "threads", n.into());
        }
        if let Some(n) = t.beam_size {
            section("asr", "beam_size", n.into());
        }
        if let Some(n) = t.speakers {
            section("speakers", "min", n.into());
            section("speakers", "max", n.into());
        }
        if let Some(n) = t.min_speakers {
            section("speakers", "min", n.into());
        }
        if let Some(n) = t.max_speakers {
            section("speakers", "max", n.into());
        }
    }
    if let Command::Run(run) = &cli.command {
        if let Some(c) = run.concurrency {
            section("worker", "concurrency", c.into());
        }
        if let Some(id) = &run.worker_id {
            section("worker", "id", id.clone().into());
        }
    }
    root
}

fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::new(&log.level);
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).with_span_list(false).init();
    } else {
        builder.init();
    }
}

/// SIGTERM or SIGINT: stop claiming and drain. A second signal skips the grace.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutdown requested: finishing running jobs (signal again to stop at once)");
        shutdown.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second signal: exiting now; held rows are rescued by other workers");
        std::process::exit(130);
    });
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`callscribe stats | head`) like other CLI tools.
    // SAFETY: setting signal dispositions before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // A file-size limit (`ulimit -f`, systemd's LimitFSIZE) must fail the write
        // with EFBIG, which the worker handles as its own fault, not kill it.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = Cli::parse();
    if let Command::AsrChild = cli.command {
        // The worker's inference process: no configuration of its own (the worker
        // sends it), logging as the worker's flags say.
        let log = callscribe::config::LogConfig {
            format: match cli.global.log_format.as_deref() {
                Some("json") => LogFormat::Json,
                Some("pretty") => LogFormat::Pretty,
                _ => LogFormat::Auto,
            },
            level: cli.global.log_level.clone().unwrap_or_else(|| "info".into()),
        };
        init_logging(&log);
        return match callscribe::asr::child::serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("callscribe asr-child: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let cfg = match RawConfig::load(cli.global.config.as_deref(), &flag_overrides(&cli)).and_then(|r| r.validate()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callscribe: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callscribe: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        spawn_signal_handler(shutdown.clone());
        callscribe::app::execute(cli.command, cfg, shutdown).await
    });
    // A download blocked in the kernel must not hold the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callscribe: {e:#}");
            ExitCode::from(1)
        }
    }
}
