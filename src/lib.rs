//! # callscribe
//!
//! A headless worker for call recordings. A Laravel app inserts one row per
//! recording into a shared PostgreSQL or MariaDB/MySQL database (or, on one
//! machine with no servers, SQLite) and puts the audio in an S3-compatible bucket
//! (or a local folder). Any number of `callscribe run` processes claim rows with
//! `FOR UPDATE SKIP LOCKED`, process them, and write the results back in the
//! schema the app reads. The database is the queue.
//!
//! ## Map
//!
//! | module | room |
//! |---|---|
//! | [`cli`] | clap definitions only |
//! | [`config`] | defaults < file < `CALLSCRIBE_*` env < flags → one validated [`config::Config`] |
//! | [`queue`] | the [`queue::Queue`] trait, one module per database, the job state machine ([`queue::job`]), the rescuer ([`queue::maintenance`]) |
//! | [`storage`] | S3 (R2, MinIO, AWS) and local-folder backends |
//! | [`audio`] | decode any common format, resample to 16 kHz, quality figures, voice activity |
//! | [`asr`] | whisper.cpp (the only FFI): model loaded once, a state per job, abort flag; repetition and no-speech clean-up |
//! | [`diarize`] | speakers from channels, pauses, or the segmentation network and voice encoder; DER scorer; speaker metrics |
//! | [`analyze`] | summary, sentiment, findings with evidence, quality from score impacts, outcome: the LLM process supervisor, HTTP and heuristic engines, templates and their tiers (client, campaign, direction) |
//! | [`models`] | faster-whisper (CTranslate2) → whisper.cpp ggml converter; installed models |
//! | [`output`] | transcript formats for `transcribe` (json, srt, vtt, txt, tsv) |
//! | [`pipeline`] | one job: fetch → decode → measure → transcribe → diarize → metrics; no SQL, no loops |
//! | [`worker`] | claim loop, heartbeat, retries with backoff, shutdown drain |
//! | [`app`] | what each command does |
//!
//! ## The path of a job
//!
//! ```text
//! worker::Worker::run ── Queue::claim ──▶ Job (lease = worker id + attempt)
//!     │                                      │
//!     │  heartbeat task: Queue::heartbeat    ▼
//!     │                         pipeline::Pipeline::run
//!     │                           storage::Storage::fetch  → temp file
//!     │                           audio::intake            → 16 kHz channels + AudioQuality
//!     │                           pipeline::recognise      → Transcript (asr) + speakers (diarize)
//!     │                           diarize::metrics         → CallMetrics
//!     │                           analyze::Analyzer        → Analysis (callscribe-llm / HTTP / heuristic)
//!     ▼                                      │
//! Queue::complete (fenced, one transaction) ◀┘   or retry (backoff) / fail / release
//! ```
//!
//! Analysis runs after transcription: llama.cpp in the `callscribe-llm` process
//! (see [`analyze`]), an OpenAI-compatible endpoint, or a heuristic.

pub mod analyze;
pub mod app;
pub mod asr;
pub mod audio;
pub mod cli;
pub mod config;
pub mod contract;
pub mod diarize;
pub mod metrics;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod queue;
pub mod redact;
pub mod storage;
pub mod worker;
