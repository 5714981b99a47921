//! Command-line definitions (clap). Only parsing lives here; `main.rs` and
//! [`crate::app`] act on it. Flags are the top layer of the configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "callscribe",
    version,
    about = "Call-recording worker: claims rows from the database queue, fetches and decodes the audio, measures it, and writes the results back",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Default: /etc/callscribe/config.toml if it exists.
    #[arg(long, global = true, value_name = "FILE", env = "CALLSCRIBE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE, postgres://…, mysql://… or mariadb://… (never printed).
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log format: auto (pretty on a terminal, JSON otherwise), pretty or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. info, debug or callscribe=debug,sqlx=warn.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker: claim pending recordings and process them until stopped.
    Run(RunArgs),
    /// Create or update the tables (idempotent; safe beside Laravel's own migrations).
    Migrate,
    /// Check the database, the schema and the storage, and say what is missing.
    Doctor,
    /// Print the Laravel migration (PHP) that adds what the worker needs to the app's tables.
    LaravelMigration,
    /// Upload audio files to the configured storage and queue them as pending rows.
    Enqueue(EnqueueArgs),
    /// Queue statistics: counts per status, oldest pending age, last hour, top errors.
    Stats(StatsArgs),
    /// Put rows stuck in `processing` (no heartbeat for a while) back to `pending`.
    ResetStuck(ResetStuckArgs),
    /// Put failed rows back to `pending` with fresh attempts.
    Requeue(RequeueArgs),
    /// Process a recording again; its results are replaced, never duplicated.
    Reprocess(ReprocessArgs),
    /// Run only the analysis again on stored transcripts (no whisper, no audio).
    Reanalyze(ReanalyzeArgs),
    /// Show one recording's status and stored results (transcript with speakers).
    Show(ShowArgs),
    /// Ask a running worker's `/healthz` (or `/readyz`) on `metrics.listen`; exit 0
    /// when it answers 200 (a container HEALTHCHECK with no curl in the image).
    Health(HealthArgs),
    /// Transcribe local audio files with no database (like other whisper tools).
    Transcribe(TranscribeArgs),
    /// Redact PII offline: transcribe audio files (or read transcript JSON from
    /// `transcribe --format json`) and write the redacted transcript and, for
    /// audio, a cleaned WAV with every PII span covered.
    Redact(RedactArgs),
    /// (Internal) print the labelled PII set the tests score, as JSON lines,
    /// with this build's findings (for benches/pii_presidio.py).
    #[command(hide = true)]
    PiiCorpus {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 20)]
        per_form: usize,
    },
    /// (Internal) the inference process `run` supervises: decodes and transcribes
    /// the files it is sent on stdin. Not for direct use.
    #[command(hide = true)]
    AsrChild,
    /// Whisper models: import faster-whisper models, list installed ones.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Convert a faster-whisper (CTranslate2) model folder to a whisper.cpp ggml file.
    ImportCt2 {
        /// Folder with model.bin and vocabulary.txt.
        dir: PathBuf,
        /// The ggml file to write, e.g. models/ggml-base.bin.
        out: PathBuf,
        /// Weight type of the matrices: auto (bf16 on CPUs with AVX512-BF16,
        /// else q8-0), q8-0 (half the size of f16), iq4-nl or q4-0 (a quarter;
        /// faster on CPUs, a few more words wrong), q5-0, bf16, or f16 (GPUs).
        #[arg(long, value_enum, default_value = "auto")]
        weights: crate::models::WeightType,
    },
    /// List the whisper.cpp models in asr.models_dir.
    List,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Ask `/readyz` (database, worker faults, LLM process) instead of `/healthz`.
    #[arg(long)]
    pub ready: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The row id.
    #[arg(long, value_name = "N")]
    pub id: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Audio files (WAV, MP3, OGG, FLAC, M4A, GSM).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output formats, comma-separated: json, srt, vtt, txt, tsv, or all. More
    /// than one writes files (into --out, default the current folder).
    #[arg(long, value_name = "FORMATS", default_value = "txt", value_parser = crate::output::parse_formats)]
    pub format: crate::output::Formats,
    /// Write <name>.<format> files here instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Whisper model (default: asr.model).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Language code or auto (default: asr.language).
    #[arg(long)]
    pub language: Option<String>,
    /// Candidate languages for detection, comma-separated (default: asr.languages).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub languages: Option<Vec<String>>,
    /// Threads for whisper (default: asr.threads).
    #[arg(long)]
    pub threads: Option<u32>,
    /// 1 = greedy; 2–8 = beam search (default: asr.beam_size).
    #[arg(long)]
    pub beam_size: Option<u32>,
    /// Exactly this many speakers on a mono recording.
    #[arg(long, value_name = "N", conflicts_with_all = ["min_speakers", "max_speakers"])]
    pub speakers: Option<u32>,
    /// At least this many speakers on a mono recording (default: speakers.min).
    #[arg(long, value_name = "N")]
    pub min_speakers: Option<u32>,
    /// At most this many speakers on a mono recording (default: speakers.max).
    #[arg(long, value_name = "N")]
    pub max_speakers: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Audio files, or transcript JSON files written by `transcribe --format json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write <name>.redacted.json (and <name>.redacted.wav) here; default: beside each file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Entity sets, comma-separated: in, gb (default: redaction.locales).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub locales: Vec<String>,
    /// How the audio is covered: tone or silence (default: redaction.audio_cover).
    #[arg(long, value_name = "MODE")]
    pub cover: Option<String>,
    /// Whisper model (default: asr.model).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Language code or auto (default: asr.language).
    #[arg(long)]
    pub language: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Process until nothing is claimable, then exit 0 (batch mode).
    #[arg(long)]
    pub drain: bool,
    /// Jobs at once (default 1: inference wants all cores).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Worker id recorded on every claim (default hostname:pid).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Audio files to upload (or object keys with --no-upload).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The app's reference for the call, stored in apex_id.
    #[arg(long, value_name = "X")]
    pub apex_id: Option<String>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// Treat the arguments as object keys already in storage: insert rows only.
    #[arg(long)]
    pub no_upload: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResetStuckArgs {
    /// Rows whose last heartbeat is older than this.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub older_than: String,
}

#[derive(Debug, Args)]
pub struct RequeueArgs {
    /// Requeue failed rows (required: the only kind that can be requeued).
    #[arg(long, required = true)]
    pub failed: bool,
    /// Only this row.
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReanalyzeArgs {
    /// One row.
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
    /// Every completed row whose analysis failed.
    #[arg(long)]
    pub failed_analysis: bool,
    /// Rows completed within this long (e.g. 24h, 7d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReprocessArgs {
    /// The row id.
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
    /// Every row with this apex_id.
    #[arg(long, value_name = "X")]
    pub apex_id: Option<String>,
}
