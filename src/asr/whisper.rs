//! whisper.cpp behind a small safe type. The model is loaded once per process
//! ([`WhisperEngine::load`]); each transcription makes its own state. A running
//! transcription is aborted through whisper.cpp's raw abort callback reading an
//! `AtomicBool` (whisper-rs 0.16's `set_abort_callback_safe` never calls its
//! closure), checked once per encoder pass and decoder step.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters,
};

use super::{cut_repetitions, edges, join_words, romanise, Segment, Transcript, Word};
use crate::audio::resample::TARGET_RATE;
use crate::audio::vad::{self, Window};
use crate::models;

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("whisper model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("transcription aborted")]
    Aborted,
    #[error("whisper failed: {0}")]
    Whisper(String),
    /// The per-job whisper state could not be made (out of memory, a GPU
    /// allocation): the machine's fault, not the recording's.
    #[error("whisper state could not be created: {0}")]
    State(String),
}

/// Recogniser settings (config section `[asr]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AsrConfig {
    pub model: PathBuf,
    pub threads: usize,
    /// `auto` or a language code (`en`, `hi`, `mr`, …).
    pub language: String,
    /// Candidates for detection: the most probable of these is taken (empty: any).
    pub languages: Vec<String>,
    /// 1 = greedy; more = beam search with this width.
    pub beam_size: usize,
    /// Retry a window at higher temperature when its output looks like a loop
    /// or has a low probability (whisper's temperature fallback).
    pub temperature_fallback: bool,
    pub initial_prompt: String,
    /// Brand names, loan terms, place names: given to whisper as a prompt.
    pub hot_words: Vec<String>,
    /// Segments whose no-speech probability is above this are dropped.
    pub no_speech_threshold: f64,
    /// A window whose mean token log probability is under this is decoded again
    /// at the next temperature (with `temperature_fallback`); when every
    /// temperature falls short, the attempt with the highest mean is kept, as
    /// faster-whisper keeps it (vendor/whisper-rs-sys/PATCHES.md, change 8).
    pub logprob_threshold: f64,
    /// Keep a phrase at most this many times in a row.
    pub max_repeats: usize,
    /// Longest window handed to whisper at once, seconds (≤ 30).
    pub window_seconds: f64,
    pub use_gpu: bool,
    /// Shrink the encoder's context to a short window's length instead of a
    /// padded 30 s (whisper was trained on 30 s contexts: a doubtful result is
    /// decoded again at 30 s).
    pub fit_audio_ctx: bool,
    /// Windows of at most this many seconds are fitted; longer ones save little
    /// and their word alignment suffered in `benches/word_edges.py`.
    pub fit_max_seconds: f64,
    /// Decode and transcribe in a supervised child process (the worker's default).
    pub isolate: bool,
    /// Token times from cross-attention alignment (DTW) where the model has a
    /// preset. Off for the careful retry of a recording that crashed whisper:
    /// whisper.cpp's DTW aborts the process on some inputs (a segment under
    /// 0.16 s, e.g. noise), and its own timestamp tokens need no alignment.
    pub dtw: bool,
    /// Move word edges onto the signal's pauses and onsets (`edges::refine`).
    pub refine_edges: bool,
    /// Write Devanagari (Hindi, Marathi) in Latin letters (`romanise`).
    pub romanise: bool,
    /// whisper.cpp's flash attention. It rules out DTW: word edges then come from
    /// whisper's timestamp tokens (and `refine_edges`).
    pub flash_attn: bool,
    /// Decode windows two at a time, each with half the threads, when the work
    /// splits (`schedule`): on a CPU and on a GPU alike.
    pub parallel_windows: bool,
}

impl Default for AsrConfig {
    fn default() -> Self {
        AsrConfig {
            model: PathBuf::from("models/ggml-base.bin"),
            threads: crate::config::all_cores(),
            language: "auto".into(),
            languages: Vec::new(),
            beam_size: 1,
            temperature_fallback: true,
            initial_prompt: String::new(),
            hot_words: Vec::new(),
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            max_repeats: 3,
            window_seconds: 28.0,
            use_gpu: cfg!(feature = "cuda"),
            fit_audio_ctx: true,
            fit_max_seconds: 10.0,
            isolate: true,
            dtw: true,
            refine_edges: true,
            romanise: false,
            flash_attn: false,
            parallel_windows: true,
        }
    }
}

/// Untranscribed seconds after whisper's last segment in a window above which
/// the rest of the window is decoded again on its own.
const TAIL_RETRY_SECONDS: f64 = 2.0;
/// Silence after each window's speech, so that whisper's last seek never leaves
/// a stretch too short for its DTW alignment (see `transcribe`).
const TAIL_PAD_SECONDS: f64 = 0.3;

/// Primes whisper to write Hindi and Marathi in Devanagari.
const DEVANAGARI_PROMPT: &str = "नमस्ते, मैं आपसे बात कर रहा हूँ।";

/// Called after each window: (the track's place in `transcribe_tracks`' tracks, 0
/// for `transcribe`; seconds of it done; its length in seconds).
pub type Progress = std::sync::Arc<dyn Fn(usize, f64, f64) + Send + Sync>;

/// A loaded whisper model, shared by every job of the process.
pub struct WhisperEngine {
    ctx: WhisperContext,
    config: AsrConfig,
    name: String,
    multilingual: bool,
    progress: std::sync::Mutex<Option<Progress>>,
}

unsafe extern "C" fn abort_when_set(user_data: *mut c_void) -> bool {
    // SAFETY: user_data points at an AtomicBool that outlives the `full` call
    // (see `transcribe_window`).
    let flag = unsafe { &*(user_data as *const AtomicBool) };
    flag.load(Ordering::Relaxed)
}

impl WhisperEngine {
    pub fn load(config: AsrConfig) -> Result<WhisperEngine, AsrError> {
        whisper_rs::install_logging_hooks();
        let path = config.model.clone();
        let model_err = |reason: String| AsrError::Model { path: path.display().to_string(), reason };
        if !path.exists() {
            return Err(model_err(
                "file not found: run scripts/fetch-models.sh, or `callscribe models import-ct2 DIR OUT.bin`, or set asr.model".into(),
            ));
        }
        let hp = models::read_ggml_header(&path).ok_or_else(|| model_err("not a whisper.cpp ggml model".into()))?;
        let kind = models::InstalledModel { path: path.clone(), bytes: 0, hparams: hp.clone() }.kind();
        if !hp.multilingual() {
            let asked = std::iter::once(&config.language).chain(&config.languages).find(|l| *l != "auto" && *l != "en");
            if let Some(code) = asked {
                return Err(model_err(format!(
                    "is English-only ({kind}) and cannot transcribe `{code}`: use a multilingual model \
                     (scripts/fetch-models.sh makes models/ggml-base.bin) or set asr.language = \"en\""
                )));
            }
        }
        let preset = match kind.as_str() {
            "tiny.en" => Some(DtwModelPreset::TinyEn),
            "tiny" => Some(DtwModelPreset::Tiny),
            "base.en" => Some(DtwModelPreset::BaseEn),
            "base" => Some(DtwModelPreset::Base),
            "small.en" => Some(DtwModelPreset::SmallEn),
            "small" => Some(DtwModelPreset::Small),
            "medium.en" => Some(DtwModelPreset::MediumEn),
            "medium" => Some(DtwModelPreset::Medium),
            _ => None,
        };
        let mut params = WhisperContextParameters::default();
        params.use_gpu(config.use_gpu);
        params.flash_attn(config.flash_attn);
        if let Some(model_preset) = preset.filter(|_| config.dtw && !config.flash_attn) {
            // Token times from cross-attention alignment (DTW) where the model has a preset.
            params.dtw_parameters(DtwParameters { mode: DtwMode::ModelPreset { model_preset }, ..Default::default() });
        }
        let ctx = WhisperContext::new_with_params(&path, params)
            .map_err(|e| model_err(format!("whisper.cpp could not load it: {e}")))?;
        let file = path.file_stem().and_then(|s| s.to_str()).unwrap_or("whisper");
        Ok(WhisperEngine {
            ctx,
            name: format!("whisper.cpp:{file} ({kind})"),
            multilingual: hp.multilingual(),
            config,
            progress: Default::default(),
        })
    }

    pub fn model_name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &AsrConfig {
        &self.config
    }

    /// Report progress through a long recording (`transcribe` on a terminal).
    pub fn set_progress(&self, progress: Option<Progress>) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = progress;
    }

    /// The same model without DTW alignment, for a recording that crashed the
    /// process before (loaded per use: whisper.cpp keeps DTW per context).
    pub fn careful(&self) -> Result<WhisperEngine, AsrError> {
        WhisperEngine::load(AsrConfig { dtw: false, ..self.config.clone() })
    }

    /// Transcribe one channel of 16 kHz audio. Silence is skipped: the voiced
    /// regions are packed end to end into windows of at most `window_seconds`
    /// (fewer encoder passes, and no silence for whisper to hallucinate in), and
    /// times are mapped back to the recording.
    pub fn transcribe(&self, samples: &[f32], channel: usize, abort: &AtomicBool) -> Result<Transcript, AsrError> {
        let mut out = self.transcribe_tracks(&[Track { samples, channel }], abort)?;
        Ok(out.remove(0))
    }

    /// Transcribe several tracks (the channels of a stereo call, or several
    /// recordings) as `transcribe` does each, with the windows of all of them in
    /// one queue: two threads take windows from it whichever track they belong
    /// to, so short tracks keep both cores busy too (`schedule`). The transcripts
    /// come back in the order of `tracks`; the wall time is shared out among them
    /// by their length.
    pub fn transcribe_tracks(&self, tracks: &[Track<'_>], abort: &AtomicBool) -> Result<Vec<Transcript>, AsrError> {
        let t0 = Instant::now();
        let rate = TARGET_RATE;
        let mut state = self.ctx.create_state().map_err(|e| AsrError::State(e.to_string()))?;
        let mut outs = Vec::with_capacity(tracks.len());
        let mut runs = Vec::with_capacity(tracks.len());
        // Every track's windows, and which track and packed window each is.
        let (mut windows, mut owners) = (Vec::new(), Vec::new());
        for (t, track) in tracks.iter().enumerate() {
            let started = Instant::now();
            let regions = vad::speech_regions(track.samples, rate, 0.5);
            let packed = vad::pack(track.samples, rate, &regions, self.config.window_seconds.min(29.5));
            let vad_seconds = started.elapsed().as_secs_f64();
            let (language, language_probability) =
                self.detect_language(&mut state, track.samples, packed.first(), abort)?;
            tracing::debug!(
                track = t,
                windows = packed.len(),
                regions = regions.len(),
                window_seconds = ?packed.iter().map(|w| (w.duration() * 10.0).round() / 10.0).collect::<Vec<_>>(),
                "packed a track"
            );
            outs.push(Transcript {
                language: language.clone(),
                language_probability,
                model: self.name.clone(),
                vad_seconds,
                ..Default::default()
            });
            runs.push(Run {
                samples: track.samples,
                channel: track.channel,
                language,
                abort,
                tails_left: std::sync::atomic::AtomicUsize::new(packed.len()),
                done: std::sync::Mutex::new(0.0),
            });
            owners.extend((0..packed.len()).map(|i| (t, i)));
            windows.extend(packed);
        }
        // Two threads (one state and half the threads each) when the work
        // splits; a thread that runs out of windows lends its threads to the
        // other's window (see `schedule`).
        let (order, two) = schedule(&windows, |w| self.fitted(w), self.decodes_two_at_a_time());
        let queue = std::sync::Mutex::new(
            order
                .into_iter()
                .map(|i| Job { run: owners[i].0, key: (owners[i].1, 0), window: windows[i].clone() })
                .collect::<VecDeque<_>>(),
        );
        let batch = Batch { runs, abort, stop: AtomicBool::new(false) };
        let mut decoded: Vec<Decoded> = Vec::new();
        if two {
            let (first_threads, second_threads) = (self.config.threads.div_ceil(2), self.config.threads / 2);
            let live = [AtomicI32::new(first_threads as i32), AtomicI32::new(second_threads as i32)];
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| {
                    let out = match self.ctx.create_state() {
                        Ok(mut state) => self.drain(&mut state, &batch, &queue, &live[1]),
                        // No memory for a second state: the first thread decodes them all.
                        Err(e) => {
                            tracing::warn!(error = %e, "no second whisper state; decoding windows one at a time");
                            Ok(Vec::new())
                        }
                    };
                    live[0].fetch_add(live[1].load(Ordering::Relaxed), Ordering::Relaxed);
                    out
                });
                let first = self.drain(&mut state, &batch, &queue, &live[0]);
                live[1].fetch_add(live[0].load(Ordering::Relaxed), Ordering::Relaxed);
                let second =
                    second.join().unwrap_or_else(|_| Err(AsrError::Whisper("a transcription thread panicked".into())));
                (first, second)
            });
            decoded.extend(first?);
            decoded.extend(second?);
        } else {
            let live = AtomicI32::new(self.config.threads as i32);
            decoded.extend(self.drain(&mut state, &batch, &queue, &live)?);
        }
        // Back in time order: each track's windows as packed, each followed by its tail.
        decoded.sort_by_key(|d| (d.run, d.key));
        for d in decoded {
            let out = &mut outs[d.run];
            out.dropped_no_speech += d.dropped_no_speech;
            out.full_context_retries += usize::from(d.full_context_retry);
            out.segments.extend(d.segments);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let audio: usize = tracks.iter().map(|t| t.samples.len()).sum();
        for (out, track) in outs.iter_mut().zip(tracks) {
            out.repetitions_cut = cut_repetitions(&mut out.segments, self.config.max_repeats);
            if self.config.refine_edges {
                edges::refine(&mut out.segments, track.samples, rate);
            }
            if self.config.romanise {
                for s in &mut out.segments {
                    s.text = romanise::romanise(&s.text);
                    for w in &mut s.words {
                        w.word = romanise::romanise(&w.word);
                    }
                }
            }
            out.processing_seconds = elapsed * track.samples.len() as f64 / audio.max(1) as f64;
        }
        Ok(outs)
    }

    /// Fixed language, or whisper's own detection on the first window (up to
    /// 30 s of speech; one extra encoder pass). Detection never aborts a job: a low
    /// probability is stored as it is.
    fn detect_language(
        &self,
        state: &mut whisper_rs::WhisperState,
        samples: &[f32],
        first: Option<&Window>,
        abort: &AtomicBool,
    ) -> Result<(String, f64), AsrError> {
        if !self.multilingual {
            return Ok(("en".into(), 1.0));
        }
        if self.config.language != "auto" {
            return Ok((self.config.language.clone(), 1.0));
        }
        if let [only] = self.config.languages.as_slice() {
            return Ok((only.clone(), 1.0));
        }
        if abort.load(Ordering::Relaxed) {
            return Err(AsrError::Aborted);
        }
        let speech = first.map(|w| w.samples(samples, TARGET_RATE)).unwrap_or_default();
        if speech.is_empty() {
            return Ok(("en".into(), 0.0));
        }
        state.pcm_to_mel(&speech, self.config.threads).map_err(|e| AsrError::Whisper(e.to_string()))?;
        let (id, probs) = state.lang_detect(0, self.config.threads).map_err(|e| AsrError::Whisper(e.to_string()))?;
        Ok(pick_language(id, &probs, &self.config.languages))
    }

    /// Whether a window is encoded at its own length (`asr.fit_audio_ctx`).
    fn fitted(&self, w: &Window) -> bool {
        self.config.fit_audio_ctx && w.duration() <= self.config.fit_max_seconds
    }

    /// Whether windows may be decoded two at a time (`asr.parallel_windows`, with
    /// two threads or more; `schedule` decides per call). On a GPU too: there a
    /// window's decoder steps are small kernels launched one after another, and a
    /// second state's windows fill the gaps (benches/gpu: a 303 s call on an H100
    /// took 3.1 s with two states against 5.3 s with one, the same words).
    pub fn decodes_two_at_a_time(&self) -> bool {
        self.config.parallel_windows && self.config.threads >= 2
    }

    /// Decode windows from `queue` until it is empty (or the run stops), with
    /// the threads `live` holds as each encoder and decoder pass starts (the
    /// other thread adds its own when it runs out of windows). The rest of a
    /// window whisper stopped early on goes back to the front of `queue`.
    fn drain(
        &self,
        state: &mut whisper_rs::WhisperState,
        batch: &Batch<'_>,
        queue: &std::sync::Mutex<VecDeque<Job>>,
        live: &AtomicI32,
    ) -> Result<Vec<Decoded>, AsrError> {
        let _live = LiveThreads::point_at(live);
        let mut out = Vec::new();
        loop {
            if batch.abort.load(Ordering::Relaxed) {
                return Err(AsrError::Aborted);
            }
            if batch.stop.load(Ordering::Relaxed) {
                return Ok(out);
            }
            let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                return Ok(out);
            };
            let threads = live.load(Ordering::Relaxed).max(1) as usize;
            let t0 = Instant::now();
            let run = &batch.runs[job.run];
            let mut d = match self.decode_window(state, run, &job.window, threads) {
                Ok(d) => {
                    tracing::debug!(
                        seconds = job.window.duration(),
                        threads,
                        threads_at_end = live.load(Ordering::Relaxed),
                        took = t0.elapsed().as_secs_f64(),
                        "decoded a window"
                    );
                    d
                }
                Err(e) => {
                    batch.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            if let Some(tail) = d.tail.take() {
                queue.lock().unwrap_or_else(|e| e.into_inner()).push_front(Job {
                    run: job.run,
                    key: (job.key.0, job.key.1 + 1),
                    window: tail,
                });
            }
            let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let (Some(report), Some(last)) = (progress, job.window.pieces.last()) {
                let mut done = run.done.lock().unwrap_or_else(|e| e.into_inner());
                *done = done.max(last.source + last.len);
                report(job.run, *done, run.samples.len() as f64 / TARGET_RATE as f64);
            }
            (d.run, d.key) = (job.run, job.key);
            out.push(d);
        }
    }

    /// One window: decoded, retried at 30 s when a fitted context gave doubtful
    /// text, its segments' channel set and silence dropped.
    fn decode_window(
        &self,
        state: &mut whisper_rs::WhisperState,
        run: &Run<'_>,
        w: &Window,
        threads: usize,
    ) -> Result<Decoded, AsrError> {
        let rate = TARGET_RATE;
        let mut out = Decoded::default();
        let mut pcm = w.samples(run.samples, rate);
        if pcm.len() <= rate as usize / 10 {
            return Ok(out);
        }
        // whisper.cpp's DTW asserts when a decoded stretch spans under 0.16 s
        // (its median filter is 7 audio tokens wide), and it warns on input
        // under a second: a short window is padded with silence to one second,
        // and times are kept inside the real audio. After its last timestamp
        // whisper decodes the rest of the window on its own, and a real AMI
        // recording crashed with 0.14 s left there: every window also gets
        // `TAIL_PAD_SECONDS` of silence after its speech (windows are at most
        // 29.5 s, so this never adds an encoder pass). The child process's
        // careful retry without DTW stays the backstop.
        let padded = pcm.len() + (TAIL_PAD_SECONDS * rate as f64) as usize;
        pcm.resize(padded.clamp(rate as usize, 30 * rate as usize), 0.0);
        let fit = self.fitted(w);
        let (mut segs, mut covered) = self.transcribe_window(state, run, &pcm, w, fit, threads)?;
        if fit && suspect(&segs, &self.config) {
            // A shortened encoder context can lose speech whisper finds in its
            // trained 30 s context (measured: an espeak-ng Hindi call came out
            // empty with base) or fall into a loop: such a window is decoded
            // again at 30 s.
            tracing::debug!(seconds = w.duration(), "doubtful text with a fitted context; decoding at 30 s");
            out.full_context_retry = true;
            (segs, covered) = self.transcribe_window(state, run, &pcm, w, false, threads)?;
        }
        // whisper.cpp takes a window's last text without a closing timestamp
        // as the end of the window and skips what follows: measured, 18 s of
        // a list of words lost after "office Ram". The rest is decoded again
        // on its own (at most once per packed window, counted over the
        // channel), as faster-whisper seeks.
        if covered > 0.0 && w.duration() - covered > TAIL_RETRY_SECONDS {
            let budget = run.tails_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            if budget.is_ok() {
                out.tail = w.tail(covered);
                if let Some(tail) = &out.tail {
                    tracing::debug!(from = covered, seconds = tail.duration(), "decoding the rest of a window again");
                }
            }
        }
        for mut s in segs {
            s.channel = run.channel;
            if silence(&s, self.config.no_speech_threshold) {
                out.dropped_no_speech += 1;
            } else if !s.text.trim().is_empty() {
                out.segments.push(s);
            }
        }
        Ok(out)
    }

    /// One window's segments (their channel is set by `decode_window`) and how far
    /// into the window its text reaches.
    fn transcribe_window(
        &self,
        state: &mut whisper_rs::WhisperState,
        run: &Run<'_>,
        pcm: &[f32],
        window: &Window,
        fit_audio_ctx: bool,
        threads: usize,
    ) -> Result<(Vec<Segment>, f64), AsrError> {
        let (language, abort) = (run.language.as_str(), run.abort);
        let strategy = if self.config.beam_size > 1 {
            SamplingStrategy::BeamSearch { beam_size: self.config.beam_size as i32, patience: -1.0 }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut p = FullParams::new(strategy);
        p.set_n_threads(threads as i32);
        p.set_language(Some(language));
        p.set_translate(false);
        p.set_no_context(true);
        p.set_token_timestamps(true);
        p.set_print_special(false);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        p.set_suppress_blank(true);
        p.set_temperature(0.0);
        p.set_temperature_inc(if self.config.temperature_fallback { 0.2 } else { 0.0 });
        p.set_no_speech_thold(self.config.no_speech_threshold as f32);
        p.set_logprob_thold(self.config.logprob_threshold as f32);
        p.set_audio_ctx(encoder_context(pcm.len(), fit_audio_ctx));
        let mut prompt = prompt_text(&self.config.initial_prompt, &self.config.hot_words);
        if matches!(language, "hi" | "mr" | "ne") && !romanise::has_devanagari(&prompt) {
            // Measured on espeak-ng Hindi with base: without a Devanagari prompt
            // whisper wrote Urdu and Tamil script for `hi`; with one, Devanagari.
            prompt = format!("{DEVANAGARI_PROMPT} {prompt}").trim().to_string();
        }
        if !prompt.is_empty() {
            p.set_initial_prompt(&prompt);
        }
        // SAFETY: the callback only reads the AtomicBool behind `abort`, which
        // lives for the whole `full` call below; whisper.cpp does not keep it after.
        unsafe {
            p.set_abort_callback(Some(abort_when_set));
            p.set_abort_callback_user_data(abort as *const AtomicBool as *mut c_void);
        }
        if let Err(e) = state.full(p, pcm) {
            if abort.load(Ordering::Relaxed) {
                return Err(AsrError::Aborted);
            }
            return Err(AsrError::Whisper(e.to_string()));
        }
        if abort.load(Ordering::Relaxed) {
            return Err(AsrError::Aborted);
        }
        let eot = self.ctx.token_eot();
        // The window's real audio (a short one is padded with silence).
        let len = window.duration().min(pcm.len() as f64 / 16_000.0);
        // Whisper's centiseconds to seconds in the window.
        let secs = |cs: i64| (cs as f64 / 100.0).clamp(0.0, len);
        let mut out = Vec::new();
        // How far into the window whisper's segments reach.
        let mut covered = 0.0f64;
        // The DTW stamp of the window's previous text token (see `edges`): where
        // the current token starts.
        let mut previous_stamp: Option<f64> = None;
        for seg in state.as_iter() {
            let (s0, s1) = (secs(seg.start_timestamp()), secs(seg.end_timestamp()));
            let s1 = s1.max(s0);
            // Words in window time, and their bytes as whisper wrote them.
            let mut words: Vec<Word> = Vec::new();
            let mut word_bytes: Vec<Vec<u8>> = Vec::new();
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else { continue };
                let data = tok.token_data();
                if data.id >= eot {
                    continue; // special and timestamp tokens
                }
                let (start, end) = if data.t_dtw >= 0 {
                    let stamp = secs(data.t_dtw);
                    let span = edges::token_span(previous_stamp, s0, stamp);
                    previous_stamp = Some(stamp);
                    span
                } else {
                    (secs(data.t0), secs(data.t1))
                };
                // Bytes, not text: a Devanagari letter is often split over two
                // tokens, and decoding each token on its own garbles it.
                let piece = tok.to_bytes().map(<[u8]>::to_vec).unwrap_or_default();
                if piece.is_empty() {
                    continue;
                }
                let starts_word = piece[0] == b' ' || words.is_empty();
                if starts_word {
                    words.push(Word { word: String::new(), start, end, probability: data.p as f64 });
                    word_bytes.push(piece);
                } else if let (Some(w), Some(b)) = (words.last_mut(), word_bytes.last_mut()) {
                    b.extend_from_slice(&piece);
                    w.end = w.end.max(end);
                    w.probability = w.probability.min(data.p as f64);
                }
            }
            for (w, b) in words.iter_mut().zip(&word_bytes) {
                w.word = String::from_utf8_lossy(b).into_owned();
            }
            // How far the text reaches: its last word's end (whisper's segment
            // end may claim the rest of the window for a word or two).
            covered = covered.max(words.last().map_or(s1, |w| w.end));
            // Words in order, never overlapping (the segment is made to span
            // them after `edges::refine`).
            let mut lo = 0.0f64;
            for w in &mut words {
                w.start = w.start.max(lo);
                w.end = w.end.max(w.start);
                lo = w.end;
            }
            let no_speech_probability = seg.no_speech_probability() as f64;
            if words.is_empty() {
                let text = seg.to_str_lossy().map(|c| c.trim().to_string()).unwrap_or_default();
                let (start, end) = (window.to_recording(s0, false), window.to_recording(s1, true));
                out.push(Segment {
                    start,
                    end: end.max(start),
                    text,
                    words,
                    confidence: 0.0,
                    no_speech_probability,
                    speaker: None,
                    channel: 0,
                });
                continue;
            }
            // A segment whose words lie in several pieces of the window is split at
            // the seams: the pause taken out between two pieces is where a turn may
            // change, and no segment may span it.
            let groups = split_at_seams(words, |w| window.piece_index((w.start + w.end) / 2.0, false));
            let last = groups.len() - 1;
            for (g, (piece, mut words)) in groups.into_iter().enumerate() {
                let piece = window.pieces.get(piece).copied().unwrap_or_default();
                let start = if g == 0 { s0.min(words[0].start) } else { words[0].start };
                let end = words.iter().map(|w| w.end).fold(if g == last { s1 } else { start }, f64::max);
                for w in &mut words {
                    w.start = piece.to_recording(w.start);
                    w.end = piece.to_recording(w.end);
                }
                let confidence = words.iter().map(|w| w.probability).sum::<f64>() / words.len() as f64;
                out.push(Segment {
                    start: piece.to_recording(start),
                    end: piece.to_recording(end),
                    text: join_words(&words),
                    words,
                    confidence,
                    no_speech_probability,
                    speaker: None,
                    channel: 0,
                });
            }
        }
        Ok((out, covered))
    }
}

/// One stretch of 16 kHz audio to transcribe, and the channel its segments are
/// labelled with.
#[derive(Clone, Copy)]
pub struct Track<'a> {
    pub samples: &'a [f32],
    pub channel: usize,
}

/// What the windows of one track share while they are decoded.
struct Run<'a> {
    samples: &'a [f32],
    channel: usize,
    language: String,
    abort: &'a AtomicBool,
    /// Rests of windows still allowed to be decoded again (one per packed window).
    tails_left: std::sync::atomic::AtomicUsize,
    /// Seconds of the recording done, for the progress report.
    done: std::sync::Mutex<f64>,
}

/// The tracks' runs, and what all their windows share.
struct Batch<'a> {
    runs: Vec<Run<'a>>,
    abort: &'a AtomicBool,
    /// Set when a window failed: the other thread takes no further window.
    stop: AtomicBool,
}

/// A window to decode: of `runs[run]`; `key` orders the results: (packed window,
/// tail number).
struct Job {
    run: usize,
    key: (usize, usize),
    window: Window,
}

/// One window's result.
#[derive(Default)]
struct Decoded {
    /// The job's `run` and `key`.
    run: usize,
    key: (usize, usize),
    segments: Vec<Segment>,
    dropped_no_speech: usize,
    full_context_retry: bool,
    /// What follows the window's last text, when whisper skipped it.
    tail: Option<Window>,
}

/// The order windows are decoded in (indices into `windows`), and whether two
/// threads decode them. On a CPU two threads on one window spend part of their
/// time waiting for each other (ggml's barrier after every operation, rows that
/// split unevenly), and windows do not depend on each other (no text is carried
/// from one to the next): so two threads take windows from one queue, each with
/// its own whisper state and half the threads, when the work splits into two
/// halves, that is when no window is more than half of it. A full window costs
/// whisper's 1500-frame encoder pass whatever its length (30 s), a fitted one
/// its own length. Full windows go first, in time order, then the fitted ones,
/// longest first, so that what is left at the end is short. A thread that finds
/// the queue empty lends its threads to the window the other is still decoding
/// (`LiveThreads`), so no core waits for a slow partner. One full window and a
/// short one stay on one thread after the other: lent threads join the other's
/// window only at its next pass, and the full window's encoder pass is one
/// (measured on a Zen 3 EPYC: 3.2 s in two threads against 2.5 s).
fn schedule(windows: &[Window], fitted: impl Fn(&Window) -> bool, parallel: bool) -> (Vec<usize>, bool) {
    let all: Vec<usize> = (0..windows.len()).collect();
    let short = |w: &Window| fitted(w) || w.duration() <= 0.1;
    let cost = |w: &Window| if short(w) { w.duration() } else { 30.0 };
    let total: f64 = windows.iter().map(cost).sum();
    let largest = windows.iter().map(cost).fold(0.0, f64::max);
    if !parallel || windows.len() < 2 || largest > total / 2.0 {
        return (all, false);
    }
    let mut order = all;
    // Stable: full windows in time order, then the rest longest first.
    order.sort_by(|&a, &b| {
        let key = |i: usize| (short(&windows[i]), -windows[i].duration());
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(if ka.0 { ka.1.total_cmp(&kb.1) } else { std::cmp::Ordering::Equal })
    });
    (order, true)
}

/// Points this thread's whisper.cpp calls at a thread count that another
/// thread may raise while a window is decoded (vendor/whisper-rs-sys/PATCHES.md,
/// change 9), until dropped.
struct LiveThreads<'a>(std::marker::PhantomData<&'a AtomicI32>);

impl<'a> LiveThreads<'a> {
    fn point_at(live: &'a AtomicI32) -> LiveThreads<'a> {
        // SAFETY: whisper.cpp keeps the pointer in a thread-local and reads it
        // with an atomic load, on this thread only, during the `full` calls made
        // while the guard lives; the guard borrows `live` and clears the pointer
        // when dropped.
        unsafe { whisper_rs::whisper_rs_sys::whisper_set_live_threads(live.as_ptr()) };
        LiveThreads(std::marker::PhantomData)
    }
}

impl Drop for LiveThreads<'_> {
    fn drop(&mut self) {
        // SAFETY: clears this thread's pointer; whisper.cpp then uses the
        // threads of its parameters again.
        unsafe { whisper_rs::whisper_rs_sys::whisper_set_live_threads(std::ptr::null()) };
    }
}

/// The detected language and its probability. With candidates, the most
/// probable of them, its probability renormalised over the candidates (how sure
/// whisper is among the languages the call centre serves).
fn pick_language(best: i32, probs: &[f32], candidates: &[String]) -> (String, f64) {
    let p = |id: i32| probs.get(id as usize).copied().unwrap_or(0.0) as f64;
    let ids: Vec<(String, i32)> =
        candidates.iter().filter_map(|c| whisper_rs::get_lang_id(c).map(|id| (c.clone(), id))).collect();
    if ids.is_empty() {
        return (whisper_rs::get_lang_str(best).unwrap_or("en").to_string(), p(best));
    }
    let total: f64 = ids.iter().map(|(_, id)| p(*id)).sum();
    let (code, id) = ids.iter().max_by(|a, b| p(a.1).total_cmp(&p(b.1))).cloned().unwrap_or(("en".into(), 0));
    (code, if total > 0.0 { p(id) / total } else { 1.0 / ids.len() as f64 })
}

/// Whether whisper calls a segment silence and its words agree (dropped).
fn silence(segment: &Segment, no_speech_threshold: f64) -> bool {
    segment.no_speech_probability > no_speech_threshold && segment.confidence < 0.5
}

/// Mean word probability under which a window decoded with a fitted context is
/// decoded again at 30 s.
const FIT_MIN_CONFIDENCE: f64 = 0.4;

/// Whether a window decoded with a fitted encoder context looks like one of that
/// shortcut's known failures: no text the transcript would keep, a repetition
/// loop, or words whisper itself doubts.
fn suspect(segments: &[Segment], config: &AsrConfig) -> bool {
    let mut kept: Vec<Segment> = segments
        .iter()
        .filter(|s| !s.text.trim().is_empty() && !silence(s, config.no_speech_threshold))
        .cloned()
        .collect();
    let words: Vec<f64> = kept.iter().flat_map(|s| s.words.iter().map(|w| w.probability)).collect();
    if words.is_empty() {
        return true;
    }
    let confidence = words.iter().sum::<f64>() / words.len() as f64;
    confidence < FIT_MIN_CONFIDENCE || cut_repetitions(&mut kept, config.max_repeats) > 0
}

/// Consecutive words grouped by the piece `piece_of` puts them in.
fn split_at_seams(words: Vec<Word>, piece_of: impl Fn(&Word) -> usize) -> Vec<(usize, Vec<Word>)> {
    let mut groups: Vec<(usize, Vec<Word>)> = Vec::new();
    for w in words {
        let p = piece_of(&w);
        match groups.last_mut() {
            Some((q, ws)) if *q == p => ws.push(w),
            _ => groups.push((p, vec![w])),
        }
    }
    groups
}

/// Encoder frames for a window of `samples` at 16 kHz (50 frames a second).
///
/// A full window keeps whisper's trained 1500 frames. A fitted window
/// (`asr.fit_audio_ctx`) encodes its own length plus a 64-frame margin, rounded
/// up to a multiple of 16: ggml's tiled matrix products (llamafile's tinyBLAS,
/// built in through `.cargo/config.toml`) take the attention's weighted sum over
/// frames only when that length is a multiple of their 16 lanes. 1488 frames
/// for a full window as well was measured 12–29 % faster on the long bench call
/// with the same words, but it moved whisper's alignment on isolated words
/// (`tests/word_edges.rs`: 94 % → 76 % of words with both edges within 200 ms
/// with tiny.en; base recognised fewer of the bench's words), so full windows
/// stay at 1500.
fn encoder_context(samples: usize, fit: bool) -> i32 {
    const FULL: i32 = 1500;
    const QUANTUM: i32 = 16;
    if !fit {
        return FULL;
    }
    let frames = i32::try_from(samples.div_ceil(320)).unwrap_or(i32::MAX - 80) + 64;
    let rounded = (frames + QUANTUM - 1) / QUANTUM * QUANTUM;
    if rounded > FULL / QUANTUM * QUANTUM {
        FULL
    } else {
        rounded
    }
}

/// The prompt given to whisper: the configured prompt, then the hot words.
fn prompt_text(initial: &str, hot_words: &[String]) -> String {
    let mut p = initial.trim().to_string();
    if !hot_words.is_empty() {
        if !p.is_empty() {
            p.push(' ');
        }
        p.push_str(&hot_words.join(", "));
        p.push('.');
    }
    p
}

/// Whether `path` looks like a loadable model (for `doctor`).
pub fn check_model(path: &Path) -> Result<models::HParams, String> {
    if !path.exists() {
        return Err(format!("{}: not found", path.display()));
    }
    models::read_ggml_header(path).ok_or_else(|| format!("{}: not a whisper.cpp ggml model", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoder_context_is_a_multiple_of_16_that_holds_the_window() {
        assert_eq!(encoder_context(16_000 * 30, false), 1500);
        assert_eq!(encoder_context(16_000, false), 1500);
        assert_eq!(encoder_context(16_000 * 30, true), 1500);
        for tenths in 1..=284 {
            let samples = 1_600 * tenths;
            let c = encoder_context(samples, true);
            assert_eq!(c % 16, 0, "{tenths}");
            let needed = samples.div_ceil(320) as i32 + 64;
            assert!(c >= needed && c < needed + 16, "{tenths}: {c}");
        }
    }

    use super::*;

    fn windows(seconds: &[f64]) -> Vec<Window> {
        let mut source = 0.0;
        seconds
            .iter()
            .map(|&len| {
                source += len + 1.0;
                Window { pieces: vec![crate::audio::vad::Piece { at: 0.0, source, len }] }
            })
            .collect()
    }

    #[test]
    fn full_windows_go_first_and_two_threads_take_windows_when_the_work_splits() {
        let fitted = |w: &Window| w.duration() <= 10.0;
        // The real bench call's six windows: five full, one fitted (last).
        let order = schedule(&windows(&[26.6, 27.2, 27.2, 27.2, 27.1, 9.0]), fitted, true);
        assert_eq!(order, (vec![0, 1, 2, 3, 4, 5], true));
        // Fitted windows (and tails under 0.1 s) after the full ones, longest first.
        let order = schedule(&windows(&[5.0, 27.0, 0.05, 8.0, 28.0]), fitted, true);
        assert_eq!(order, (vec![1, 4, 3, 0, 2], true));
        // One full window and less beside it, or one short window that is most of the work: one thread.
        assert_eq!(schedule(&windows(&[4.0, 27.0]), fitted, true), (vec![0, 1], false));
        assert_eq!(schedule(&windows(&[4.0, 6.0]), fitted, true), (vec![0, 1], false));
        // Off (`parallel_windows = false`): time order.
        assert_eq!(schedule(&windows(&[8.0, 27.0, 28.0]), fitted, false), (vec![0, 1, 2], false));
        // Every window full (fitting off).
        assert_eq!(schedule(&windows(&[12.0, 13.0]), |_| false, true), (vec![0, 1], true));
        // Short recordings (clips, each one fitted window) split between two threads,
        // longest first; so does one full window with as much fitted work beside it.
        assert_eq!(schedule(&windows(&[3.0, 4.0, 2.0]), fitted, true), (vec![1, 0, 2], true));
        assert_eq!(schedule(&windows(&[9.0, 27.0, 9.0, 8.0, 9.0]), fitted, true), (vec![1, 0, 2, 4, 3], true));
        // But not two fitted windows of which one is more than half the work.
        assert_eq!(schedule(&windows(&[8.0, 6.0]), fitted, true), (vec![0, 1], false));
        // Nor a single window.
        assert_eq!(schedule(&windows(&[27.0]), fitted, true), (vec![0], false));
    }

    fn probs(pairs: &[(&str, f32)]) -> Vec<f32> {
        let mut p = vec![0.0f32; 100];
        for (code, v) in pairs {
            p[whisper_rs::get_lang_id(code).unwrap() as usize] = *v;
        }
        p
    }

    fn segment(words: &[(&str, f64)]) -> Segment {
        let words: Vec<Word> = words
            .iter()
            .enumerate()
            .map(|(i, (w, p))| Word { word: format!(" {w}"), start: i as f64, end: i as f64 + 0.5, probability: *p })
            .collect();
        Segment {
            start: 0.0,
            end: words.len() as f64,
            text: join_words(&words),
            confidence: words.iter().map(|w| w.probability).sum::<f64>() / words.len().max(1) as f64,
            words,
            no_speech_probability: 0.01,
            speaker: None,
            channel: 0,
        }
    }

    #[test]
    fn a_fitted_window_is_redone_when_its_text_is_doubtful() {
        let config = AsrConfig::default();
        let good = segment(&[("I", 0.9), ("will", 0.8), ("pay", 0.7), ("on", 0.9), ("Friday", 0.6)]);
        assert!(!suspect(std::slice::from_ref(&good), &config));
        // Nothing at all, or only a segment whisper calls silence.
        assert!(suspect(&[], &config));
        let mut silence = segment(&[("you", 0.2)]);
        silence.no_speech_probability = 0.9;
        assert!(suspect(&[silence], &config));
        // Words whisper doubts.
        let doubtful = segment(&[("la", 0.2), ("ma", 0.3), ("pay", 0.5), ("ka", 0.3)]);
        assert!(suspect(&[doubtful], &config));
        // A loop, each word sure of itself.
        let looped = segment(&[("thank", 0.9), ("you", 0.9)].repeat(5));
        assert!(suspect(&[good, looped], &config));
    }

    #[test]
    fn detection_is_restricted_to_the_candidates() {
        // The Hindi/English call that auto-detection took for Latin.
        let p = probs(&[("la", 0.42), ("hi", 0.30), ("en", 0.10), ("ur", 0.12)]);
        let la = whisper_rs::get_lang_id("la").unwrap();
        assert_eq!(pick_language(la, &p, &[]), ("la".to_string(), 0.42f32 as f64));
        let (code, prob) = pick_language(la, &p, &["hi".into(), "en".into(), "mr".into()]);
        assert_eq!(code, "hi");
        assert!((prob - 0.30 / 0.40).abs() < 1e-6, "{prob}");
        // No probability on any candidate: the first, evenly unsure.
        let (code, prob) = pick_language(la, &probs(&[("la", 1.0)]), &["ta".into(), "te".into()]);
        assert!(code == "ta" || code == "te");
        assert!((prob - 0.5).abs() < 1e-9);
    }
}
