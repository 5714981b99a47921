//! What the queue hands out and takes back: a claimed [`Job`], the [`Lease`] that
//! fences its completion, and the [`JobResults`] written in the completing
//! transaction.
//!
//! # Job states
//!
//! ```text
//!            enqueue (Laravel app / `callscribe enqueue`); the app's reprocess
//!                 │            (pending or queued, error and times nulled: attempts restart)
//!                 ▼            claim (worker): attempts += 1, `queued` before `pending`
//!   ┌────────▶ pending ─────────────────────────────▶ processing ──┐
//!   │  ▲          ▲   retry (worker, transient error,    │    │      │ complete (worker,
//!   │  │          └─── attempts left, available_at = now + backoff)│      │ fenced, one txn)
//!   │  │              release (worker shutdown: attempts -= 1)     │      ▼
//!   │  └── rescue (maintenance: stale heartbeat, attempts left) ───┘   completed
//!   │                                                  │
//!   │ requeue --failed / reprocess (admin)             │ fail (worker: permanent error or
//!   └──────────────────────────── failed ◀─────────────┘  attempts spent; maintenance: stale
//!                                                          heartbeat and attempts spent)
//! ```
//!
//! | state        | moved in by                                  | moved out by                      |
//! |--------------|----------------------------------------------|-----------------------------------|
//! | `pending`    | the Laravel app, `enqueue`, retry, release, rescue, `requeue`, `reprocess` | a worker's claim |
//! | `processing` | a worker's claim                             | the holder (complete, retry, fail, release) or the rescuer |
//! | `completed`  | the holder's fenced completion               | `reprocess` (admin)               |
//! | `failed`     | the holder, or the rescuer when attempts are spent | `requeue --failed`, `reprocess` (admin) |
//!
//! A row is held by its claim's random `lease_token`: every state change a worker
//! makes is conditioned on it, so a worker whose row was rescued and claimed
//! again can never write over the new holder's work.

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::asr::Transcript;
use crate::audio::AudioQuality;
use crate::diarize::metrics::CallMetrics;

/// The values of `processing_status` the Laravel app understands. `queued` is
/// the app's priority reprocess: claimed before `pending`, never written by
/// the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Pending, JobState::Processing, JobState::Completed, JobState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Pending => "pending",
            JobState::Processing => "processing",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }
}

/// A claimed recording.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub apex_id: Option<String>,
    /// `r2_path` as the app wrote it: an object key, or a full `https://` URL
    /// ([`crate::storage::object_key`] reduces it to a key).
    pub r2_path: String,
    /// `r2_bucket`: the bucket this row's audio is in, when the app named one.
    pub r2_bucket: Option<String>,
    /// `file_format` (the upload's extension), a decoder hint.
    pub file_format: Option<String>,
    pub priority: i32,
    /// Attempts including this one.
    pub attempts: u32,
    /// The row's own limit, or the configured default when the row has none.
    pub max_attempts: Option<u32>,
    /// Times this row's processing died before (see `retry.max_crashes`): a row
    /// that crashed the inference process is transcribed the careful way.
    pub crashes: u32,
    /// The row's context columns, which choose the analysis settings' tiers.
    pub context: crate::analyze::CallContext,
    pub lease: Lease,
}

/// Proof of holding a row: completion and every other write by the holder is
/// conditioned on the row still being `processing` with this claim's random
/// token. A new claim makes a new token and a hand-back clears it, so a worker
/// that lost the row (even one whose worker id a twin container shares) can
/// never write over the new holder's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub worker_id: String,
    pub attempt: u32,
    pub token: String,
}

/// Everything a finished job writes, in one transaction with the status change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobResults {
    /// Audio quality figures; `None` only in queue tests that carry no audio.
    pub audio: Option<AudioQuality>,
    /// The transcript (`ai_call_transcriptions` with its JSON `segments`, and `ai_call_segments` rows);
    /// `None` when transcription is switched off.
    pub transcript: Option<Transcript>,
    /// `ai_call_analysis.speaker_metrics`.
    pub speaker_metrics: Option<CallMetrics>,
    /// Summary, sentiment, quality, outcome (`ai_call_analysis`).
    pub analysis: Option<Analysis>,
    /// Why the analysis failed, when it did: the row completes with its
    /// transcript all the same (`analysis_status = failed`).
    pub analysis_error: Option<String>,
    /// Where the time went (logged, not stored).
    pub timings: StageTimings,
    /// What redaction did, when it is on (the transcript above is then the redacted one).
    pub redaction: Option<RedactionOutcome>,
}

/// What redaction did to one recording. Never holds a PII value, but for the
/// raw text kept on purpose (`redaction.keep_raw`), which is never serialised.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RedactionOutcome {
    /// `pii_detected`: types, placeholders, offsets and times.
    pub items: Vec<crate::redact::PiiItem>,
    /// The raw full text for `full_transcript` (`redaction.keep_raw`).
    #[serde(skip)]
    pub raw_text: Option<String>,
    /// The cleaned copy's object key, once stored.
    pub audio_key: Option<String>,
    /// Why no cleaned copy was stored (the row completes all the same; the
    /// original is then kept whatever `delete_original` says).
    pub audio_error: Option<String>,
    /// Seconds of audio covered in the cleaned copy.
    pub covered_seconds: f64,
    /// Point `r2_path` at the cleaned copy and delete the original after commit.
    pub replace_original: bool,
}

/// Seconds per stage of one job.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimings {
    pub fetch_seconds: f64,
    /// Decoding, transcription and diarization: the four below and the hand-over
    /// to and from the inference process.
    pub transcribe_seconds: f64,
    /// Decoding, resampling and measuring the audio.
    pub decode_seconds: f64,
    /// Finding the speech (energy VAD) on every channel.
    pub vad_seconds: f64,
    /// whisper: language detection, decoding, alignment and word edges.
    pub asr_seconds: f64,
    /// Telling the speakers apart and the speaker metrics.
    pub diarize_seconds: f64,
    /// The analysis engine (inference).
    pub analyze_seconds: f64,
    /// Finding PII and writing and storing the cleaned audio.
    pub redact_seconds: f64,
    /// Everything from the start of the fetch to the end of the last stage.
    pub pipeline_seconds: f64,
}

impl StageTimings {
    /// The recogniser's share of the time, split into VAD, whisper and diarization.
    pub fn split_recognition(&mut self, t: &crate::asr::Transcript) {
        self.vad_seconds = t.vad_seconds;
        self.asr_seconds = (t.processing_seconds - t.vad_seconds).max(0.0);
        self.diarize_seconds = t.diarize_seconds;
    }
}

impl JobResults {
    /// The measured duration in whole seconds, for `duration_seconds` where the
    /// app left it NULL.
    pub fn duration_seconds(&self) -> Option<i64> {
        self.audio.as_ref().map(|a| crate::contract::whole_seconds(a.duration_seconds) as i64)
    }

    /// The `transcription_details` JSON of the transcription row.
    pub fn transcript_metadata(&self) -> Option<serde_json::Value> {
        let t = self.transcript.as_ref()?;
        let text = t.full_text();
        Some(serde_json::json!({
            "code_mixed": crate::asr::is_code_mixed(&text),
            "segments": t.segments.len(),
            "dropped_no_speech_segments": t.dropped_no_speech,
            "repetitions_cut": t.repetitions_cut,
            "full_context_retries": t.full_context_retries,
            "speakers": t.segments.iter().filter_map(|s| s.speaker.clone()).collect::<std::collections::BTreeSet<_>>(),
            "redaction": self.redaction.as_ref().map(|r| serde_json::json!({
                "entities": crate::redact::counts(&r.items),
                "audio_key": r.audio_key,
                "audio_error": r.audio_error,
                "covered_seconds": (r.covered_seconds * 100.0).round() / 100.0,
                "raw_kept": r.raw_text.is_some(),
            })),
        }))
    }
}

/// A new row for `enqueue`, with the columns the Laravel app's
/// `CallRecordingService::uploadForProcessing` fills.
#[derive(Debug, Clone, Default)]
pub struct NewRecording {
    pub apex_id: Option<String>,
    pub r2_path: String,
    pub r2_bucket: Option<String>,
    pub duration_seconds: Option<i64>,
    pub file_size_bytes: Option<i64>,
    pub file_format: Option<String>,
    pub priority: i32,
}

/// Which rows `reanalyze` picks (completed rows with a stored transcript).
#[derive(Debug, Clone)]
pub enum AnalysisSelector {
    Id(i64),
    /// Rows whose analysis failed (`analysis_status = failed`).
    FailedAnalysis,
    /// Rows completed within this long.
    CompletedWithin(std::time::Duration),
}

/// Which rows `reprocess` picks.
#[derive(Debug, Clone)]
pub enum Selector {
    Id(i64),
    ApexId(String),
}

/// What one pass of the rescuer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RescueCounts {
    /// Rows whose holder stopped heartbeating, put back to `pending`.
    pub requeued: u64,
    /// Rows whose holder stopped heartbeating with no attempts left, now `failed`.
    pub failed: u64,
}

/// Queue statistics for `callscribe stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// The app's priority reprocess, claimed before `pending`.
    pub queued: u64,
    pub pending: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    /// Pending or queued rows whose retry time has not come yet (included in their counts).
    pub deferred: u64,
    pub oldest_pending_age_seconds: Option<f64>,
    pub completed_last_hour: u64,
    /// Pending rows handed back for a worker's own fault (storage, temp folder,
    /// model), waiting for it to clear; their attempts were not spent.
    pub worker_faults: u64,
    pub failed_last_hour: u64,
    pub top_errors: Vec<ErrorCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    pub error: String,
    pub count: u64,
}

impl Stats {
    /// Rows per status.
    pub fn by_status(&self) -> [(&'static str, u64); 5] {
        [
            ("queued", self.queued),
            ("pending", self.pending),
            ("processing", self.processing),
            ("completed", self.completed),
            ("failed", self.failed),
        ]
    }

    pub fn set_count(&mut self, status: &str, n: u64) {
        match status {
            "queued" => self.queued = n,
            "pending" => self.pending = n,
            "processing" => self.processing = n,
            "completed" => self.completed = n,
            "failed" => self.failed = n,
            _ => {}
        }
    }
}

/// Cut an error message to what fits a TEXT column and reads well in `stats`.
pub fn clip_error(msg: &str) -> String {
    const MAX: usize = 2000;
    if msg.len() <= MAX {
        return msg.to_string();
    }
    let mut end = MAX;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &msg[..end])
}
