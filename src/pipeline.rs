//! One job's work, stage after stage: fetch the audio (storage), decode and
//! resample it and measure its quality (audio), transcribe it (asr) and find
//! who spoke when (diarize), then compute the speaker metrics. No SQL and no
//! loops here: the worker owns the job's lifecycle and writes what this returns.
//!
//! Then the analysis stage (LLM, HTTP or heuristic), after whisper is done; its
//! failure is recorded with the results, never a reason to drop the transcript.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::asr::whisper::{AsrError, Track};
use crate::asr::{Transcript, WhisperEngine};
use crate::audio::{self, Audio, AudioError};
use crate::config::SpeakersConfig;
use crate::diarize::{self, metrics::CallMetrics, Method};
use crate::queue::{Job, JobResults};
use crate::storage::{Storage, StorageError};

/// The stage a job is in (`processing_stage`) or a failure happened in, for
/// `processing_error` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Fetch,
    Decode,
    Transcribe,
    Redact,
    Analyze,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Transcribe => "transcribe",
            Stage::Redact => "redact",
            Stage::Analyze => "analyze",
        }
    }
}

/// A stage failure, classified where it happened: the row's fault for good
/// (`transient = false`: undecodable audio, a missing object), a passing trouble
/// worth a retry that counts an attempt (`transient`), or the worker's own fault
/// (`worker`: the storage unreachable or refusing our credentials as a whole, the
/// temp folder unusable, the whisper model unloadable), which hands the row back
/// without spending its attempt while the worker pauses. `crashed`: the
/// inference process died on this recording (counted in `crashes`).
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", stage.as_str())]
pub struct StageError {
    pub stage: Stage,
    pub transient: bool,
    pub worker: bool,
    pub crashed: bool,
    pub message: String,
}

impl StageError {
    /// A failure of the row (permanent, or `transient`: worth a retry that counts).
    pub fn new(stage: Stage, transient: bool, message: String) -> Self {
        StageError { stage, transient, worker: false, crashed: false, message }
    }
}

/// How far a job has got: the stage it is in and, once decoded, the audio's
/// length (the job's time limit grows with it). The worker writes the stage to
/// `processing_stage`, so that a crash can be traced to it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub stage: Option<Stage>,
    pub audio_seconds: Option<f64>,
}

/// Where whisper runs: in a supervised child process (the default: a native
/// crash costs a restart, not the worker), or in this process (`asr.isolate =
/// false`, and the one-shot `transcribe` command).
pub enum Recogniser {
    Process(Box<crate::asr::child::AsrProcess>),
    InProcess(Arc<WhisperEngine>),
}

impl From<StorageError> for StageError {
    fn from(e: StorageError) -> Self {
        StageError::new(Stage::Fetch, e.is_transient(), e.to_string())
    }
}

impl From<AudioError> for StageError {
    fn from(e: AudioError) -> Self {
        StageError::new(Stage::Decode, e.is_transient(), e.to_string())
    }
}

impl From<AsrError> for StageError {
    fn from(e: AsrError) -> Self {
        // A model that will not load (or a state that cannot be made) is the
        // machine's problem, not the row's.
        let worker = matches!(e, AsrError::Model { .. } | AsrError::State(_));
        let transient = worker || matches!(e, AsrError::Aborted);
        StageError { stage: Stage::Transcribe, transient, worker, crashed: false, message: e.to_string() }
    }
}

impl From<crate::analyze::AnalyzeError> for StageError {
    fn from(e: crate::analyze::AnalyzeError) -> Self {
        StageError::new(Stage::Analyze, e.is_transient(), e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub max_download_bytes: u64,
    pub temp_dir: PathBuf,
    pub max_duration: Duration,
    pub speakers: SpeakersConfig,
    /// PII redaction; `None`: off.
    pub redaction: Option<crate::redact::RedactionConfig>,
}

pub struct Pipeline {
    storage: Arc<dyn Storage>,
    config: PipelineConfig,
    asr: Option<Arc<Recogniser>>,
    analyzer: Option<Arc<crate::analyze::Analyzer>>,
    /// Held by whichever inference stage runs: with `worker.concurrency` > 1,
    /// downloads and decoding overlap, whisper and the LLM never share the cores.
    inference: tokio::sync::Mutex<()>,
}

/// Sets the abort flag when dropped: a job future dropped by shutdown or a
/// timeout stops whisper at its next step instead of running on unseen.
struct AbortOnDrop(Arc<AtomicBool>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Transcribe 16 kHz audio and label speakers: each channel of a stereo call
/// on its own (speaker = channel label), a mono call (or stereo whose legs are
/// the same signal) with the configured mono method. Blocking.
pub fn recognise(
    engine: &WhisperEngine,
    audio16k: &Audio,
    speakers: &SpeakersConfig,
    abort: &AtomicBool,
) -> Result<(Transcript, CallMetrics), AsrError> {
    let mut out = recognise_many(engine, &[audio16k], speakers, abort)?;
    Ok(out.remove(0))
}

/// `recognise` for several recordings at once (`callscribe transcribe` with
/// several files): the windows of all their channels go to whisper in one
/// queue (`WhisperEngine::transcribe_tracks`), so short recordings keep both
/// threads busy. The results come back in the order of `audios`.
pub fn recognise_many(
    engine: &WhisperEngine,
    audios: &[&Audio],
    speakers: &SpeakersConfig,
    abort: &AtomicBool,
) -> Result<Vec<(Transcript, CallMetrics)>, AsrError> {
    let legs: Vec<usize> = audios.iter().map(|a| tracks_of(a)).collect();
    let tracks: Vec<Track<'_>> = audios
        .iter()
        .zip(&legs)
        .flat_map(|(a, &n)| (0..n).map(move |ch| Track { samples: &a.channels[ch], channel: ch }))
        .collect();
    let mut transcripts = engine.transcribe_tracks(&tracks, abort)?.into_iter();
    Ok(audios
        .iter()
        .zip(&legs)
        .map(|(audio16k, &n)| label_speakers(audio16k, transcripts.by_ref().take(n).collect(), speakers))
        .collect())
}

/// How many tracks `recognise` transcribes a recording as: a stereo call's
/// channels each, a mono call (or stereo whose legs are the same signal) one.
pub fn tracks_of(audio: &Audio) -> usize {
    if audio.channels.len() >= 2 && !same_signal(&audio.channels[0], &audio.channels[1]) {
        audio.channels.len()
    } else {
        1
    }
}

/// The speakers of one recording's transcripts (one per track: a stereo call's
/// channels, or the mono call), and the call's metrics.
fn label_speakers(audio16k: &Audio, mut per: Vec<Transcript>, speakers: &SpeakersConfig) -> (Transcript, CallMetrics) {
    let duration = audio16k.duration_seconds();
    let mut transcript = if per.len() >= 2 {
        let started = Instant::now();
        let mut t = diarize::label_channels(per, &speakers.channel_labels);
        t.diarize_seconds = started.elapsed().as_secs_f64();
        t
    } else {
        let mono = &audio16k.channels[0];
        let mut t = per.remove(0);
        let started = Instant::now();
        match speakers.mono_method {
            Method::Gaps if speakers.max > 1 => diarize::by_gaps(&mut t.segments, speakers.gap_seconds),
            Method::Gaps => t.segments.iter_mut().for_each(|s| s.speaker = Some("speaker_1".into())),
            Method::Cluster => {
                let encoder = voice_encoder(speakers);
                let (min, max) = (speakers.min, speakers.max);
                // The segmentation's speakers are described by CAM++ when it is
                // there, else by the voice encoder.
                let embedder: Option<Arc<dyn diarize::voice::Embedder>> = match embedding_network(speakers) {
                    Some(net) => Some(net),
                    None => encoder.clone().map(|e| e as Arc<dyn diarize::voice::Embedder>),
                };
                match (segmenter(speakers), embedder) {
                    (Some(seg), Some(emb)) if audio16k.sample_rate == 16_000 => {
                        let threshold = emb.link_threshold();
                        diarize::by_segmentation(mono, &mut t.segments, min, max, &seg, emb.as_ref(), threshold)
                    }
                    _ => diarize::by_clustering(
                        mono,
                        audio16k.sample_rate,
                        &mut t.segments,
                        min,
                        max,
                        encoder.as_deref(),
                    ),
                };
            }
        }
        diarize::name_by_opening(&mut t.segments, &speakers.channel_labels);
        t.diarize_seconds = started.elapsed().as_secs_f64();
        t
    };
    transcript.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    let started = Instant::now();
    let metrics = diarize::metrics::compute(&transcript.segments, duration);
    transcript.diarize_seconds += started.elapsed().as_secs_f64();
    (transcript, metrics)
}

/// The configured voice encoder, loaded once per process. One that will not
/// load is reported and the hand-made features describe the voices instead.
fn voice_encoder(speakers: &SpeakersConfig) -> Option<Arc<diarize::voice::VoiceEncoder>> {
    speaker_model(
        speakers.voice_model.as_deref(),
        diarize::voice::shared,
        "the voice encoder did not load; hand-made voice features are used",
    )
}

/// The configured segmentation network, loaded once per process; one that will
/// not load is reported and voice pieces are cut at pauses instead.
fn segmenter(speakers: &SpeakersConfig) -> Option<Arc<diarize::segment::Segmenter>> {
    speaker_model(
        speakers.segmentation_model.as_deref(),
        diarize::segment::shared,
        "the speaker segmentation model did not load; voice pieces are cut at pauses",
    )
}

/// The configured speaker embedding network (CAM++), loaded once per process;
/// one that will not load is reported and the voice encoder is used instead.
fn embedding_network(speakers: &SpeakersConfig) -> Option<Arc<diarize::campplus::CamPlus>> {
    speaker_model(
        speakers.embedding_model.as_deref(),
        diarize::campplus::shared,
        "the speaker embedding model did not load; the voice encoder describes the voices",
    )
}

/// A configured speaker model, or none (reported with `fallback`) when it will not load.
fn speaker_model<T>(
    path: Option<&std::path::Path>,
    load: fn(&std::path::Path) -> Result<Arc<T>, String>,
    fallback: &str,
) -> Option<Arc<T>> {
    load(path?).map_err(|e| tracing::warn!(error = %e, "{fallback}")).ok()
}

/// Two legs carrying the same signal (a mono call saved as stereo).
fn same_signal(a: &[f32], b: &[f32]) -> bool {
    let energy: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().max(1e-12);
    let diff: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    diff / energy < 1e-3
}

impl Pipeline {
    pub fn new(
        storage: Arc<dyn Storage>,
        config: PipelineConfig,
        asr: Option<Arc<Recogniser>>,
        analyzer: Option<Arc<crate::analyze::Analyzer>>,
    ) -> Self {
        Pipeline { storage, config, asr, analyzer, inference: tokio::sync::Mutex::new(()) }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Read the `ai_configs` rows again when they are due (every
    /// [`crate::analyze::TABLE_REFRESH`]); a failed read keeps the rows held and
    /// is tried again a minute later.
    pub async fn refresh_analysis_tiers(&self, queue: &dyn crate::queue::Queue) {
        let Some(analyzer) = self.analyzer.as_deref().filter(|a| a.table_stale()) else { return };
        match queue.analysis_layers().await {
            Ok(rows) => {
                if !rows.is_empty() {
                    tracing::debug!(rows = rows.len(), "analysis tiers read from ai_configs");
                }
                analyzer.set_table(rows);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read ai_configs; keeping the tiers held for a minute");
                analyzer.keep_table();
            }
        }
    }

    /// Why the analysis stage could not run now (its LLM process is down), for
    /// `/readyz`; `None` when it can, or when no LLM process is configured.
    pub async fn llm_problem(&self) -> Option<String> {
        match self.analyzer.as_deref().map(|a| &a.engine) {
            Some(crate::analyze::Engine::Llm(p)) if p.pid().await.is_none() => {
                Some("the LLM process is not running (it is restarted by the next analysis)".into())
            }
            _ => None,
        }
    }

    /// Whose fault a failed download is. Trouble that could be the row's (a
    /// denial, a missing bucket, an outage) is checked against a probe that
    /// involves no row: when the bucket itself cannot be reached or refuses us,
    /// every row would fail the same way, so the fault is the worker's and no
    /// attempt is spent; when the probe succeeds, the failure is this row's.
    async fn classify_fetch_error(&self, e: StorageError) -> StageError {
        // A missing object is probed too: some servers answer NoSuchKey when the
        // whole bucket is missing.
        let row_specific = matches!(e, StorageError::InvalidKey(_) | StorageError::TooLarge { .. });
        let local = matches!(e, StorageError::TempFile(_));
        let mut err = StageError::from(e);
        if local {
            err.worker = true;
            err.transient = true;
        } else if !row_specific {
            if let Err(probe) = self.storage.check().await {
                err.worker = true;
                err.transient = true;
                err.message = format!("{} (the storage itself fails: {probe})", err.message);
            }
        }
        err
    }

    /// Run every stage for `job`, telling `progress` where it is. Dropping the
    /// future abandons the job (the temporary file goes with it, and a running
    /// inference process is killed).
    pub async fn run(
        &self,
        job: &Job,
        progress: &tokio::sync::watch::Sender<Progress>,
    ) -> Result<JobResults, StageError> {
        let enter = |stage: Stage, audio_seconds: Option<f64>| {
            progress.send_modify(|p| {
                p.stage = Some(stage);
                p.audio_seconds = audio_seconds.or(p.audio_seconds);
            })
        };
        enter(Stage::Fetch, None);
        let tmp = tempfile::Builder::new()
            .prefix(&crate::storage::temp_prefix())
            .tempfile_in(&self.config.temp_dir)
            .map_err(|e| StageError {
                stage: Stage::Fetch,
                transient: true,
                worker: true,
                crashed: false,
                message: format!("cannot create a temporary file in {}: {e}", self.config.temp_dir.display()),
            })?;
        let t0 = Instant::now();
        let key = crate::storage::object_key(&job.r2_path, job.r2_bucket.as_deref())?;
        let bytes = match self
            .storage
            .fetch(job.r2_bucket.as_deref(), &key, tmp.path(), self.config.max_download_bytes)
            .await
        {
            Ok(n) => n,
            Err(e) => return Err(self.classify_fetch_error(e).await),
        };
        tracing::debug!(stage = "fetch", bytes, seconds = t0.elapsed().as_secs_f64(), "fetched");

        let t1 = Instant::now();
        let path = tmp.path().to_path_buf();
        // The key's extension, else the app's `file_format` (the upload's extension).
        let ext = extension(&key)
            .or_else(|| job.file_format.as_deref().map(|f| f.trim_start_matches('.').to_ascii_lowercase()));
        let max = self.config.max_duration;
        let mut results = JobResults::default();
        match self.asr.as_deref() {
            Some(Recogniser::Process(child)) => {
                // Decoding and whisper both run in the child: the audio never enters
                // this process, and a native crash in either kills only the child.
                let _cores = self.inference.lock().await;
                let crate::asr::child::Recognised { quality, transcript, metrics, decode_seconds } =
                    child.run(&path, ext.as_deref(), max, job.crashes > 0, &enter).await?;
                results.timings.decode_seconds = decode_seconds;
                tracing::debug!(
                    stage = "transcribe",
                    seconds = t1.elapsed().as_secs_f64(),
                    audio_seconds = quality.duration_seconds,
                    segments = transcript.segments.len(),
                    language = %transcript.language,
                    "decoded and transcribed"
                );
                results.audio = Some(quality);
                results.timings.split_recognition(&transcript);
                results.transcript = Some(transcript);
                results.speaker_metrics = Some(metrics);
                results.timings.transcribe_seconds = t1.elapsed().as_secs_f64();
            }
            other => {
                enter(Stage::Decode, None);
                let (path, ext) = (path.clone(), ext.clone());
                let intake = tokio::task::spawn_blocking(in_span(move || audio::intake(&path, ext.as_deref(), max)))
                    .await
                    .map_err(|e| StageError::new(Stage::Decode, false, format!("decoder crashed: {e}")))??;
                tracing::debug!(
                    stage = "decode",
                    seconds = t1.elapsed().as_secs_f64(),
                    audio_seconds = intake.quality.duration_seconds,
                    channels = intake.quality.channels,
                    "decoded"
                );
                results.audio = Some(intake.quality.clone());
                results.timings.decode_seconds = t1.elapsed().as_secs_f64();
                if let Some(Recogniser::InProcess(engine)) = other {
                    enter(Stage::Transcribe, Some(intake.quality.duration_seconds));
                    let t2 = Instant::now();
                    let abort = Arc::new(AtomicBool::new(false));
                    let _guard = AbortOnDrop(abort.clone());
                    let engine = engine.clone();
                    let speakers = self.config.speakers.clone();
                    let audio16k = intake.audio16k;
                    let careful = job.crashes > 0;
                    let _cores = self.inference.lock().await;
                    let (transcript, metrics) = tokio::task::spawn_blocking(in_span(move || {
                        if careful {
                            // It crashed a worker before: no DTW alignment this time.
                            return recognise(&engine.careful()?, &audio16k, &speakers, &abort);
                        }
                        recognise(&engine, &audio16k, &speakers, &abort)
                    }))
                    .await
                    .map_err(|e| StageError::new(Stage::Transcribe, false, format!("recogniser crashed: {e}")))??;
                    tracing::debug!(
                        stage = "transcribe",
                        seconds = t2.elapsed().as_secs_f64(),
                        segments = transcript.segments.len(),
                        language = %transcript.language,
                        "transcribed"
                    );
                    results.timings.split_recognition(&transcript);
                    results.transcript = Some(transcript);
                    results.speaker_metrics = Some(metrics);
                    results.timings.transcribe_seconds = t1.elapsed().as_secs_f64();
                }
            }
        }
        // The transcript the analysis reads: the redacted one unless configured otherwise.
        let mut raw_for_analysis = None;
        // The transcript is taken out only when redaction is on (and put back redacted).
        let to_redact = match &self.config.redaction {
            Some(cfg) => results.transcript.take().map(|t| (cfg, t)),
            None => None,
        };
        if let Some((cfg, raw)) = to_redact {
            enter(Stage::Redact, None);
            let t4 = Instant::now();
            let padding = cfg.audio.as_ref().map_or(0.0, |a| a.padding_seconds);
            let red = crate::redact::redact_transcript(&raw, cfg.locales, padding);
            let mut outcome = crate::queue::RedactionOutcome {
                raw_text: cfg.keep_raw.then(|| raw.full_text()),
                ..Default::default()
            };
            if let (Some(audio), false) = (&cfg.audio, red.cover.is_empty()) {
                match self.clean_audio(job, &key, tmp.path(), ext.as_deref(), &red.cover, audio).await {
                    Ok((cleaned, covered)) => {
                        outcome.audio_key = Some(cleaned);
                        outcome.covered_seconds = covered;
                        outcome.replace_original = audio.delete_original;
                    }
                    Err(e) => {
                        tracing::warn!(stage = "redact", error = %e, "no cleaned copy of the audio; the original is kept");
                        outcome.audio_error = Some(e);
                    }
                }
            }
            tracing::debug!(
                stage = "redact",
                seconds = t4.elapsed().as_secs_f64(),
                entities = red.items.len(),
                covered_seconds = outcome.covered_seconds,
                "redacted"
            );
            outcome.items = red.items;
            if !cfg.analyze_redacted {
                raw_for_analysis = Some(raw);
            }
            results.transcript = Some(red.transcript);
            results.redaction = Some(outcome);
            results.timings.redact_seconds = t4.elapsed().as_secs_f64();
        }
        drop(tmp);
        if let (Some(analyzer), Some(transcript)) =
            (&self.analyzer, raw_for_analysis.as_ref().or(results.transcript.as_ref()))
        {
            // After whisper is done: the two never share the cores.
            enter(Stage::Analyze, None);
            let t3 = Instant::now();
            let _cores = self.inference.lock().await;
            // A failed analysis never throws the transcript away: the row completes
            // with `analysis_status = failed` and the reason, and `callscribe
            // reanalyze --failed-analysis` runs the analysis again later.
            match analyzer.analyze(transcript, &job.context).await {
                Ok(analysis) => {
                    tracing::debug!(stage = "analyze", seconds = t3.elapsed().as_secs_f64(), engine = %analysis.engine, "analysed");
                    results.analysis = Some(analysis);
                }
                Err(e) => {
                    tracing::warn!(stage = "analyze", error = %e, "analysis failed; the transcript is kept");
                    results.analysis_error = Some(e.to_string());
                }
            }
            results.timings.analyze_seconds = t3.elapsed().as_secs_f64();
        }
        results.timings.fetch_seconds = (t1 - t0).as_secs_f64();
        results.timings.pipeline_seconds = t0.elapsed().as_secs_f64();
        Ok(results)
    }
}

impl Pipeline {
    /// Write the cleaned copy of the downloaded recording at `src` (PII covered
    /// on every channel) and store it beside the original. Returns its key and
    /// the seconds covered, or why it could not be stored.
    async fn clean_audio(
        &self,
        job: &Job,
        key: &str,
        src: &Path,
        ext: Option<&str>,
        cover: &[(f64, f64)],
        audio: &crate::redact::AudioRedaction,
    ) -> Result<(String, f64), String> {
        let cleaned = crate::redact::cleaned_key(&audio.key_pattern, key);
        if cleaned == key {
            return Err(format!("redaction.audio_key makes the cleaned copy's key the original's ({key})"));
        }
        let out = tempfile::Builder::new()
            .prefix(&crate::storage::temp_prefix())
            .suffix(".wav")
            .tempfile_in(&self.config.temp_dir)
            .map_err(|e| format!("cannot create a temporary file in {}: {e}", self.config.temp_dir.display()))?;
        let (src, ext, dest, intervals) =
            (src.to_path_buf(), ext.map(String::from), out.path().to_path_buf(), cover.to_vec());
        let (max, mode) = (self.config.max_duration, audio.cover);
        let written = tokio::task::spawn_blocking(in_span(move || {
            crate::redact::audio::redact_file(&src, ext.as_deref(), max, &intervals, mode, &dest)
        }))
        .await
        .map_err(|e| format!("writing the cleaned copy crashed: {e}"))?
        .map_err(|e| e.to_string())?;
        self.storage
            .put(job.r2_bucket.as_deref(), &cleaned, out.path())
            .await
            .map_err(|e| format!("storing the cleaned copy as {cleaned:?}: {e}"))?;
        Ok((cleaned, written.covered_frames as f64 / written.sample_rate.max(1) as f64))
    }

    /// After the row is committed: delete the original recording when the
    /// cleaned copy replaced it (`redaction.delete_original`). A failure is
    /// logged (the row already points at the cleaned copy).
    pub async fn after_commit(&self, job: &Job, results: &JobResults) {
        let Some(r) = results.redaction.as_ref().filter(|r| r.replace_original && r.audio_key.is_some()) else {
            return;
        };
        let deleted = match crate::storage::object_key(&job.r2_path, job.r2_bucket.as_deref()) {
            Ok(key) => self.storage.delete(job.r2_bucket.as_deref(), &key).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match deleted {
            Ok(()) => tracing::info!(
                cleaned = r.audio_key.as_deref().unwrap_or(""),
                "original recording deleted; the row points at the cleaned copy"
            ),
            Err(e) => tracing::warn!(error = %e, "the original recording could not be deleted: it still holds the PII"),
        }
    }
}

/// `f`, run inside the caller's span (`job_id`, `attempt`) on whatever thread
/// runs it: blocking threads do not inherit the span by themselves.
fn in_span<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let span = tracing::Span::current();
    move || span.in_scope(f)
}

/// The file extension of an object key, as a decoder hint.
fn extension(key: &str) -> Option<String> {
    Path::new(key).extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase())
}
