//! Configuration in two steps: raw values merged by figment (built-in defaults <
//! `--config FILE` < `CALLSCRIBE_*` environment < flags), then one validated
//! [`Config`] built at start-up. Every default lives in [`RawConfig::default`];
//! every bad value is named, key and value, in the error. Secrets (database
//! password, S3 keys) never appear in `Debug`, `Display` or error text.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The voice encoder `scripts/fetch-models.sh` makes beside the whisper models.
pub const VOICE_MODEL_FILE: &str = "voice-encoder.safetensors";

/// The speaker segmentation network's file name under `models/`.
pub const SEGMENTATION_MODEL_FILE: &str = "segmentation.safetensors";

/// The CAM++ speaker embedding network's file name under `models/`.
pub const EMBEDDING_MODEL_FILE: &str = "speaker-embedding.safetensors";

/// Where a config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/callscribe/config.toml";

/// A string that must never be printed (passwords, secret keys).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Raw, unvalidated configuration as merged from all sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct RawConfig {
    pub database: RawDatabase,
    pub storage: RawStorage,
    pub worker: RawWorker,
    pub retry: RawRetry,
    pub audio: RawAudio,
    pub asr: RawAsr,
    pub speakers: RawSpeakers,
    pub analysis: RawAnalysis,
    pub log: RawLog,
    pub metrics: RawMetrics,
    pub redaction: RawRedaction,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRedaction {
    /// Redact PII from the transcript, the analysis input and the audio.
    pub enabled: bool,
    /// National entity sets: `in` (India), `gb` (UK).
    pub locales: Vec<String>,
    /// Keep the raw text in `full_transcript` (everything else is redacted).
    pub keep_raw: bool,
    /// Send the redacted text to the analysis engine.
    pub analyze_redacted: bool,
    /// Upload a cleaned copy of the audio.
    pub audio: bool,
    /// `tone` (1 kHz) or `silence`.
    pub audio_cover: String,
    /// Added before and after every span.
    pub audio_padding: String,
    /// Key of the cleaned copy: `{dir}`, `{stem}`, `{ext}`, `{key}`.
    pub audio_key: String,
    /// Delete the original after the cleaned copy is stored and the row committed.
    pub delete_original: bool,
}

impl Default for RawRedaction {
    fn default() -> Self {
        RawRedaction {
            enabled: false,
            locales: vec!["in".into(), "gb".into()],
            keep_raw: false,
            analyze_redacted: true,
            audio: true,
            audio_cover: "tone".into(),
            audio_padding: "150ms".into(),
            audio_key: "{dir}{stem}.redacted.wav".into(),
            delete_original: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// `HOST:PORT` for `/metrics`, `/healthz` and `/readyz` (e.g.
    /// `127.0.0.1:9464`); empty: no listener.
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAnalysis {
    /// `auto` (llama when `model` exists, else heuristic), `llama`, `http`, `heuristic` or `off`.
    pub engine: String,
    /// A GGUF model for `llama`.
    pub model: String,
    /// The `callscribe-llm` executable; empty: beside `callscribe`.
    pub llm_bin: String,
    pub ctx: u32,
    /// 0 means every core.
    pub threads: u32,
    /// llama.cpp chat template name (`gemma`, `chatml`, …); empty: the model's own.
    pub chat_template: String,
    pub gpu_layers: u32,
    pub deadline: String,
    pub max_tokens: u32,
    /// `fast`, `full` or `none`.
    pub grammar: String,
    /// The global tier: `loan_collection`, `delivery`, `support` or a custom one.
    pub template: String,
    /// BCP 47 locale of the summaries (`en-GB`: British English).
    pub locale: String,
    /// Deprecated: the summary's language in words; `locale` replaces it.
    pub summary_language: String,
    pub http_base_url: String,
    pub http_model: String,
    /// Name of the environment variable holding the API key (the key itself never
    /// goes in a file).
    pub http_api_key_env: String,
    /// Custom templates by name (`[analysis.templates.NAME]`); a name here
    /// overrides a built-in one.
    pub templates: std::collections::BTreeMap<String, crate::analyze::Template>,
    /// Settings per campaign type, direction and client
    /// (`[analysis.tiers.campaign_type.NAME]`, …), over the global template.
    pub tiers: crate::analyze::profile::FileTiers,
}

impl Default for RawAnalysis {
    fn default() -> Self {
        RawAnalysis {
            engine: "auto".into(),
            model: "models/llm.gguf".into(),
            llm_bin: String::new(),
            ctx: 4096,
            threads: 0,
            chat_template: String::new(),
            gpu_layers: 0,
            deadline: "180s".into(),
            max_tokens: 1280,
            grammar: "fast".into(),
            template: "loan_collection".into(),
            locale: "en-GB".into(),
            summary_language: String::new(),
            http_base_url: String::new(),
            http_model: String::new(),
            http_api_key_env: "CALLSCRIBE_LLM_API_KEY".into(),
            templates: Default::default(),
            tiers: Default::default(),
        }
    }
}

/// The analysis engine to start.
#[derive(Debug, Clone)]
pub enum AnalysisEngine {
    Off,
    Heuristic,
    Llama(crate::analyze::llm::LlmConfig),
    Http(crate::analyze::http::HttpConfig),
}

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    pub engine: AnalysisEngine,
    /// The global template and the tiers over it.
    pub tiers: crate::analyze::Tiers,
    pub locale: String,
    pub max_prompt_chars: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAsr {
    /// false: jobs stop after the audio figures (no transcription).
    pub enabled: bool,
    pub model: String,
    /// 0 means every core.
    pub threads: u32,
    pub language: String,
    /// Candidates for detection (`["hi", "en", "mr"]`): with `language = "auto"`,
    /// the most probable of these is taken. Empty: any of whisper's languages.
    pub languages: Vec<String>,
    pub beam_size: u32,
    pub temperature_fallback: bool,
    pub initial_prompt: String,
    pub hot_words: Vec<String>,
    pub no_speech_threshold: f64,
    /// A window decoded at a mean token log probability under this is decoded
    /// again at a higher temperature (faster-whisper's `log_prob_threshold`).
    pub logprob_threshold: f64,
    pub max_repeats: u32,
    pub models_dir: String,
    /// Encode a short window at its own length instead of a padded 30 s.
    pub fit_audio_ctx: bool,
    /// Only windows of at most this many seconds of audio are fitted.
    pub fit_max_seconds: f64,
    /// Move word edges onto the signal's pauses and onsets after alignment.
    pub refine_word_edges: bool,
    /// Write Devanagari (Hindi, Marathi) in Latin letters, as Hinglish is typed.
    pub romanise: bool,
    /// whisper.cpp's flash attention (no DTW alignment then).
    pub flash_attn: bool,
    /// Decode windows two at a time, each with half of `threads`, when the work
    /// splits (CPU and GPU; one state more in memory).
    pub parallel_windows: bool,
    /// Run decoding and whisper in a supervised child process (`callscribe
    /// asr-child`): a native crash on one recording restarts the child instead
    /// of killing the worker. `false`: in the worker's own process.
    pub isolate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSpeakers {
    /// Speaker names of channel 1, 2, … on stereo recordings.
    pub channel_labels: Vec<String>,
    /// `cluster` or `gaps`, for mono recordings.
    pub mono_method: String,
    /// With `gaps`: a pause this long changes speaker.
    pub gap_seconds: f64,
    /// How many voices a mono recording may have: at least `min`, at most `max`
    /// (both 1: never split; `min = max = n`: exactly n).
    pub min: u32,
    pub max: u32,
    /// The neural voice encoder for mono clustering: a path, `auto` (the
    /// [`VOICE_MODEL_FILE`] beside `asr.model` when present) or `off`
    /// (hand-made features).
    pub voice_model: String,
    /// The speaker segmentation network (with the voice encoder, it leads mono
    /// clustering): a path, `auto` (the [`SEGMENTATION_MODEL_FILE`] beside
    /// `asr.model` when present) or `off` (voice pieces cut at pauses).
    pub segmentation_model: String,
    /// The speaker embedding network that describes the segmentation's window
    /// speakers (CAM++): a path, `auto` (the [`EMBEDDING_MODEL_FILE`] beside
    /// `asr.model` when present) or `off`, the default (the voice encoder
    /// describes them; on the bench's real conversations CAM++ was no better
    /// with 1–2 speakers and counted 3–4 better: README, Benchmarks).
    pub embedding_model: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDatabase {
    /// `sqlite://callscribe.db`, `postgres://user:pass@host/db`, `mysql://…` or `mariadb://…`.
    pub url: Secret,
    pub max_connections: u32,
    pub connect_timeout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStorage {
    /// `local` or `s3`.
    pub backend: String,
    pub local_dir: String,
    pub max_download_bytes: u64,
    pub temp_dir: String,
    pub s3: RawS3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub force_path_style: bool,
    pub prefix: String,
    pub timeout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWorker {
    /// Empty means `hostname:pid`.
    pub id: String,
    pub concurrency: u32,
    pub poll_interval: String,
    pub idle_max_interval: String,
    pub heartbeat_interval: String,
    pub stale_after: String,
    pub rescue_interval: String,
    pub shutdown_grace: String,
    pub job_timeout: String,
    /// A job may also take this many seconds per second of audio (whichever is
    /// longer): a 4-hour call is not held to a limit sized for 5-minute ones.
    pub job_timeout_ratio: f64,
    /// First pause after a fault of the worker itself; doubles up to 5 minutes.
    pub fault_backoff: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: u32,
    /// Crashes of a row's processing (the worker or the inference process died
    /// on it) after which the row is failed, naming the stage.
    pub max_crashes: u32,
    pub backoff_base: String,
    pub backoff_max: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAudio {
    pub max_duration: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    /// `auto` (pretty on a TTY, JSON otherwise), `pretty` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `callscribe=debug,sqlx=warn`.
    pub level: String,
}

impl Default for RawAsr {
    fn default() -> Self {
        RawAsr {
            enabled: true,
            model: "models/ggml-base.bin".into(),
            threads: 0,
            language: "auto".into(),
            languages: Vec::new(),
            beam_size: 1,
            temperature_fallback: true,
            initial_prompt: String::new(),
            hot_words: Vec::new(),
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            max_repeats: 3,
            models_dir: "models".into(),
            fit_audio_ctx: true,
            fit_max_seconds: 10.0,
            refine_word_edges: true,
            romanise: false,
            flash_attn: false,
            parallel_windows: true,
            isolate: true,
        }
    }
}

impl Default for RawSpeakers {
    fn default() -> Self {
        RawSpeakers {
            channel_labels: vec!["agent".into(), "supporter".into()],
            mono_method: "cluster".into(),
            gap_seconds: 1.0,
            min: 1,
            max: 2,
            voice_model: "auto".into(),
            segmentation_model: "auto".into(),
            embedding_model: "off".into(),
        }
    }
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase { url: Secret::new("sqlite://callscribe.db"), max_connections: 4, connect_timeout: "10s".into() }
    }
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            backend: "local".into(),
            local_dir: "recordings".into(),
            max_download_bytes: 512 * 1024 * 1024,
            temp_dir: String::new(),
            s3: RawS3::default(),
        }
    }
}

impl Default for RawS3 {
    fn default() -> Self {
        RawS3 {
            endpoint: String::new(),
            bucket: String::new(),
            region: "auto".into(),
            access_key_id: Secret::default(),
            secret_access_key: Secret::default(),
            force_path_style: true,
            prefix: String::new(),
            timeout: "120s".into(),
        }
    }
}

impl Default for RawWorker {
    fn default() -> Self {
        RawWorker {
            id: String::new(),
            concurrency: 1,
            poll_interval: "1s".into(),
            idle_max_interval: "15s".into(),
            heartbeat_interval: "15s".into(),
            stale_after: "2m".into(),
            rescue_interval: "30s".into(),
            shutdown_grace: "30s".into(),
            job_timeout: "30m".into(),
            job_timeout_ratio: 3.0,
            fault_backoff: "30s".into(),
        }
    }
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry { max_attempts: 5, max_crashes: 3, backoff_base: "30s".into(), backoff_max: "1h".into() }
    }
}

impl Default for RawAudio {
    fn default() -> Self {
        RawAudio { max_duration: "4h".into() }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { format: "auto".into(), level: "info,whisper_rs=warn,symphonia=off".into() }
    }
}

/// A configuration value that failed validation: names the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}` = {value:?}: {reason}")]
    Invalid { key: &'static str, value: String, reason: String },
    #[error("reading configuration: {0}")]
    Load(String),
}

fn invalid(key: &'static str, value: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, value: value.into(), reason: reason.into() }
}

/// A speaker model setting: `off` (or empty) is none, `auto` the file `name`
/// beside the whisper model when it is there, anything else a path that must exist.
fn speaker_model(
    key: &'static str,
    value: &str,
    whisper: &Path,
    name: &str,
    off: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    match value.trim() {
        "" | "off" => Ok(None),
        "auto" => Ok(Some(whisper.with_file_name(name)).filter(|p| p.is_file())),
        path => {
            let p = PathBuf::from(path);
            if !p.is_file() {
                return Err(invalid(
                    key,
                    path,
                    format!("no such file: scripts/fetch-models.sh makes models/{name}; \"auto\" uses it when present, {off}"),
                ));
            }
            Ok(Some(p))
        }
    }
}

/// Which database the queue lives in, decided from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Mysql,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        })
    }
}

#[derive(Clone)]
pub struct DatabaseConfig {
    pub backend: Backend,
    /// Full URL including any password: use [`DatabaseConfig::redacted_url`] to print.
    pub url: Secret,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("backend", &self.backend)
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A URL safe to print: the password of `scheme://user:password@host/…` becomes
/// `***`, and so does the value of every query parameter that names a secret
/// (`password`, `sslpassword`, any `*pass*`, `*secret*`, `*token*`, `*key*`).
/// The userinfo runs to the **last** `@`, so a password with an unencoded `/`,
/// `@` or `?` is masked whole even when the URL would not parse.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let user = if user.contains('/') { "***" } else { user };
            let masked =
                if userinfo.contains(':') || user == "***" { format!("{user}:***@") } else { format!("{user}@") };
            (masked, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let after = match after.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => after.to_string(),
    };
    format!("{head}{userinfo}{after}")
}

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "pwd"].iter().any(|w| n.contains(w))
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub force_path_style: bool,
    pub prefix: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum StorageBackend {
    Local { dir: PathBuf },
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub max_download_bytes: u64,
    pub temp_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: String,
    pub concurrency: u32,
    pub poll_interval: Duration,
    pub idle_max_interval: Duration,
    pub heartbeat_interval: Duration,
    pub stale_after: Duration,
    pub rescue_interval: Duration,
    pub shutdown_grace: Duration,
    /// The floor of a job's time limit; see [`WorkerConfig::job_limit`].
    pub job_timeout: Duration,
    pub job_timeout_ratio: f64,
    pub fault_backoff: Duration,
}

impl WorkerConfig {
    /// How long a job may run: `job_timeout`, or `job_timeout_ratio` times the
    /// audio's length once it is known, whichever is longer.
    pub fn job_limit(&self, audio_seconds: Option<f64>) -> Duration {
        let per_audio = audio_seconds
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64((s * self.job_timeout_ratio).min(1e7)))
            .unwrap_or_default();
        self.job_timeout.max(per_audio)
    }
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub max_crashes: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakersConfig {
    pub channel_labels: Vec<String>,
    pub mono_method: crate::diarize::Method,
    pub gap_seconds: f64,
    /// Voices on a mono recording: at least `min`, at most `max`.
    pub min: usize,
    pub max: usize,
    /// The voice encoder's weights; `None`: hand-made features.
    pub voice_model: Option<PathBuf>,
    /// The segmentation network's weights; `None`: pieces cut at pauses.
    pub segmentation_model: Option<PathBuf>,
    /// CAM++'s weights; `None`: the voice encoder describes the segmentation's speakers.
    pub embedding_model: Option<PathBuf>,
}

impl Default for SpeakersConfig {
    fn default() -> Self {
        SpeakersConfig {
            channel_labels: vec!["agent".into(), "supporter".into()],
            mono_method: crate::diarize::Method::Cluster,
            gap_seconds: 1.0,
            min: 1,
            max: 2,
            voice_model: None,
            segmentation_model: None,
            embedding_model: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AudioConfig {
    pub max_duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// The validated configuration every component reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub worker: WorkerConfig,
    pub retry: RetryConfig,
    pub audio: AudioConfig,
    /// `None` when `asr.enabled = false`.
    pub asr: Option<crate::asr::AsrConfig>,
    pub models_dir: PathBuf,
    pub speakers: SpeakersConfig,
    pub analysis: AnalysisConfig,
    pub log: LogConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` listen; `None`: off.
    pub metrics: Option<std::net::SocketAddr>,
    /// `None` when `redaction.enabled = false`.
    pub redaction: Option<crate::redact::RedactionConfig>,
    /// The `[redaction]` settings whether on or not (for `callscribe redact`).
    pub redaction_settings: crate::redact::RedactionConfig,
}

fn duration(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim())
        .map_err(|e| invalid(key, value, format!("not a duration like `30s`, `5m` or `1h` ({e})")))
}

fn positive_duration(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, value)?;
    if d.is_zero() {
        return Err(invalid(key, value, "must be greater than zero"));
    }
    Ok(d)
}

/// The core count, for `threads = 0` ("every core").
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// The default worker id: `hostname:pid`.
pub fn default_worker_id() -> String {
    let host = hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}

impl RawConfig {
    /// Merge defaults < file < environment < `overrides` (the flags).
    pub fn load(file: Option<&Path>, overrides: &figment::value::Dict) -> Result<RawConfig, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        let path = match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError::Load(format!("config file {} does not exist", path.display())));
            }
            Some(path) => Some(path),
            None => Some(Path::new(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        if let Some(path) = path {
            // figment reports an unreadable file as "`(top level)`: Permission denied",
            // naming no file: say which file and what to do.
            if let Err(e) = std::fs::File::open(path) {
                return Err(ConfigError::Load(format!(
                    "cannot read the config file {}: {e} (the service user must be able to read it: \
                     install it 0644, secrets belong in the environment file)",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file(path));
        }
        // Only SECTION__KEY names are configuration; other CALLSCRIBE_* variables (tools, tests) are not.
        fig = fig.merge(Env::prefixed("CALLSCRIBE_").filter(|k| k.as_str().contains("__")).split("__"));
        fig = fig.merge(Serialized::defaults(overrides.clone()));
        // figment's errors quote the offending value, which could be a secret: keep only
        // the key path and the kind of mistake.
        fig.extract::<RawConfig>().map_err(|e| {
            let key = if e.path.is_empty() { "(top level)".to_string() } else { e.path.join(".") };
            let kind = match &e.kind {
                figment::error::Kind::UnknownField(f, _) => format!("unknown key `{f}`"),
                figment::error::Kind::InvalidType(actual, expected) => {
                    format!("wrong type: found {}, expected {expected}", kind_name(actual))
                }
                figment::error::Kind::Message(m) => m.clone(),
                _ => "invalid value".to_string(),
            };
            ConfigError::Load(format!("config key `{key}`: {kind}"))
        })
    }

    /// Validate into the [`Config`] the program runs with.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let url = self.database.url.expose().trim().to_string();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Backend::Mysql
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(invalid(
                "database.url",
                redact_url(&url),
                "must start with postgres://, mysql://, mariadb:// or sqlite:",
            ));
        };
        let url = if let Some(rest) = url.strip_prefix("mariadb://") { format!("mysql://{rest}") } else { url };
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "0", "must be at least 1"));
        }
        let database = DatabaseConfig {
            backend,
            url: Secret::new(url),
            max_connections: self.database.max_connections,
            connect_timeout: positive_duration("database.connect_timeout", &self.database.connect_timeout)?,
        };

        let backend = match self.storage.backend.trim() {
            "local" => {
                if self.storage.local_dir.trim().is_empty() {
                    return Err(invalid("storage.local_dir", "", "must name a folder"));
                }
                StorageBackend::Local { dir: PathBuf::from(self.storage.local_dir.trim()) }
            }
            "s3" => {
                let s3 = self.storage.s3;
                if s3.bucket.trim().is_empty() {
                    return Err(invalid("storage.s3.bucket", "", "required when storage.backend = \"s3\""));
                }
                if s3.region.trim().is_empty() {
                    return Err(invalid("storage.s3.region", "", "required (use \"auto\" for R2)"));
                }
                let endpoint = s3.endpoint.trim().to_string();
                if !endpoint.is_empty() && !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                    return Err(invalid("storage.s3.endpoint", endpoint, "must start with http:// or https://"));
                }
                if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
                    return Err(invalid(
                        "storage.s3.secret_access_key",
                        "***",
                        "access_key_id and secret_access_key must be given together",
                    ));
                }
                StorageBackend::S3(S3Config {
                    endpoint: (!endpoint.is_empty()).then_some(endpoint),
                    bucket: s3.bucket.trim().to_string(),
                    region: s3.region.trim().to_string(),
                    access_key_id: s3.access_key_id,
                    secret_access_key: s3.secret_access_key,
                    force_path_style: s3.force_path_style,
                    prefix: s3.prefix.trim().trim_matches('/').to_string(),
                    timeout: positive_duration("storage.s3.timeout", &s3.timeout)?,
                })
            }
            other => return Err(invalid("storage.backend", other, "must be \"local\" or \"s3\"")),
        };
        if self.storage.max_download_bytes == 0 {
            return Err(invalid("storage.max_download_bytes", "0", "must be greater than zero"));
        }
        let storage = StorageConfig {
            backend,
            max_download_bytes: self.storage.max_download_bytes,
            temp_dir: if self.storage.temp_dir.trim().is_empty() {
                std::env::temp_dir()
            } else {
                PathBuf::from(self.storage.temp_dir.trim())
            },
        };

        let w = self.worker;
        if w.concurrency == 0 {
            return Err(invalid("worker.concurrency", "0", "must be at least 1"));
        }
        let worker = WorkerConfig {
            id: if w.id.trim().is_empty() { default_worker_id() } else { w.id.trim().to_string() },
            concurrency: w.concurrency,
            poll_interval: positive_duration("worker.poll_interval", &w.poll_interval)?,
            idle_max_interval: positive_duration("worker.idle_max_interval", &w.idle_max_interval)?,
            heartbeat_interval: positive_duration("worker.heartbeat_interval", &w.heartbeat_interval)?,
            stale_after: positive_duration("worker.stale_after", &w.stale_after)?,
            rescue_interval: positive_duration("worker.rescue_interval", &w.rescue_interval)?,
            shutdown_grace: duration("worker.shutdown_grace", &w.shutdown_grace)?,
            job_timeout: positive_duration("worker.job_timeout", &w.job_timeout)?,
            job_timeout_ratio: if w.job_timeout_ratio.is_finite() && (0.0..=1000.0).contains(&w.job_timeout_ratio) {
                w.job_timeout_ratio
            } else {
                return Err(invalid(
                    "worker.job_timeout_ratio",
                    w.job_timeout_ratio.to_string(),
                    "must be between 0 and 1000 (seconds allowed per second of audio)",
                ));
            },
            fault_backoff: positive_duration("worker.fault_backoff", &w.fault_backoff)?,
        };
        if worker.id.len() > 191 {
            return Err(invalid("worker.id", worker.id.clone(), "at most 191 characters"));
        }
        if worker.stale_after <= worker.heartbeat_interval {
            return Err(invalid(
                "worker.stale_after",
                w.stale_after,
                format!("must be longer than worker.heartbeat_interval ({})", w.heartbeat_interval),
            ));
        }
        if worker.idle_max_interval < worker.poll_interval {
            return Err(invalid(
                "worker.idle_max_interval",
                w.idle_max_interval,
                "must not be shorter than worker.poll_interval",
            ));
        }

        let r = self.retry;
        if r.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "0", "must be at least 1"));
        }
        if r.max_crashes == 0 {
            return Err(invalid("retry.max_crashes", "0", "must be at least 1"));
        }
        let retry = RetryConfig {
            max_attempts: r.max_attempts,
            max_crashes: r.max_crashes,
            backoff_base: duration("retry.backoff_base", &r.backoff_base)?,
            backoff_max: duration("retry.backoff_max", &r.backoff_max)?,
        };
        if retry.backoff_max < retry.backoff_base {
            return Err(invalid("retry.backoff_max", r.backoff_max, "must not be shorter than retry.backoff_base"));
        }

        let audio = AudioConfig { max_duration: positive_duration("audio.max_duration", &self.audio.max_duration)? };

        let a = self.asr;
        let language = a.language.trim().to_lowercase();
        if language != "auto" && whisper_rs::get_lang_id(&language).is_none() {
            return Err(invalid(
                "asr.language",
                a.language,
                "not a whisper language code (en, hi, mr, ta, …) or \"auto\"",
            ));
        }
        let mut languages = Vec::new();
        for code in &a.languages {
            let code = code.trim().to_lowercase();
            if code == "auto" || whisper_rs::get_lang_id(&code).is_none() {
                return Err(invalid("asr.languages", code, "not a whisper language code (en, hi, mr, ta, …)"));
            }
            if !languages.contains(&code) {
                languages.push(code);
            }
        }
        if language != "auto" && !languages.is_empty() && !languages.contains(&language) {
            return Err(invalid(
                "asr.language",
                a.language,
                format!("is not among asr.languages ({})", languages.join(", ")),
            ));
        }
        // whisper.cpp keeps at most 8 decoders (WHISPER_MAX_DECODERS) and fails
        // every window of a wider beam search with error -4.
        if a.beam_size == 0 || a.beam_size > 8 {
            return Err(invalid("asr.beam_size", a.beam_size.to_string(), "must be 1 (greedy) to 8"));
        }
        if !(0.0..=1.0).contains(&a.no_speech_threshold) {
            return Err(invalid(
                "asr.no_speech_threshold",
                a.no_speech_threshold.to_string(),
                "must be between 0 and 1",
            ));
        }
        if !(-10.0..=0.0).contains(&a.logprob_threshold) {
            return Err(invalid(
                "asr.logprob_threshold",
                a.logprob_threshold.to_string(),
                "must be between -10 and 0 (a mean log probability)",
            ));
        }
        if a.max_repeats == 0 {
            return Err(invalid("asr.max_repeats", "0", "must be at least 1"));
        }
        if !(0.0..=30.0).contains(&a.fit_max_seconds) {
            return Err(invalid("asr.fit_max_seconds", a.fit_max_seconds.to_string(), "must be 0 to 30 seconds"));
        }
        let asr = a.enabled.then(|| crate::asr::AsrConfig {
            model: PathBuf::from(a.model.trim()),
            threads: if a.threads == 0 { all_cores() } else { a.threads as usize },
            language,
            languages,
            beam_size: a.beam_size as usize,
            temperature_fallback: a.temperature_fallback,
            initial_prompt: a.initial_prompt.clone(),
            hot_words: a.hot_words.iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect(),
            no_speech_threshold: a.no_speech_threshold,
            logprob_threshold: a.logprob_threshold,
            max_repeats: a.max_repeats as usize,
            fit_audio_ctx: a.fit_audio_ctx,
            fit_max_seconds: a.fit_max_seconds,
            refine_edges: a.refine_word_edges,
            romanise: a.romanise,
            flash_attn: a.flash_attn,
            parallel_windows: a.parallel_windows,
            isolate: a.isolate,
            ..Default::default()
        });
        let models_dir = PathBuf::from(a.models_dir.trim());

        let sp = self.speakers;
        let mono_method = match sp.mono_method.trim() {
            "cluster" => crate::diarize::Method::Cluster,
            "gaps" => crate::diarize::Method::Gaps,
            other => return Err(invalid("speakers.mono_method", other, "must be \"cluster\" or \"gaps\"")),
        };
        if sp.gap_seconds.is_nan() || sp.gap_seconds <= 0.0 {
            return Err(invalid("speakers.gap_seconds", sp.gap_seconds.to_string(), "must be greater than zero"));
        }
        if sp.channel_labels.iter().any(|l| l.trim().is_empty() || l.len() > 64) {
            return Err(invalid(
                "speakers.channel_labels",
                format!("{:?}", sp.channel_labels),
                "labels must be 1–64 characters",
            ));
        }
        if sp.min == 0 || sp.min > crate::diarize::MAX_SPEAKERS as u32 {
            return Err(invalid(
                "speakers.min",
                sp.min.to_string(),
                format!("must be 1 to {}", crate::diarize::MAX_SPEAKERS),
            ));
        }
        if sp.max < sp.min || sp.max > crate::diarize::MAX_SPEAKERS as u32 {
            return Err(invalid(
                "speakers.max",
                sp.max.to_string(),
                format!("must be from speakers.min ({}) to {}", sp.min, crate::diarize::MAX_SPEAKERS),
            ));
        }
        // Model files beside the whisper model when they are there
        // (scripts/fetch-models.sh puts them all in models/).
        let whisper = Path::new(a.model.trim());
        let voice_model = speaker_model(
            "speakers.voice_model",
            &sp.voice_model,
            whisper,
            VOICE_MODEL_FILE,
            "\"off\" the hand-made features",
        )?;
        let segmentation_model = speaker_model(
            "speakers.segmentation_model",
            &sp.segmentation_model,
            whisper,
            SEGMENTATION_MODEL_FILE,
            "\"off\" cuts voice pieces at pauses",
        )?;
        let embedding_model = speaker_model(
            "speakers.embedding_model",
            &sp.embedding_model,
            whisper,
            EMBEDDING_MODEL_FILE,
            "\"off\" lets the voice encoder describe the segmentation's speakers",
        )?;
        let speakers = SpeakersConfig {
            channel_labels: sp.channel_labels,
            mono_method,
            gap_seconds: sp.gap_seconds,
            min: sp.min as usize,
            max: sp.max as usize,
            voice_model,
            segmentation_model,
            embedding_model,
        };

        let an = self.analysis;
        let name = an.template.trim();
        let mut tiers = crate::analyze::Tiers {
            global: Default::default(),
            file: an.tiers.clone(),
            templates: an.templates.clone(),
        };
        for (tname, t) in &an.templates {
            if t.outcomes.is_empty() {
                return Err(invalid("analysis.templates", tname, "a template needs at least one outcome"));
            }
            if let Some(p) = t.clone().complete().problem() {
                return Err(invalid("analysis.templates", tname, &p));
            }
        }
        tiers.global = tiers.template(name).ok_or_else(|| {
            invalid(
                "analysis.template",
                an.template.clone(),
                "must be loan_collection, delivery, support or a name under [analysis.templates]",
            )
        })?;
        if let Some(p) = tiers.problem() {
            return Err(invalid("analysis.tiers", "", &p));
        }
        let locale = match (an.locale.trim(), an.summary_language.trim()) {
            (l, _) if !l.is_empty() => l.to_string(),
            (_, "") => "en-GB".to_string(),
            // The old key, read as a locale for the validation of summaries.
            (_, lang) if lang.to_lowercase().contains("hindi") => "hi-IN".to_string(),
            _ => "en-GB".to_string(),
        };
        let locale_ok = |l: &str| {
            let mut parts = l.split(['-', '_']);
            parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()))
                && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
        };
        if !locale_ok(&locale) {
            return Err(invalid("analysis.locale", locale, "must be a locale such as en-GB or hi-IN"));
        }
        let deadline = positive_duration("analysis.deadline", &an.deadline)?;
        if !["fast", "full", "none"].contains(&an.grammar.trim()) {
            return Err(invalid("analysis.grammar", an.grammar, "must be \"fast\", \"full\" or \"none\""));
        }
        if an.ctx < 512 {
            return Err(invalid("analysis.ctx", an.ctx.to_string(), "must be at least 512"));
        }
        if an.max_tokens < 64 || an.max_tokens >= an.ctx / 2 {
            return Err(invalid(
                "analysis.max_tokens",
                an.max_tokens.to_string(),
                "must be 64 to half of analysis.ctx",
            ));
        }
        let llama = || crate::analyze::llm::LlmConfig {
            bin: if an.llm_bin.trim().is_empty() {
                crate::analyze::llm::default_bin()
            } else {
                PathBuf::from(an.llm_bin.trim())
            },
            model: PathBuf::from(an.model.trim()),
            ctx: an.ctx,
            threads: if an.threads == 0 { all_cores() } else { an.threads as usize },
            chat_template: Some(an.chat_template.trim().to_string()).filter(|t| !t.is_empty()),
            gpu_layers: an.gpu_layers,
            deadline,
            load_timeout: Duration::from_secs(120),
            max_tokens: an.max_tokens as usize,
            grammar: an.grammar.trim().to_string(),
        };
        let engine = match an.engine.trim() {
            "off" => AnalysisEngine::Off,
            "heuristic" => AnalysisEngine::Heuristic,
            "llama" => AnalysisEngine::Llama(llama()),
            "auto" => {
                if Path::new(an.model.trim()).exists() {
                    AnalysisEngine::Llama(llama())
                } else {
                    AnalysisEngine::Heuristic
                }
            }
            "http" => {
                let base = an.http_base_url.trim().to_string();
                if !base.starts_with("http://") && !base.starts_with("https://") {
                    return Err(invalid("analysis.http_base_url", base, "must start with http:// or https://"));
                }
                if an.http_model.trim().is_empty() {
                    return Err(invalid("analysis.http_model", "", "required with analysis.engine = \"http\""));
                }
                AnalysisEngine::Http(crate::analyze::http::HttpConfig {
                    base_url: base,
                    model: an.http_model.trim().to_string(),
                    api_key: std::env::var(an.http_api_key_env.trim()).ok().filter(|k| !k.is_empty()),
                    deadline,
                    max_tokens: an.max_tokens as usize,
                })
            }
            other => {
                return Err(invalid("analysis.engine", other, "must be auto, llama, http, heuristic or off"));
            }
        };
        // ~3.5 characters a token; leave room for the instructions and the answer.
        let max_prompt_chars =
            ((an.ctx as usize).saturating_sub(an.max_tokens as usize + crate::analyze::PROMPT_RESERVE_TOKENS) * 7 / 2)
                .max(1000);
        let analysis = AnalysisConfig { engine, tiers, locale, max_prompt_chars };

        let format = match self.log.format.trim() {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => return Err(invalid("log.format", other, "must be \"auto\", \"pretty\" or \"json\"")),
        };
        if tracing_subscriber::EnvFilter::try_new(self.log.level.trim()).is_err() {
            return Err(invalid(
                "log.level",
                self.log.level,
                "not a tracing filter such as `info` or `callscribe=debug`",
            ));
        }
        let log = LogConfig { format, level: self.log.level.trim().to_string() };
        let listen = self.metrics.listen.trim();
        let metrics = if listen.is_empty() {
            None
        } else {
            Some(listen.parse::<std::net::SocketAddr>().map_err(|_| {
                invalid("metrics.listen", listen, "must be HOST:PORT with an IP address, e.g. 127.0.0.1:9464")
            })?)
        };

        let enabled = self.redaction.enabled;
        let redaction_settings = self.redaction.validate()?;
        let redaction = enabled.then(|| redaction_settings.clone());

        Ok(Config {
            database,
            storage,
            worker,
            retry,
            audio,
            asr,
            models_dir,
            speakers,
            analysis,
            log,
            metrics,
            redaction,
            redaction_settings,
        })
    }
}

impl RawRedaction {
    fn validate(self) -> Result<crate::redact::RedactionConfig, ConfigError> {
        use crate::redact::{AudioRedaction, Cover, Locales, RedactionConfig};
        let locales = Locales::parse(&self.locales)
            .map_err(|other| invalid("redaction.locales", other, "each must be \"in\" or \"gb\""))?;
        let audio = if self.audio {
            let cover = Cover::parse(&self.audio_cover).ok_or_else(|| {
                invalid("redaction.audio_cover", self.audio_cover.trim(), "must be \"tone\" or \"silence\"")
            })?;
            let padding = duration("redaction.audio_padding", &self.audio_padding)?;
            if padding > Duration::from_secs(2) {
                return Err(invalid("redaction.audio_padding", self.audio_padding, "at most 2s"));
            }
            let key = self.audio_key.trim().to_string();
            if !key.contains("{stem}") && !key.contains("{key}") {
                return Err(invalid(
                    "redaction.audio_key",
                    key,
                    "must contain {stem} or {key}, so that every recording gets its own cleaned copy",
                ));
            }
            if crate::redact::cleaned_key(&key, "a/b.wav") == "a/b.wav" {
                return Err(invalid("redaction.audio_key", key, "would overwrite the original recording"));
            }
            Some(AudioRedaction {
                cover,
                padding_seconds: padding.as_secs_f64(),
                key_pattern: key,
                delete_original: self.delete_original,
            })
        } else {
            None
        };
        Ok(RedactionConfig { locales, keep_raw: self.keep_raw, analyze_redacted: self.analyze_redacted, audio })
    }
}

fn kind_name(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Map => "a table",
        Actual::Seq => "a list",
        _ => "another type",
    }
}

impl Config {
    /// Defaults only (no file, no environment): the embedded single-machine setup.
    pub fn embedded_default() -> Config {
        RawConfig::default().validate().expect("built-in defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_to_the_embedded_setup() {
        let c = Config::embedded_default();
        assert_eq!(c.database.backend, Backend::Sqlite);
        assert!(matches!(c.storage.backend, StorageBackend::Local { .. }));
        assert_eq!(c.worker.concurrency, 1);
        assert!(c.worker.stale_after > c.worker.heartbeat_interval);
    }

    /// The defaults with the speaker networks off, so that validation does not
    /// look for their files.
    fn without_speaker_models() -> RawConfig {
        let mut raw = RawConfig::default();
        raw.speakers.segmentation_model = "off".into();
        raw.speakers.embedding_model = "off".into();
        raw.speakers.voice_model = "off".into();
        raw
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let mut raw = RawConfig::default();
        raw.worker.poll_interval = "soon".into();
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains("worker.poll_interval") && err.contains("soon"), "{err}");

        let mut raw = RawConfig::default();
        raw.database.url = Secret::new("oracle://scott:tiger@db/x");
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");
        assert!(!err.contains("tiger"), "password leaked: {err}");

        // Speaker model paths must exist; "auto" without the files and "off" are fine.
        for key in ["voice_model", "segmentation_model", "embedding_model"] {
            let mut raw = RawConfig::default();
            let missing = "/nonexistent/weights.safetensors".to_string();
            match key {
                "voice_model" => raw.speakers.voice_model = missing,
                "segmentation_model" => raw.speakers.segmentation_model = missing,
                _ => raw.speakers.embedding_model = missing,
            }
            let err = raw.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("speakers.{key}")) && err.contains("fetch-models.sh"), "{err}");
        }
        // whisper.cpp runs at most 8 decoders: a wider beam would fail every window.
        for (beam, ok) in [(0, false), (1, true), (8, true), (9, false), (16, false)] {
            let mut raw = without_speaker_models();
            raw.asr.beam_size = beam;
            match raw.validate() {
                Ok(_) => assert!(ok, "beam {beam} accepted"),
                Err(e) => {
                    assert!(!ok, "beam {beam}: {e}");
                    assert!(
                        e.to_string().contains("asr.beam_size") && e.to_string().contains("1 (greedy) to 8"),
                        "{e}"
                    );
                }
            }
        }
        // A mean log probability is at most 0.
        for (threshold, ok) in [(-1.0, true), (0.0, true), (0.5, false), (-11.0, false)] {
            let mut raw = without_speaker_models();
            raw.asr.logprob_threshold = threshold;
            match raw.validate() {
                Ok(_) => assert!(ok, "{threshold} accepted"),
                Err(e) => assert!(!ok && e.to_string().contains("asr.logprob_threshold"), "{threshold}: {e}"),
            }
        }
        let mut raw = RawConfig::default();
        raw.asr.model = "/nonexistent/ggml-base.bin".into();
        raw.speakers.segmentation_model = "off".into();
        raw.speakers.embedding_model = "off".into();
        let c = raw.validate().unwrap();
        assert_eq!(
            (c.speakers.voice_model, c.speakers.segmentation_model, c.speakers.embedding_model),
            (None, None, None)
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/calls"), "postgres://app:***@db:5432/calls");
        assert_eq!(redact_url("mysql://root@127.0.0.1/x"), "mysql://root@127.0.0.1/x");
        assert_eq!(redact_url("sqlite://callscribe.db"), "sqlite://callscribe.db");
        // Secrets in the query string, and passwords that break the URL's syntax.
        assert_eq!(
            redact_url("postgres://app@db/calls?sslmode=require&password=hunter2&application_name=x"),
            "postgres://app@db/calls?sslmode=require&password=***&application_name=x"
        );
        assert_eq!(redact_url("mysql://root@h/db?PASSWORD=p&ssl-key=/k"), "mysql://root@h/db?PASSWORD=***&ssl-key=***");
        for url in ["postgres://user:pa/ss@word@host:5432/x", "postgres://user:p%40/w?x@host/x"] {
            let r = redact_url(url);
            assert!(r.starts_with("postgres://user:***@host"), "{r}");
            assert!(!r.contains("pa/ss") && !r.contains("word@") && !r.contains("p%40"), "{r}");
        }
        let mut raw = RawConfig::default();
        raw.database.url = Secret::new("postgres://app:s3cret@db/calls");
        raw.storage.s3.secret_access_key = Secret::new("verysecret");
        let shown = format!("{:?} {:?}", raw, raw.clone().validate().unwrap());
        assert!(!shown.contains("s3cret") && !shown.contains("verysecret"), "{shown}");
    }

    #[test]
    fn mariadb_scheme_is_mysql() {
        let mut raw = RawConfig::default();
        raw.database.url = Secret::new("mariadb://root@127.0.0.1:3306/calls");
        let c = raw.validate().unwrap();
        assert_eq!(c.database.backend, Backend::Mysql);
        assert!(c.database.url.expose().starts_with("mysql://"));
    }

    #[test]
    fn custom_analysis_templates_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[analysis]\ntemplate = \"renewal\"\n[analysis.templates.renewal]\ncontext = \"an insurance renewal call\"\n\
             outcomes = [\"renewed\", \"declined\"]\n",
        )
        .unwrap();
        let c = RawConfig::load(Some(&file), &figment::value::Dict::new()).unwrap().validate().unwrap();
        assert_eq!(c.analysis.tiers.global.name, "renewal");
        assert_eq!(c.analysis.tiers.global.outcomes, ["renewed", "declined", "other"]);
        assert_eq!(c.analysis.locale, "en-GB");
        let mut raw = RawConfig::default();
        raw.analysis.template = "astrology".into();
        assert!(raw.validate().unwrap_err().to_string().contains("analysis.template"));
        let mut raw = RawConfig::default();
        raw.analysis.locale = "British".into();
        assert!(raw.validate().unwrap_err().to_string().contains("analysis.locale"));
    }

    #[test]
    fn analysis_tiers_come_from_the_file_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[analysis.tiers.campaign_type.delivery]\ntemplate = \"delivery\"\n\
             [analysis.tiers.client.ACME]\ntopics = [\"refund\"]\n",
        )
        .unwrap();
        let c = RawConfig::load(Some(&file), &figment::value::Dict::new()).unwrap().validate().unwrap();
        let ctx = crate::analyze::CallContext {
            campaign_type: Some("delivery".into()),
            client_ref: Some("ACME".into()),
            ..Default::default()
        };
        let (t, applied) = c.analysis.tiers.select(&ctx, &[]);
        assert_eq!((t.name.as_str(), t.topics.as_slice()), ("delivery", &["refund".to_string()][..]));
        assert_eq!(applied.tiers.len(), 3);
        std::fs::write(&file, "[analysis.tiers.client.X]\ntemplate = \"horoscope\"\n").unwrap();
        let e = RawConfig::load(Some(&file), &figment::value::Dict::new()).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("analysis.tiers.client.X"), "{e}");
    }

    #[test]
    fn stale_after_must_exceed_heartbeat() {
        let mut raw = RawConfig::default();
        raw.worker.stale_after = "10s".into();
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains("worker.stale_after"), "{err}");
    }

    #[test]
    fn example_file_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let from_file: RawConfig = toml::from_str(&text).unwrap();
        let a = serde_json::to_value(&from_file).unwrap();
        let b = serde_json::to_value(RawConfig::default()).unwrap();
        assert_eq!(a, b, "config.example.toml and RawConfig::default() disagree");
    }

    #[test]
    fn file_env_and_flags_layer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[worker]\nconcurrency = 3\npoll_interval = \"2s\"\n").unwrap();
        let mut flags = figment::value::Dict::new();
        let mut worker = figment::value::Dict::new();
        worker.insert("poll_interval".into(), "5s".into());
        flags.insert("worker".into(), worker.into());
        let raw = RawConfig::load(Some(&file), &flags).unwrap();
        assert_eq!(raw.worker.concurrency, 3);
        assert_eq!(raw.worker.poll_interval, "5s");

        std::fs::write(&file, "[worker]\nconcurency = 3\n").unwrap();
        let err = RawConfig::load(Some(&file), &figment::value::Dict::new()).unwrap_err().to_string();
        assert!(err.contains("concurency"), "{err}");
    }
}
