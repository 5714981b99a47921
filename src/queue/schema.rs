//! The schema: the Laravel app's tables (shared/LARAVEL-CONTRACT.md) and what the
//! worker adds to them. One list, [`WORKER_COLUMNS`], drives everything that
//! touches the worker's own columns:
//!
//! - `callscribe migrate` creates the app's tables where they do not exist
//!   (`migrations/<backend>/0001_laravel_contract.sql`, every statement
//!   `IF NOT EXISTS`), then adds each worker column a table lacks and the claim
//!   indexes ([`index_statements`]). Every step checks before it acts, so a run
//!   that stopped half-way is finished by the next one, and tables made by
//!   Laravel's own migrations are extended, never replaced.
//! - `callscribe laravel-migration` prints the same columns and indexes as a
//!   Laravel migration for the app team ([`laravel_migration`]).
//! - `callscribe doctor` names missing columns ([`missing`]) and columns whose type
//!   cannot hold what the worker writes ([`type_problems`]).

use crate::config::Backend;

/// The bundled `CREATE TABLE IF NOT EXISTS` file of each backend.
pub fn create_tables(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => include_str!("../../migrations/postgres/0001_laravel_contract.sql"),
        Backend::Mysql => include_str!("../../migrations/mysql/0001_laravel_contract.sql"),
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_laravel_contract.sql"),
    }
}

pub const RECORDINGS: &str = "ai_call_recordings";
pub const TRANSCRIPTIONS: &str = "ai_call_transcriptions";
pub const SEGMENTS: &str = "ai_call_segments";
pub const ANALYSIS: &str = "ai_call_analysis";
/// The analysis settings' tiers, shared with the app's other worker (optional:
/// read where it exists, never created by `migrate`).
pub const CONFIGS: &str = "ai_configs";

/// The type of a column the worker adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INT NOT NULL DEFAULT 0`.
    Counter,
    /// `INT NULL`.
    Int,
    /// `DOUBLE NULL`.
    Double,
    /// A UTC timestamp with microseconds, NULL.
    Timestamp,
    /// `VARCHAR(n) NULL`.
    Str(u16),
    /// `JSON NULL` (`json` on PostgreSQL, as Laravel makes it; TEXT on SQLite).
    Json,
    /// `TEXT NULL`.
    Text,
}

impl Kind {
    /// The column type and constraints for `ALTER TABLE … ADD COLUMN`.
    pub fn sql(self, backend: Backend) -> String {
        match (self, backend) {
            (Kind::Counter, _) => "INTEGER NOT NULL DEFAULT 0".into(),
            (Kind::Int, _) => "INTEGER NULL".into(),
            (Kind::Double, Backend::Postgres) => "DOUBLE PRECISION NULL".into(),
            (Kind::Double, _) => "DOUBLE NULL".into(),
            (Kind::Timestamp, Backend::Postgres) => "TIMESTAMP(6) NULL".into(),
            (Kind::Timestamp, Backend::Mysql) => "TIMESTAMP(6) NULL DEFAULT NULL".into(),
            (Kind::Timestamp, Backend::Sqlite) => "DATETIME NULL".into(),
            (Kind::Str(n), _) => format!("VARCHAR({n}) NULL"),
            (Kind::Json, Backend::Sqlite) => "TEXT NULL".into(),
            (Kind::Json, _) => "JSON NULL".into(),
            (Kind::Text, _) => "TEXT NULL".into(),
        }
    }

    /// The Schema-builder call that adds the column.
    fn laravel(self, name: &str) -> String {
        match self {
            Kind::Counter => format!("$table->integer('{name}')->default(0)"),
            Kind::Int => format!("$table->integer('{name}')->nullable()"),
            Kind::Double => format!("$table->double('{name}')->nullable()"),
            Kind::Timestamp => format!("$table->timestamp('{name}', 6)->nullable()"),
            Kind::Str(n) => format!("$table->string('{name}', {n})->nullable()"),
            Kind::Json => format!("$table->json('{name}')->nullable()"),
            Kind::Text => format!("$table->text('{name}')->nullable()"),
        }
    }
}

/// A column the worker adds to one of the app's tables, with what it holds.
#[derive(Debug, Clone, Copy)]
pub struct WorkerColumn {
    pub table: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub meaning: &'static str,
}

const fn col(table: &'static str, name: &'static str, kind: Kind, meaning: &'static str) -> WorkerColumn {
    WorkerColumn { table, name, kind, meaning }
}

/// Everything the worker adds to the app's tables. All are nullable or have a
/// default, so the app's inserts and reads are unaffected.
pub const WORKER_COLUMNS: &[WorkerColumn] = &[
    col(
        RECORDINGS,
        "priority",
        Kind::Counter,
        "claim order: higher first (then `queued` before `pending`, then oldest)",
    ),
    col(RECORDINGS, "attempts", Kind::Counter, "attempts started; reset when the app sets the row back to `pending`"),
    col(RECORDINGS, "max_attempts", Kind::Int, "this row's attempt limit (NULL: the worker's `retry.max_attempts`)"),
    col(RECORDINGS, "available_at", Kind::Timestamp, "UTC; not claimed before this time (retry backoff)"),
    col(RECORDINGS, "worker_id", Kind::Str(191), "the worker holding or last holding the row"),
    col(RECORDINGS, "heartbeat_at", Kind::Timestamp, "UTC; refreshed by the holder while it works"),
    col(RECORDINGS, "lease_token", Kind::Str(36), "random per claim; every write of the holder is fenced on it"),
    col(
        RECORDINGS,
        "processing_stage",
        Kind::Str(16),
        "the stage the holder is in (claimed, fetch, decode, transcribe, analyze): where a crash happened",
    ),
    col(
        RECORDINGS,
        "crashes",
        Kind::Counter,
        "times this row's processing died (worker or inference process); failed at `retry.max_crashes`",
    ),
    col(
        RECORDINGS,
        "redacted_audio_path",
        Kind::Str(512),
        "object key of the cleaned copy (PII silenced or toned out) when redaction is on",
    ),
    col(RECORDINGS, "campaign_type", Kind::Str(64), "call context the app fills; chooses the analysis tier"),
    col(
        RECORDINGS,
        "direction",
        Kind::Str(32),
        "call context the app fills (inbound, outbound, …); chooses the analysis tier",
    ),
    col(RECORDINGS, "client_ref", Kind::Str(64), "call context the app fills; chooses the analysis tier"),
    col(TRANSCRIPTIONS, "language_probability", Kind::Double, "whisper's probability for `language_detected`, 0–1"),
    col(TRANSCRIPTIONS, "transcription_details", Kind::Json, "speakers, segment count, clean-up counts, code-mixing"),
    col(
        ANALYSIS,
        "quality_zone",
        Kind::Str(32),
        "Excellent ≥ 90, Good ≥ 75, Satisfactory ≥ 65, Below Average ≥ 50, else Poor",
    ),
    col(ANALYSIS, "outcome", Kind::Str(64), "the call's outcome, one of the template's labels"),
    col(ANALYSIS, "outcome_details", Kind::Json, "what the template asks for with the outcome (e.g. promised amount)"),
    col(ANALYSIS, "quality_breakdown", Kind::Json, "rubric items, each 0–5"),
    col(ANALYSIS, "speaker_sentiment", Kind::Json, "per speaker: score −10…+10 and label"),
    col(
        ANALYSIS,
        "audio_quality",
        Kind::Json,
        "duration, sample rate, channels, level, clipping, silence, SNR, 0–1 score",
    ),
    col(
        ANALYSIS,
        "score_impacts",
        Kind::Json,
        "moments that raised or lowered quality: impact −5…+5, category, reason, segment_ids, quote",
    ),
    col(
        ANALYSIS,
        "agent_actions",
        Kind::Json,
        "what the agent did (greeting, verification, …) with segment_ids and quote",
    ),
    col(
        ANALYSIS,
        "analysis_config",
        Kind::Json,
        "the settings' tiers and version, and findings dropped for want of evidence",
    ),
    col(ANALYSIS, "engine", Kind::Str(32), "llama.cpp, http or heuristic"),
    col(
        ANALYSIS,
        "analysis_status",
        Kind::Str(16),
        "completed, failed (the transcript is kept; `callscribe reanalyze` reruns it) or skipped (analysis off)",
    ),
    col(ANALYSIS, "analysis_error", Kind::Text, "why the analysis failed, one sentence"),
];

/// Columns of the app's own tables the worker reads or writes: the app (or
/// `migrate`) creates them; `doctor` names any that is missing.
pub const APP_COLUMNS: &[(&str, &[&str])] = &[
    (
        RECORDINGS,
        &[
            "id",
            "apex_id",
            "r2_path",
            "r2_bucket",
            "duration_seconds",
            "file_format",
            "processing_status",
            "processing_error",
            "processing_started_at",
            "processing_completed_at",
            "created_at",
            "updated_at",
            "deleted_at",
        ],
    ),
    (
        TRANSCRIPTIONS,
        &[
            "id",
            "ai_call_recording_id",
            "full_transcript",
            "segments",
            "redacted_transcript",
            "pii_detected",
            "language_detected",
            "confidence_score",
            "model_used",
            "processing_time_seconds",
            "created_at",
            "updated_at",
        ],
    ),
    (
        ANALYSIS,
        &[
            "id",
            "ai_call_recording_id",
            "summary",
            "sentiment_score",
            "sentiment_label",
            "key_topics",
            "action_items",
            "quality_score",
            "compliance_flags",
            "speaker_metrics",
            "model_used",
            "processing_time_seconds",
            "created_at",
            "updated_at",
        ],
    ),
];

/// The claim index name (every backend).
pub const CLAIM_INDEX: &str = "ai_call_recordings_claim_idx";
/// The rescuer's index name (every backend).
pub const HEARTBEAT_INDEX: &str = "ai_call_recordings_heartbeat_idx";

/// `(name, CREATE INDEX statement)` for the worker's indexes. The claim reads
/// `processing_status IN ('queued', 'pending') ORDER BY processing_status DESC,
/// priority DESC, id` ('queued' sorts after 'pending', so DESC puts the app's
/// priority reprocess first); the key has that order, so a claim reads and
/// locks only the rows it takes. PostgreSQL and SQLite use partial indexes;
/// MySQL/MariaDB need real descending keys (MariaDB >= 10.8, MySQL >= 8).
pub fn index_statements(backend: Backend) -> Vec<(&'static str, String)> {
    match backend {
        Backend::Mysql => vec![
            (
                CLAIM_INDEX,
                format!("CREATE INDEX {CLAIM_INDEX} ON {RECORDINGS} (processing_status DESC, priority DESC, id)"),
            ),
            (HEARTBEAT_INDEX, format!("CREATE INDEX {HEARTBEAT_INDEX} ON {RECORDINGS} (processing_status, heartbeat_at)")),
        ],
        Backend::Postgres | Backend::Sqlite => vec![
            (
                CLAIM_INDEX,
                format!(
                    "CREATE INDEX IF NOT EXISTS {CLAIM_INDEX} ON {RECORDINGS} (processing_status DESC, priority DESC, id) \
                     WHERE processing_status IN ('queued', 'pending') AND deleted_at IS NULL"
                ),
            ),
            (
                HEARTBEAT_INDEX,
                format!(
                    "CREATE INDEX IF NOT EXISTS {HEARTBEAT_INDEX} ON {RECORDINGS} (heartbeat_at) \
                     WHERE processing_status = 'processing'"
                ),
            ),
        ],
    }
}

/// The tables this file creates, as `migrate` reports them: `created table …`
/// for each that `before` (the columns present before the run) lacked.
pub fn new_tables(before: &[(String, String)]) -> Vec<String> {
    [RECORDINGS, TRANSCRIPTIONS, SEGMENTS, ANALYSIS]
        .iter()
        .filter(|t| !has_table(before, t))
        .map(|t| format!("created table {t}"))
        .collect()
}

/// `ALTER TABLE` statements adding the worker columns missing from `present`
/// (`(table, column)` pairs as the database lists them).
pub fn add_column_statements(backend: Backend, present: &[(String, String)]) -> Vec<String> {
    WORKER_COLUMNS
        .iter()
        .filter(|c| has_table(present, c.table) && !has(present, c.table, c.name))
        .map(|c| format!("ALTER TABLE {} ADD COLUMN {} {}", c.table, c.name, c.kind.sql(backend)))
        .collect()
}

fn has(present: &[(String, String)], table: &str, column: &str) -> bool {
    present.iter().any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(column))
}

fn has_table(present: &[(String, String)], table: &str) -> bool {
    present.iter().any(|(t, _)| t.eq_ignore_ascii_case(table))
}

/// `table.column` entries the worker needs that `present` lacks (app columns
/// and worker columns alike). `ai_call_segments` is optional: without it the
/// JSON `segments` column is the one segment store.
pub fn missing(present: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (table, cols) in APP_COLUMNS {
        for c in *cols {
            if !has(present, table, c) {
                out.push(format!("{table}.{c}"));
            }
        }
    }
    for c in WORKER_COLUMNS {
        if !has(present, c.table, c.name) {
            out.push(format!("{}.{}", c.table, c.name));
        }
    }
    out
}

/// One column as `information_schema` (or SQLite's pragma) describes it.
#[derive(Debug, Clone, Default)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    /// `data_type` (`json`, `jsonb`, `varchar`, `decimal`, `enum`, `longtext`, …), lower case.
    pub data_type: String,
    /// MySQL's `column_type` (`enum('a','b')`, `decimal(4,2)`), or the CHECK
    /// constraint text that PostgreSQL uses for Laravel's `enum`.
    pub detail: String,
    pub max_length: Option<i64>,
    pub precision: Option<i64>,
    pub scale: Option<i64>,
}

/// Values the worker writes into the app's enum-like columns.
pub const STATUS_VALUES: &[&str] = &["pending", "processing", "completed", "failed"];
pub const SENTIMENT_LABELS: &[&str] = &["very_negative", "negative", "neutral", "positive", "very_positive"];

/// Columns whose type cannot hold what the worker writes, each as one sentence.
pub fn type_problems(cols: &[ColumnInfo]) -> Vec<String> {
    let mut out = Vec::new();
    let find =
        |t: &str, c: &str| cols.iter().find(|i| i.table.eq_ignore_ascii_case(t) && i.column.eq_ignore_ascii_case(c));
    // Decimals: the largest value the worker writes must fit (non-strict MySQL clamps).
    for (t, c, max_int_digits, scale) in [
        (ANALYSIS, "sentiment_score", 2, 2),
        (ANALYSIS, "quality_score", 3, 2),
        (TRANSCRIPTIONS, "confidence_score", 1, 4),
    ] {
        if let Some(i) = find(t, c) {
            if matches!(i.data_type.as_str(), "decimal" | "numeric") {
                if let (Some(p), Some(s)) = (i.precision, i.scale) {
                    if p - s < max_int_digits || s < 1 {
                        out.push(format!(
                            "{t}.{c} is decimal({p},{s}): too narrow for the worker's values \
                             (needs {max_int_digits} integer digits and {scale} decimals)"
                        ));
                    }
                }
            }
        }
    }
    // Enums (MySQL `enum(...)`, PostgreSQL CHECK constraints) must hold every label written.
    for (t, c, labels) in
        [(RECORDINGS, "processing_status", STATUS_VALUES), (ANALYSIS, "sentiment_label", SENTIMENT_LABELS)]
    {
        if let Some(i) = find(t, c) {
            let constrained = i.data_type == "enum" || i.detail.to_ascii_uppercase().contains("CHECK");
            if constrained {
                let lacking: Vec<&str> =
                    labels.iter().copied().filter(|l| !i.detail.contains(&format!("'{l}'"))).collect();
                if !lacking.is_empty() {
                    out.push(format!("{t}.{c} does not accept {}, which the worker writes", lacking.join(", ")));
                }
            }
        }
    }
    // JSON columns must take JSON text (json, jsonb, MariaDB's longtext alias, or text).
    let json_cols = [
        (TRANSCRIPTIONS, "segments"),
        (ANALYSIS, "key_topics"),
        (ANALYSIS, "action_items"),
        (ANALYSIS, "compliance_flags"),
        (ANALYSIS, "speaker_metrics"),
    ];
    for (t, c) in json_cols {
        if let Some(i) = find(t, c) {
            if !matches!(i.data_type.as_str(), "json" | "jsonb" | "longtext" | "text" | "mediumtext") {
                out.push(format!("{t}.{c} is {}, not JSON: the worker writes JSON documents there", i.data_type));
            }
        }
    }
    // Strings the worker fills: a short column would silently truncate on MySQL.
    for (t, c, need) in [
        (RECORDINGS, "processing_status", 10),
        (TRANSCRIPTIONS, "language_detected", 8),
        (TRANSCRIPTIONS, "model_used", 64),
        (ANALYSIS, "model_used", 64),
    ] {
        if let Some(i) = find(t, c) {
            if let Some(n) = i.max_length.filter(|n| *n < need && i.data_type != "enum") {
                out.push(format!("{t}.{c} holds {n} characters; the worker writes up to {need}"));
            }
        }
    }
    out
}

/// Split a migration file into statements (our files keep `;` only at line ends
/// and never inside strings).
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if trimmed.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The Laravel migration for the app team: adds the worker's columns, the
/// `ai_call_segments` table the app's `CallSegment` model expects, and the claim
/// indexes (raw SQL where the Schema builder cannot write `DESC` or a partial
/// index). Every step checks first, so it is safe on a database `callscribe
/// migrate` already touched. `down()` removes exactly what `up()` adds.
pub fn laravel_migration() -> String {
    let mut up = String::new();
    let mut down = String::new();
    for table in [RECORDINGS, TRANSCRIPTIONS, ANALYSIS] {
        let cols: Vec<&WorkerColumn> = WORKER_COLUMNS.iter().filter(|c| c.table == table).collect();
        up.push_str(&format!("        Schema::connection('ai')->table('{table}', function (Blueprint $table) {{\n"));
        for c in &cols {
            up.push_str(&format!(
                "            if (! Schema::connection('ai')->hasColumn('{table}', '{name}')) {{\n                {call}->comment('callscribe: {meaning}');\n            }}\n",
                name = c.name,
                call = c.kind.laravel(c.name),
                meaning = c.meaning.replace('\'', "\\'"),
            ));
        }
        up.push_str("        });\n");
        let names: Vec<String> = cols.iter().map(|c| format!("'{}'", c.name)).collect();
        down.push_str(&format!(
            "        $drop = array_values(array_filter([{}], fn ($c) => Schema::connection('ai')->hasColumn('{table}', $c)));\n        if ($drop) {{\n            Schema::connection('ai')->table('{table}', fn (Blueprint $table) => $table->dropColumn($drop));\n        }}\n",
            names.join(", ")
        ));
    }
    let pg: Vec<String> = index_statements(Backend::Postgres).into_iter().map(|(_, s)| s).collect();
    let my: Vec<(&str, String)> = index_statements(Backend::Mysql);
    format!(
        r#"<?php

// Generated by `callscribe laravel-migration` ({version}). It adds what the
// callscribe worker needs to the AI tables: queue bookkeeping on
// ai_call_recordings, extra nullable result columns, the ai_call_segments table
// behind CallTranscription::segments(), and the index the worker's claim reads.
// The app's own columns are not touched. Save it as
// database/migrations/YYYY_MM_DD_HHMMSS_add_callscribe_worker_columns.php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Schema;

return new class extends Migration
{{
    protected $connection = 'ai';

    public function up(): void
    {{
{up}
        if (! Schema::connection('ai')->hasTable('{segments}')) {{
            Schema::connection('ai')->create('{segments}', function (Blueprint $table) {{
                $table->id();
                $table->foreignId('ai_call_transcription_id')->constrained('{transcriptions}')->onDelete('cascade');
                $table->integer('segment_index');
                $table->string('speaker_label', 64)->nullable();
                $table->decimal('start_time', 10, 3);
                $table->decimal('end_time', 10, 3);
                $table->text('text');
                $table->json('words')->nullable();
                $table->decimal('confidence', 5, 4)->nullable();
                $table->timestamps();
                $table->index(['ai_call_transcription_id', 'start_time'], '{segments}_transcription_start_index');
            }});
        }}

        $db = DB::connection('ai');
        if ($db->getDriverName() === 'pgsql') {{
{pg_up}
        }} else {{
            $has = fn ($name) => count($db->select(
                'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?',
                ['{recordings}', $name]
            )) > 0;
{my_up}
        }}
    }}

    public function down(): void
    {{
        $db = DB::connection('ai');
        if ($db->getDriverName() === 'pgsql') {{
            $db->statement('DROP INDEX IF EXISTS {claim}');
            $db->statement('DROP INDEX IF EXISTS {heartbeat}');
        }} else {{
            foreach (['{claim}', '{heartbeat}'] as $name) {{
                if (count($db->select(
                    'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?',
                    ['{recordings}', $name]
                )) > 0) {{
                    $db->statement("DROP INDEX $name ON {recordings}");
                }}
            }}
        }}
        Schema::connection('ai')->dropIfExists('{segments}');
{down}    }}
}};
"#,
        version = env!("CARGO_PKG_VERSION"),
        segments = SEGMENTS,
        transcriptions = TRANSCRIPTIONS,
        recordings = RECORDINGS,
        claim = CLAIM_INDEX,
        heartbeat = HEARTBEAT_INDEX,
        pg_up = pg.iter().map(|s| format!("            $db->statement(\"{s}\");")).collect::<Vec<_>>().join("\n"),
        my_up = my
            .iter()
            .map(|(n, s)| format!(
                "            if (! $has('{n}')) {{\n                $db->statement('{s}');\n            }}"
            ))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present_from(sql: &str) -> Vec<(String, String)> {
        // Crude reader of our own CREATE TABLE files: `table (` then one column per line.
        let mut out = Vec::new();
        let mut table = None;
        for line in sql.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                table = rest.split_whitespace().next().map(str::to_string);
                continue;
            }
            if l.starts_with(')') {
                table = None;
            }
            if let (Some(t), Some(first)) = (&table, l.split_whitespace().next()) {
                if first.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) {
                    out.push((t.clone(), first.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn every_backend_creates_every_column_the_worker_needs() {
        for backend in [Backend::Postgres, Backend::Mysql, Backend::Sqlite] {
            let present = present_from(create_tables(backend));
            assert_eq!(missing(&present), Vec::<String>::new(), "{backend}");
            assert!(add_column_statements(backend, &present).is_empty(), "{backend}");
            for t in [RECORDINGS, TRANSCRIPTIONS, SEGMENTS, ANALYSIS] {
                assert!(has_table(&present, t), "{backend}: {t}");
            }
        }
    }

    #[test]
    fn backends_create_the_same_columns() {
        let cols = |b| {
            let mut v = present_from(create_tables(b));
            v.sort();
            v
        };
        assert_eq!(cols(Backend::Postgres), cols(Backend::Mysql));
        assert_eq!(cols(Backend::Postgres), cols(Backend::Sqlite));
    }

    #[test]
    fn adds_only_what_an_app_table_lacks() {
        let present: Vec<(String, String)> =
            ["id", "r2_path", "priority"].iter().map(|c| (RECORDINGS.to_string(), c.to_string())).collect();
        let stmts = add_column_statements(Backend::Mysql, &present);
        assert!(stmts
            .iter()
            .any(|s| s == "ALTER TABLE ai_call_recordings ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"));
        assert!(!stmts.iter().any(|s| s.contains(" priority ")), "{stmts:?}");
        // No statements for tables that do not exist at all (they are created instead).
        assert!(!stmts.iter().any(|s| s.contains(ANALYSIS)), "{stmts:?}");
        let m = missing(&present);
        assert!(m.contains(&"ai_call_recordings.deleted_at".to_string()));
        assert!(!m.contains(&"ai_call_recordings.r2_path".to_string()));
    }

    #[test]
    fn narrow_or_foreign_types_are_named() {
        let c = |t: &str, col: &str, dt: &str, detail: &str, p: Option<i64>, s: Option<i64>| ColumnInfo {
            table: t.into(),
            column: col.into(),
            data_type: dt.into(),
            detail: detail.into(),
            max_length: None,
            precision: p,
            scale: s,
        };
        let ok = vec![
            c(ANALYSIS, "sentiment_score", "decimal", "decimal(4,2)", Some(4), Some(2)),
            c(
                ANALYSIS,
                "sentiment_label",
                "enum",
                "enum('very_negative','negative','neutral','positive','very_positive')",
                None,
                None,
            ),
            c(
                RECORDINGS,
                "processing_status",
                "enum",
                "enum('pending','queued','processing','completed','failed')",
                None,
                None,
            ),
            c(TRANSCRIPTIONS, "segments", "json", "", None, None),
            c(ANALYSIS, "key_topics", "longtext", "", None, None),
        ];
        assert_eq!(type_problems(&ok), Vec::<String>::new());
        let bad = vec![
            c(ANALYSIS, "sentiment_score", "decimal", "decimal(3,2)", Some(3), Some(2)),
            c(ANALYSIS, "sentiment_label", "enum", "enum('negative','neutral','positive')", None, None),
            c(TRANSCRIPTIONS, "segments", "integer", "", None, None),
        ];
        let p = type_problems(&bad);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[1].contains("very_negative"), "{p:?}");
    }

    #[test]
    fn laravel_migration_adds_every_worker_column_and_removes_them() {
        let php = laravel_migration();
        for c in WORKER_COLUMNS {
            assert!(php.contains(&format!("hasColumn('{}', '{}')", c.table, c.name)), "{}", c.name);
            assert!(php.contains(&format!("'{}'", c.name)));
        }
        assert!(php.contains("protected $connection = 'ai'"));
        assert!(php.contains("processing_status DESC, priority DESC, id"));
        assert!(php.contains("public function down(): void"));
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let s = statements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x INT)".to_string(), "CREATE INDEX i\n  ON a (x)".to_string()]);
    }
}
