//! What each command does, given a validated [`Config`]: the worker loop and the
//! admin commands. `main.rs` only parses, sets up logging and maps errors to
//! exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;

use crate::asr::WhisperEngine;
use crate::cli::{Command, EnqueueArgs, ModelsCommand, ReprocessArgs, TranscribeArgs};
use crate::config::{Backend, Config};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::queue::{self, NewRecording, Queue, Selector, Stats};
use crate::storage;
use crate::worker::{RunMode, Worker};

/// Connect, and on the embedded SQLite default create the tables on first use.
/// PostgreSQL and MySQL belong to the Laravel app: there the schema is only
/// checked, and `callscribe migrate` changes it.
pub async fn open_queue(cfg: &Config) -> Result<Arc<dyn Queue>> {
    let q = queue::connect(&cfg.database)
        .await
        .with_context(|| format!("connecting to {}", cfg.database.redacted_url()))?;
    if cfg.database.backend == Backend::Sqlite {
        q.migrate().await.context("creating the SQLite tables")?;
    }
    Ok(q)
}

async fn require_schema(q: &dyn Queue) -> Result<()> {
    let missing = q.missing_columns().await.context("reading the schema")?;
    if !missing.is_empty() {
        bail!(
            "the database lacks what the worker needs: {}; run `callscribe migrate` (or add these columns in a Laravel migration)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Run `command`; `shutdown` fires on SIGTERM/SIGINT.
pub async fn execute(command: Command, cfg: Config, shutdown: CancellationToken) -> Result<()> {
    match command {
        Command::Run(args) => {
            let q = open_queue(&cfg).await?;
            require_schema(q.as_ref()).await?;
            let store = storage::open(&cfg.storage).await?;
            // Downloads of workers killed mid-job (their process is gone) are removed.
            let swept = storage::sweep_temp(&cfg.storage.temp_dir);
            if swept > 0 {
                tracing::info!(files = swept, dir = %cfg.storage.temp_dir.display(), "removed temporary files of stopped workers");
            }
            let pipeline = Arc::new(pipeline_for(&cfg, store).await?);
            let worker = Worker::new(q.clone(), pipeline.clone(), cfg.worker.clone(), cfg.retry.clone());
            let mode = if args.drain { RunMode::Drain } else { RunMode::Forever };
            let stop_http = tokio_util::sync::CancellationToken::new();
            if let Some(addr) = cfg.metrics {
                let state = crate::metrics::State { queue: q.clone(), pipeline, faults: worker.faults() };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?;
                tokio::spawn(crate::metrics::serve(listener, state, stop_http.clone()));
            }
            let summary = worker.run(mode, shutdown).await;
            stop_http.cancel();
            let summary = summary?;
            if mode == RunMode::Drain {
                let stats = q.stats().await?;
                if stats.deferred > 0 {
                    tracing::info!(deferred = stats.deferred, "rows wait for a later retry time");
                }
                println!(
                    "drained: {} completed, {} failed, {} retried later, {} handed back, {} deferred for a worker fault",
                    summary.completed, summary.failed, summary.retried, summary.released, summary.deferred
                );
            }
            q.close().await;
            Ok(())
        }
        Command::Migrate => {
            let q = queue::connect(&cfg.database).await.context("connecting")?;
            let did = q.migrate().await?;
            if did.is_empty() {
                println!("schema up to date ({})", q.backend());
            }
            for change in &did {
                println!("{change}");
            }
            require_schema(q.as_ref()).await
        }
        Command::LaravelMigration => {
            print!("{}", queue::schema::laravel_migration());
            Ok(())
        }
        Command::Doctor => doctor(&cfg).await,
        Command::Enqueue(args) => enqueue(&cfg, args).await,
        Command::Stats(args) => {
            let q = open_queue(&cfg).await?;
            let s = q.stats().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_stats(&s);
            }
            Ok(())
        }
        Command::ResetStuck(args) => {
            let older = humantime::parse_duration(&args.older_than)
                .with_context(|| format!("--older-than {:?} is not a duration like 30m", args.older_than))?;
            let q = open_queue(&cfg).await?;
            let c = q.rescue_stale(older, cfg.retry.max_attempts, cfg.retry.max_crashes).await?;
            println!(
                "reset {} stuck row(s) to pending; {} had no attempts left and are now failed",
                c.requeued, c.failed
            );
            Ok(())
        }
        Command::Requeue(args) => {
            let q = open_queue(&cfg).await?;
            let n = q.requeue_failed(args.id).await?;
            println!("requeued {n} failed row(s)");
            if n == 0 && args.id.is_some() {
                bail!("row {} is not failed (or does not exist)", args.id.unwrap_or_default());
            }
            Ok(())
        }
        Command::Transcribe(args) => transcribe(&cfg, args, shutdown).await,
        Command::Redact(args) => redact(&cfg, args).await,
        Command::PiiCorpus { seed, per_form } => {
            let mut out = std::io::stdout().lock();
            for e in crate::redact::corpus::generate(seed, per_form) {
                let pred = crate::redact::corpus::predict(&e, crate::redact::Locales::ALL);
                let spans = |labels: &[crate::redact::corpus::Label]| -> Vec<serde_json::Value> {
                    labels
                        .iter()
                        .map(|l| {
                            let (start, end) = e.char_span(l.first, l.last);
                            serde_json::json!({"type": l.kind.name(), "start": start, "end": end})
                        })
                        .collect()
                };
                let line = serde_json::json!({
                    "form": e.form,
                    "text": e.text(),
                    "entities": spans(&e.labels),
                    "callscribe": spans(&pred),
                });
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
        Command::Show(args) => {
            let q = open_queue(&cfg).await?;
            let Some(row) = q.list(Some(args.id), 1).await?.into_iter().next() else {
                bail!("no recording with id {}", args.id);
            };
            let results = q.results(args.id).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "recording": row, "results": results }))?
                );
                return Ok(());
            }
            println!("recording {} ({}): {}, attempt {}", row.id, row.r2_path, row.status, row.attempts);
            if let Some(e) = &row.processing_error {
                println!("processing error: {e}");
            }
            if let (Some(stage), "processing" | "failed") = (&row.stage, row.status.as_str()) {
                println!("stage: {stage}; crashes: {}", row.crashes);
            }
            if let Some(t) = &results.transcript {
                println!(
                    "language {} ({:.2}), confidence {:.2}, model {}",
                    t.language_detected.as_deref().unwrap_or("?"),
                    t.language_probability.unwrap_or(0.0),
                    t.confidence_score.unwrap_or(0.0),
                    t.model_used.as_deref().unwrap_or("?")
                );
                for s in &t.segments {
                    println!("[{:>7.2}–{:>7.2}] {}: {}", s.start, s.end, s.speaker.as_deref().unwrap_or("?"), s.text);
                }
            }
            if let Some(summary) = &results.summary {
                println!("summary: {summary}");
            }
            if let (Some(label), Some(score)) = (&results.sentiment_label, results.sentiment_score) {
                println!("sentiment: {label} ({score:+.2} on −10…+10)");
            }
            if let Some(q) = results.quality_score {
                println!("quality: {q:.1} ({})", results.quality_zone.as_deref().unwrap_or("?"));
            }
            if let Some(o) = &results.outcome {
                println!("outcome: {o}");
            }
            // Findings: `{name|description|issue|reason, quote}` objects.
            for (title, items, key) in [
                ("topic", &results.key_topics, "name"),
                ("action", &results.action_items, "description"),
                ("compliance flag", &results.compliance_flags, "issue"),
                ("score impact", &results.score_impacts, "reason"),
            ] {
                for item in items.as_ref().and_then(|v| v.as_array()).into_iter().flatten() {
                    let text = item[key].as_str().or_else(|| item.as_str()).unwrap_or_default();
                    match item["quote"].as_str().filter(|q| !q.is_empty()) {
                        Some(q) => println!("{title}: {text} — \"{q}\""),
                        None => println!("{title}: {text}"),
                    }
                }
            }
            if let (Some(engine), Some(model)) = (&results.engine, &results.model_used) {
                println!("analysed by {engine} ({model})");
            }
            if let Some(e) = &results.analysis_error {
                println!("analysis failed: {e} (rerun with `callscribe reanalyze --id {}`)", args.id);
            }
            Ok(())
        }
        Command::Models(ModelsCommand::ImportCt2 { dir, out, weights }) => {
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let t = std::time::Instant::now();
            let (d, o) = (dir.clone(), out.clone());
            let c = tokio::task::spawn_blocking(move || crate::models::import_ct2(&d, &o, weights)).await??;
            println!(
                "wrote {} ({} {}, {:?} weights, {} tensors, {} tokens, {:.1} MB) in {:.1} s",
                out.display(),
                c.hparams.size_name(),
                if c.hparams.multilingual() { "multilingual" } else { "English-only" },
                c.weights,
                c.tensors,
                c.vocabulary,
                c.bytes as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Models(ModelsCommand::List) => {
            let found = crate::models::list(&cfg.models_dir);
            if found.is_empty() {
                println!("no whisper models in {} (run scripts/fetch-models.sh)", cfg.models_dir.display());
            }
            let configured = cfg.asr.as_ref().map(|a| a.model.clone());
            for m in found {
                let mark = if configured.as_deref() == Some(m.path.as_path()) { "*" } else { " " };
                println!("{mark} {:<40} {:<10} {:>7.1} MB", m.path.display(), m.kind(), m.bytes as f64 / 1e6);
            }
            Ok(())
        }
        Command::Reanalyze(args) => reanalyze(&cfg, args).await,
        Command::AsrChild => bail!("asr-child is started by `callscribe run`, not by hand"),
        Command::Health(args) => {
            let Some(mut addr) = cfg.metrics else {
                bail!(
                    "metrics.listen is not set: the worker serves no health endpoint (set CALLSCRIBE_METRICS__LISTEN)"
                );
            };
            if addr.ip().is_unspecified() {
                // Listening on every address: ask over loopback.
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let path = if args.ready { "/readyz" } else { "/healthz" };
            let url = format!("http://{addr}{path}");
            let resp = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("no answer from {url}"))?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            print!("{body}");
            if !status.is_success() {
                bail!("{url} answered {status}");
            }
            Ok(())
        }
        Command::Reprocess(ReprocessArgs { id, apex_id }) => {
            let sel = match (id, apex_id) {
                (Some(id), _) => Selector::Id(id),
                (None, Some(a)) => Selector::ApexId(a),
                (None, None) => bail!("give --id or --apex-id"),
            };
            let q = open_queue(&cfg).await?;
            let n = q.reprocess(&sel).await?;
            println!("queued {n} row(s) for reprocessing; results are replaced when they complete");
            if n == 0 {
                bail!("no matching row that is not being processed right now");
            }
            Ok(())
        }
    }
}

/// The job pipeline of `cfg`, with the whisper model loaded once (if enabled).
pub async fn pipeline_for(cfg: &Config, store: Arc<dyn storage::Storage>) -> Result<Pipeline> {
    use crate::pipeline::Recogniser;
    let asr = match &cfg.asr {
        Some(a) if a.isolate => {
            // whisper and the decoder in a supervised child process: a native crash
            // on one recording costs a restart of the child, never the worker.
            let exe = std::env::current_exe().context("locating the callscribe executable")?;
            let child = crate::asr::child::AsrProcess::start(exe, a.clone(), cfg.speakers.clone(), &cfg.log).await?;
            Some(Arc::new(Recogniser::Process(Box::new(child))))
        }
        Some(a) => {
            let a = a.clone();
            let t = std::time::Instant::now();
            let engine = tokio::task::spawn_blocking(move || WhisperEngine::load(a)).await??;
            tracing::info!(model = engine.model_name(), seconds = t.elapsed().as_secs_f64(), "whisper model loaded");
            Some(Arc::new(Recogniser::InProcess(Arc::new(engine))))
        }
        None => {
            tracing::info!("transcription disabled (asr.enabled = false): jobs store audio figures only");
            None
        }
    };
    // Analysis needs a transcript: none without transcription.
    let analyzer = if cfg.asr.is_some() { analyzer_for(cfg).await?.map(Arc::new) } else { None };
    Ok(Pipeline::new(
        store,
        PipelineConfig {
            max_download_bytes: cfg.storage.max_download_bytes,
            temp_dir: cfg.storage.temp_dir.clone(),
            max_duration: cfg.audio.max_duration,
            speakers: cfg.speakers.clone(),
            redaction: cfg.redaction.clone(),
        },
        asr,
        analyzer,
    ))
}

/// The analysis stage of `cfg` (starts the LLM process once, when configured).
pub async fn analyzer_for(cfg: &Config) -> Result<Option<crate::analyze::Analyzer>> {
    use crate::analyze::{http::OpenAiHttp, llm::LlmProcess, Analyzer, Engine};
    use crate::config::AnalysisEngine;
    let engine = match &cfg.analysis.engine {
        AnalysisEngine::Off => return Ok(None),
        AnalysisEngine::Heuristic => {
            tracing::info!("analysis: heuristic engine (no language model configured)");
            Engine::Heuristic
        }
        AnalysisEngine::Llama(c) => {
            // A broken LLM must not stop transcription: the worker starts anyway, and
            // each analysis tries to (re)start the process; until one succeeds the
            // analysis stage fails transiently and jobs are retried, not lost.
            let p = LlmProcess::new(c.clone());
            if let Err(e) = p.warm_up().await {
                tracing::error!(error = %e, "LLM process did not start; analysis will retry it per job");
            }
            Engine::Llm(p)
        }
        AnalysisEngine::Http(c) => Engine::Http(OpenAiHttp::new(c.clone())?),
    };
    Ok(Some(Analyzer::with_tiers(
        engine,
        cfg.analysis.tiers.clone(),
        &cfg.analysis.locale,
        cfg.analysis.max_prompt_chars,
    )))
}

/// `callscribe redact`: offline redaction of audio files or transcript JSON.
async fn redact(cfg: &Config, args: crate::cli::RedactArgs) -> Result<()> {
    use crate::redact::{self, AudioRedaction, Cover, Locales};
    let settings = &cfg.redaction_settings;
    let locales = if args.locales.is_empty() {
        settings.locales
    } else {
        Locales::parse(&args.locales)
            .map_err(|other| anyhow::anyhow!("--locales: unknown entity set {other:?} (in, gb)"))?
    };
    let mut audio = settings.audio.clone().unwrap_or(AudioRedaction {
        cover: Cover::Tone,
        padding_seconds: 0.15,
        key_pattern: "{dir}{stem}.redacted.wav".into(),
        delete_original: false,
    });
    if let Some(name) = &args.cover {
        audio.cover =
            Cover::parse(name).ok_or_else(|| anyhow::anyhow!("--cover: {name:?} is neither tone nor silence"))?;
    }
    let mut engine: Option<Arc<WhisperEngine>> = None;
    let mut failures = 0;
    for file in &args.files {
        let ext = file.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
        let is_json = ext.as_deref() == Some("json");
        let transcript = if is_json {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            let segments: Vec<crate::asr::Segment> =
                serde_json::from_value(v["segments"].clone()).with_context(|| {
                    format!("{}: no `segments` list as `transcribe --format json` writes", file.display())
                })?;
            crate::asr::Transcript {
                language: v["language"].as_str().unwrap_or_default().to_string(),
                model: v["model"].as_str().unwrap_or_default().to_string(),
                segments,
                ..Default::default()
            }
        } else {
            if engine.is_none() {
                let mut asr = cfg.asr.clone().unwrap_or_default();
                if let Some(m) = &args.model {
                    asr.model = m.clone();
                }
                if let Some(l) = &args.language {
                    asr.language = l.to_lowercase();
                }
                engine = Some(Arc::new(tokio::task::spawn_blocking(move || WhisperEngine::load(asr)).await??));
            }
            let (engine, speakers, path, max, ext) = (
                engine.clone().expect("loaded above"),
                cfg.speakers.clone(),
                file.clone(),
                cfg.audio.max_duration,
                ext.clone(),
            );
            let result = tokio::task::spawn_blocking(move || -> Result<_> {
                let intake = crate::audio::intake(&path, ext.as_deref(), max)?;
                let never = std::sync::atomic::AtomicBool::new(false);
                Ok(crate::pipeline::recognise(&engine, &intake.audio16k, &speakers, &never)?.0)
            })
            .await?;
            match result {
                Ok(t) => t,
                Err(e) => {
                    failures += 1;
                    eprintln!("{}: {e:#}", file.display());
                    continue;
                }
            }
        };
        let red = redact::redact_transcript(&transcript, locales, audio.padding_seconds);
        let dir = match &args.out {
            Some(d) => d.clone(),
            None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("recording");
        let json_out = dir.join(format!("{stem}.redacted.json"));
        let doc = serde_json::json!({
            "source": file.display().to_string(),
            "language": red.transcript.language,
            "model": red.transcript.model,
            "text": red.transcript.full_text(),
            "segments": red.transcript.segments,
            "pii_detected": red.items,
            "covered_seconds": red.cover,
        });
        std::fs::write(&json_out, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", json_out.display()))?;
        let mut wrote = vec![json_out.display().to_string()];
        if !is_json {
            let wav_out = dir.join(format!("{stem}.redacted.wav"));
            let (src, dest, cover, mode, max) =
                (file.clone(), wav_out.clone(), red.cover.clone(), audio.cover, cfg.audio.max_duration);
            tokio::task::spawn_blocking(move || {
                redact::audio::redact_file(&src, ext.as_deref(), max, &cover, mode, &dest)
            })
            .await?
            .with_context(|| format!("writing {}", wav_out.display()))?;
            wrote.push(wav_out.display().to_string());
        }
        let counts: Vec<String> = redact::counts(&red.items).iter().map(|(k, n)| format!("{n} {k}")).collect();
        eprintln!(
            "{}: {} → {}",
            file.display(),
            if counts.is_empty() { "no PII found".to_string() } else { counts.join(", ") },
            wrote.join(", ")
        );
    }
    if failures > 0 {
        bail!("{failures} of {} file(s) failed", args.files.len());
    }
    Ok(())
}

/// `transcribe` takes files in batches of at most this many…
const TRANSCRIBE_BATCH_FILES: usize = 32;
/// …and adds files to a batch while it holds less audio than this, seconds (a
/// long file is a batch of its own).
const TRANSCRIBE_BATCH_SECONDS: f64 = 300.0;

async fn transcribe(cfg: &Config, args: TranscribeArgs, shutdown: CancellationToken) -> Result<()> {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};
    // --model, --language, --threads, --beam-size and the speaker counts were
    // merged into the configuration (and checked there) by main.
    let Some(asr) = cfg.asr.clone() else {
        bail!("asr.enabled is false in the configuration: nothing to transcribe with");
    };
    let formats = args.format.0;
    // Several formats are files: into --out, else the current folder.
    let out = args.out.clone().or_else(|| (formats.len() > 1).then(|| PathBuf::from(".")));
    let engine = Arc::new(tokio::task::spawn_blocking(move || WhisperEngine::load(asr)).await??);
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let abort = Arc::new(AtomicBool::new(false));
    {
        let abort = abort.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            abort.store(true, Ordering::Relaxed);
        });
    }
    let tty = std::io::stderr().is_terminal();
    let total = args.files.len();
    let stems = crate::output::output_stems(&args.files);
    let mut failures = 0;
    let mut printed_vtt = false;
    // Short files go to whisper together, their windows in one queue, so that
    // two threads share them (`recognise_many`); where windows are decoded one
    // at a time (a GPU, one thread) batching gains nothing.
    let batch_files = if engine.decodes_two_at_a_time() { TRANSCRIBE_BATCH_FILES } else { 1 };
    let mut next = 0;
    while next < total {
        let mut batch: Vec<(usize, crate::audio::Intake)> = Vec::new();
        let mut seconds = 0.0;
        while next < total && batch.len() < batch_files && seconds < TRANSCRIBE_BATCH_SECONDS {
            let (i, path, max) = (next, args.files[next].clone(), cfg.audio.max_duration);
            next += 1;
            let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
            match tokio::task::spawn_blocking(move || crate::audio::intake(&path, ext.as_deref(), max)).await? {
                Ok(intake) => {
                    seconds += intake.quality.duration_seconds;
                    batch.push((i, intake));
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("{}{}: {e:#}", if tty { "\r" } else { "" }, args.files[i].display());
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        if tty {
            // Per track (a stereo file's channels each): its file, its channel, seconds
            // done and its length.
            let mut tracks: Vec<(String, usize, f64, f64)> = Vec::new();
            for (i, intake) in &batch {
                let (n, len) = (crate::pipeline::tracks_of(&intake.audio16k), intake.audio16k.duration_seconds());
                tracks.extend((0..n).map(|ch| (args.files[*i].display().to_string(), ch, 0.0, len)));
            }
            let (first, last) = (batch[0].0 + 1, batch[batch.len() - 1].0 + 1);
            let place = if first == last { format!("{first}") } else { format!("{first}–{last}") };
            let single = batch.len() == 1;
            eprint!("\r[{place}/{total}] {} …", tracks[0].0);
            let tracks = std::sync::Mutex::new(tracks);
            engine.set_progress(Some(Arc::new(move |track, done, len| {
                let mut tracks = tracks.lock().unwrap_or_else(|e| e.into_inner());
                let Some(t) = tracks.get_mut(track) else { return };
                t.2 = done;
                let (name, channel) = (t.0.clone(), t.1);
                // Several files: how far the batch is, over all their tracks.
                let (done, len) = if single {
                    (done, len)
                } else {
                    (tracks.iter().map(|t| t.2).sum::<f64>(), tracks.iter().map(|t| t.3).sum::<f64>())
                };
                let leg = if single && channel > 0 { format!(" (channel {})", channel + 1) } else { String::new() };
                let pct = if len > 0.0 { (100.0 * done / len).min(100.0) } else { 100.0 };
                let bar: String = (0..20).map(|k| if (k as f64) < pct / 5.0 { '#' } else { '.' }).collect();
                eprint!("\r[{place}/{total}] {name}{leg} [{bar}] {pct:3.0} % of {len:.0} s");
            })));
        }
        let (engine2, speakers, abort2) = (engine.clone(), cfg.speakers.clone(), abort.clone());
        let (batch, result) = tokio::task::spawn_blocking(move || {
            let audios: Vec<&crate::audio::Audio> = batch.iter().map(|(_, intake)| &intake.audio16k).collect();
            let result = crate::pipeline::recognise_many(&engine2, &audios, &speakers, &abort2);
            (batch, result)
        })
        .await?;
        // A whisper failure fails every file of the batch, each with its message.
        let results: Vec<Result<_, String>> = match result {
            Ok(r) => r.into_iter().map(Ok).collect(),
            Err(e) => batch.iter().map(|_| Err(e.to_string())).collect(),
        };
        for ((i, intake), result) in batch.into_iter().zip(results) {
            let (file, quality) = (&args.files[i], intake.quality);
            match result {
                Ok((t, m)) => {
                    if tty {
                        eprintln!(
                            "\r[{}/{total}] {}: {:.1} s of audio in {:.1} s ({}){}",
                            i + 1,
                            file.display(),
                            quality.duration_seconds,
                            t.processing_seconds,
                            t.language,
                            " ".repeat(20)
                        );
                    }
                    for &format in &formats {
                        let text = crate::output::render(format, &file.display().to_string(), &t, &quality, &m);
                        match &out {
                            Some(dir) => {
                                let dest = dir.join(format!("{}.{}", stems[i], format.extension()));
                                std::fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))?;
                                if formats.len() > 1 || args.out.is_none() {
                                    eprintln!("wrote {}", dest.display());
                                }
                            }
                            // One WebVTT stream: a single header, each file after a NOTE.
                            None if format == crate::output::Format::Vtt && total > 1 => {
                                let body = text.strip_prefix("WEBVTT\n\n").unwrap_or(&text);
                                if !printed_vtt {
                                    print!("WEBVTT\n\n");
                                    printed_vtt = true;
                                }
                                print!("NOTE {}\n\n{body}", file.display().to_string().replace("-->", "- ->"));
                            }
                            None => print!("{text}"),
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("{}{}: {e:#}", if tty { "\r" } else { "" }, file.display());
                }
            }
        }
        if abort.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
    }
    engine.set_progress(None);
    if failures > 0 {
        bail!("{failures} of {total} file(s) failed");
    }
    Ok(())
}

/// Run the analysis again on stored transcripts: after a failed analysis, a new
/// model or template. Whisper is not loaded and the audio not fetched.
async fn reanalyze(cfg: &Config, args: crate::cli::ReanalyzeArgs) -> Result<()> {
    use crate::queue::AnalysisSelector;
    let selector = match (args.id, args.failed_analysis, &args.since) {
        (Some(id), _, _) => AnalysisSelector::Id(id),
        (None, true, _) => AnalysisSelector::FailedAnalysis,
        (None, false, Some(since)) => AnalysisSelector::CompletedWithin(
            humantime::parse_duration(since)
                .with_context(|| format!("--since {since:?} is not a duration like 24h"))?,
        ),
        (None, false, None) => bail!("give --id, --failed-analysis or --since"),
    };
    let q = open_queue(cfg).await?;
    require_schema(q.as_ref()).await?;
    let Some(analyzer) = analyzer_for(cfg).await? else {
        bail!("analysis is off (analysis.engine = \"off\")");
    };
    let ids = q.reanalysis_targets(&selector).await?;
    analyzer.set_table(q.analysis_layers().await?);
    let (mut done, mut failed) = (0, 0);
    for id in &ids {
        let Some(stored) = q.results(*id).await?.transcript else { continue };
        let transcript = stored.to_transcript();
        let context = q.call_context(*id).await?;
        let span = tracing::info_span!("reanalyze", job_id = id);
        match tracing::Instrument::instrument(analyzer.analyze(&transcript, &context), span).await {
            Ok(a) => {
                q.store_analysis(*id, Ok(&a), &transcript).await?;
                done += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "analysis failed again");
                q.store_analysis(*id, Err(&e.to_string()), &transcript).await?;
                failed += 1;
            }
        }
    }
    println!("reanalysed {done} row(s); {failed} failed again (see analysis_error)");
    q.close().await;
    if args.id.is_some() && ids.is_empty() {
        bail!("row {} is not a completed row with a transcript", args.id.unwrap_or_default());
    }
    Ok(())
}

async fn enqueue(cfg: &Config, args: EnqueueArgs) -> Result<()> {
    let q = open_queue(cfg).await?;
    let store = storage::open(&cfg.storage).await?;
    for file in &args.files {
        let (key, size) = if args.no_upload {
            let key = file.to_string_lossy().to_string();
            storage::validate_key(&key)?;
            (key, None)
        } else {
            let meta = std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
            if !meta.is_file() {
                bail!("{} is not a file", file.display());
            }
            let key = object_key_for(file);
            store.check().await?;
            store.put(None, &key, file).await.with_context(|| format!("uploading {}", file.display()))?;
            (key, i64::try_from(meta.len()).ok())
        };
        let id = q
            .enqueue(&NewRecording {
                apex_id: args.apex_id.clone(),
                file_format: Path::new(&key).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase),
                r2_path: key.clone(),
                r2_bucket: None,
                duration_seconds: None,
                file_size_bytes: size,
                priority: args.priority,
            })
            .await?;
        println!("{id}\t{key}");
    }
    q.close().await;
    Ok(())
}

/// `call-recordings/YYYY/MM/DD/<name>_<random>.<ext>`: the layout of the Laravel app's
/// `CallRecordingService`.
fn object_key_for(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("recording");
    let stem: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let ext =
        file.extension().and_then(|e| e.to_str()).map(|e| format!(".{}", e.to_ascii_lowercase())).unwrap_or_default();
    let tag: u32 = rand::random();
    format!("call-recordings/{}/{stem}_{tag:08x}{ext}", chrono::Utc::now().format("%Y/%m/%d"))
}

async fn doctor(cfg: &Config) -> Result<()> {
    let mut ok = true;
    let mut line = |good: bool, what: &str, detail: String| {
        ok &= good;
        println!("{} {what:<9} {detail}", if good { "ok  " } else { "FAIL" });
    };
    match queue::connect(&cfg.database).await {
        Ok(q) => {
            line(true, "database", format!("{} ({})", cfg.database.redacted_url(), q.backend()));
            match q.missing_columns().await {
                Ok(m) if m.is_empty() => line(true, "schema", "all tables and columns present".into()),
                // The embedded database is made and migrated by every command that uses it.
                Ok(_) if cfg.database.backend == Backend::Sqlite => line(
                    true,
                    "schema",
                    "not made yet or incomplete: `run` (any command that uses it) makes and migrates it".into(),
                ),
                Ok(m) => line(false, "schema", format!("missing {} (run `callscribe migrate`)", m.join(", "))),
                Err(e) => line(false, "schema", e.to_string()),
            }
            match q.type_problems().await {
                Ok(p) if p.is_empty() => line(true, "types", "every column holds what the worker writes".into()),
                Ok(p) => line(false, "types", p.join("; ")),
                Err(e) => line(false, "types", e.to_string()),
            }
            match q.claim_index_problem().await {
                Ok(None) => {}
                Ok(Some(problem)) => println!("warn claim     {problem}"),
                Err(e) => line(false, "schema", e.to_string()),
            }
            match q.time_zone_problem().await {
                Ok(None) => {}
                Ok(Some(problem)) => println!("warn time zone {problem}"),
                Err(e) => line(false, "time zone", e.to_string()),
            }
            if !matches!(cfg.analysis.engine, crate::config::AnalysisEngine::Off) {
                let t = &cfg.analysis.tiers;
                let table = match q.analysis_layers().await {
                    Ok(rows) if rows.is_empty() => "no active ai_configs rows".to_string(),
                    Ok(rows) => format!("{} active ai_configs row(s)", rows.len()),
                    Err(e) => format!("ai_configs unreadable: {e}"),
                };
                line(
                    true,
                    "analysis tiers",
                    format!(
                        "global {} ({}); file: {} campaign type(s), {} direction(s), {} client(s); {table}",
                        t.global.name,
                        cfg.analysis.locale,
                        t.file.campaign_type.len(),
                        t.file.direction.len(),
                        t.file.client.len()
                    ),
                );
            }
            q.close().await;
        }
        Err(e) => line(false, "database", format!("{}: {e}", cfg.database.redacted_url())),
    }
    match storage::open(&cfg.storage).await {
        Ok(s) => match s.check().await {
            Ok(()) => line(true, "storage", s.describe()),
            Err(e) => line(false, "storage", format!("{}: {e}", s.describe())),
        },
        Err(e) => line(false, "storage", e.to_string()),
    }
    let tmp = &cfg.storage.temp_dir;
    match tempfile::tempfile_in(tmp) {
        Ok(_) => line(true, "temp dir", tmp.display().to_string()),
        Err(e) => line(false, "temp dir", format!("{}: {e}", tmp.display())),
    }
    match &cfg.asr {
        Some(a) => match crate::asr::whisper::check_model(&a.model) {
            Ok(hp) => {
                line(true, "whisper", format!("{} ({}, {} threads)", a.model.display(), hp.size_name(), a.threads))
            }
            Err(e) => line(false, "whisper", format!("{e} (run scripts/fetch-models.sh or set asr.model)")),
        },
        None => line(true, "whisper", "transcription disabled (asr.enabled = false)".into()),
    }
    match &cfg.analysis.engine {
        crate::config::AnalysisEngine::Off => line(true, "analysis", "off".into()),
        crate::config::AnalysisEngine::Heuristic => {
            line(true, "analysis", "heuristic engine (no LLM model configured)".into())
        }
        crate::config::AnalysisEngine::Llama(c) => {
            let problem = if !c.model.exists() {
                Some(format!("model {} not found", c.model.display()))
            } else if !c.bin.exists() {
                Some(format!("{} not found (build the workspace)", c.bin.display()))
            } else {
                None
            };
            match problem {
                None => line(true, "analysis", format!("llama.cpp: {} via {}", c.model.display(), c.bin.display())),
                Some(p) => line(false, "analysis", p),
            }
        }
        crate::config::AnalysisEngine::Http(h) => line(true, "analysis", format!("{} model {}", h.base_url, h.model)),
    }
    match &cfg.redaction {
        None => line(true, "redaction", "off".into()),
        Some(r) => {
            let sets: Vec<&str> = [(r.locales.india, "in"), (r.locales.uk, "gb")]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
            let audio = match &r.audio {
                None => "no cleaned audio".to_string(),
                Some(a) => format!(
                    "cleaned audio ({:?}) as {}{}",
                    a.cover,
                    a.key_pattern,
                    if a.delete_original { ", original deleted" } else { "" }
                ),
            };
            line(
                true,
                "redaction",
                format!(
                    "on: {} + cards, PINs, emails, dates of birth; {}; raw text {}",
                    sets.join(", "),
                    audio,
                    if r.keep_raw { "kept in full_transcript" } else { "not kept" }
                ),
            )
        }
    }
    std::io::stdout().flush().ok();
    if !ok {
        bail!("doctor found problems");
    }
    Ok(())
}

fn print_stats(s: &Stats) {
    println!("queued      {:>8}   (the app's priority reprocess)", s.queued);
    println!("pending     {:>8}   (waiting for a retry time: {})", s.pending, s.deferred);
    println!("processing  {:>8}", s.processing);
    if s.worker_faults > 0 {
        println!(
            "worker faults {:>6}   (pending rows handed back for a worker's own fault; attempts not spent)",
            s.worker_faults
        );
    }
    println!("completed   {:>8}   (last hour: {})", s.completed, s.completed_last_hour);
    println!("failed      {:>8}   (last hour: {})", s.failed, s.failed_last_hour);
    match s.oldest_pending_age_seconds {
        Some(age) => {
            println!("oldest pending: {}", humantime::format_duration(Duration::from_secs(age.max(0.0) as u64)))
        }
        None => println!("oldest pending: none"),
    }
    if !s.top_errors.is_empty() {
        println!("top errors:");
        for e in &s.top_errors {
            println!("  {:>6}  {}", e.count, e.error);
        }
    }
}
