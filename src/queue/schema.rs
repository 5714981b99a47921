//! The bundled migrations and the columns the worker relies on.
//!
//! Migrations are plain SQL files under `migrations/<backend>/`, embedded in the
//! binary and recorded in `callscribe_migrations`. Every statement is
//! `IF NOT EXISTS`, so a database whose tables Laravel created keeps its own
//! tables; `callscribe doctor` then reports any column the worker needs and the
//! table lacks ([`REQUIRED_COLUMNS`]).

use crate::config::Backend;

/// `(version, sql)` for each backend, in order.
pub fn migrations(backend: Backend) -> &'static [(&'static str, &'static str)] {
    match backend {
        Backend::Postgres => &[
            ("0001_laravel_contract", include_str!("../../migrations/postgres/0001_laravel_contract.sql")),
            ("0002_analysis_details", include_str!("../../migrations/postgres/0002_analysis_details.sql")),
        ],
        Backend::Mysql => &[
            ("0001_laravel_contract", include_str!("../../migrations/mysql/0001_laravel_contract.sql")),
            ("0002_analysis_details", include_str!("../../migrations/mysql/0002_analysis_details.sql")),
            ("0003_claim_order_index", include_str!("../../migrations/mysql/0003_claim_order_index.sql")),
        ],
        Backend::Sqlite => &[
            ("0001_laravel_contract", include_str!("../../migrations/sqlite/0001_laravel_contract.sql")),
            ("0002_analysis_details", include_str!("../../migrations/sqlite/0002_analysis_details.sql")),
        ],
    }
}

/// The table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "callscribe_migrations";

/// Columns the worker reads or writes, per table.
pub const REQUIRED_COLUMNS: &[(&str, &[&str])] = &[
    (
        "ai_call_recordings",
        &[
            "id",
            "apex_id",
            "file_path",
            "metadata",
            "processing_status",
            "processing_started_at",
            "processing_completed_at",
            "priority",
            "attempts",
            "max_attempts",
            "available_at",
            "worker_id",
            "heartbeat_at",
            "last_error",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "ai_call_transcriptions",
        &["id", "call_recording_id", "full_transcript", "language", "model_name", "created_at", "updated_at"],
    ),
    (
        "ai_transcription_segments",
        &["id", "transcription_id", "segment_index", "speaker", "start_time", "end_time", "text", "words"],
    ),
    (
        "ai_call_analyses",
        &[
            "id",
            "call_recording_id",
            "summary",
            "sentiment_label",
            "sentiment_score",
            "quality_score",
            "speaker_metrics",
            "audio_duration_seconds",
            "audio_sample_rate",
            "audio_channels",
            "audio_rms_dbfs",
            "audio_peak_dbfs",
            "audio_clipping_ratio",
            "audio_silence_ratio",
            "audio_snr_db",
            "audio_quality_score",
            "engine",
            "model_name",
            "topics",
            "outcome",
            "action_items",
            "speaker_sentiment",
            "quality_breakdown",
            "outcome_details",
            "compliance_flags",
            "created_at",
            "updated_at",
        ],
    ),
];

/// `table.column` entries of [`REQUIRED_COLUMNS`] missing from `present`
/// (`(table, column)` pairs as the database lists them).
pub fn missing(present: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (table, cols) in REQUIRED_COLUMNS {
        for col in *cols {
            if !present.iter().any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(col)) {
                out.push(format!("{table}.{col}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_creates_every_required_table() {
        for backend in [Backend::Postgres, Backend::Mysql, Backend::Sqlite] {
            let sql: String = migrations(backend).iter().map(|(_, s)| *s).collect();
            for (table, cols) in REQUIRED_COLUMNS {
                assert!(sql.contains(&format!("CREATE TABLE IF NOT EXISTS {table}")), "{backend}: {table}");
                for col in *cols {
                    assert!(sql.contains(&format!(" {col} ")), "{backend}: {table}.{col}");
                }
            }
        }
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let s = statements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x INT)".to_string(), "CREATE INDEX i\n  ON a (x)".to_string()]);
    }

    #[test]
    fn missing_lists_absent_columns() {
        let present = vec![("ai_call_recordings".to_string(), "id".to_string())];
        let m = missing(&present);
        assert!(m.contains(&"ai_call_recordings.file_path".to_string()));
        assert!(!m.contains(&"ai_call_recordings.id".to_string()));
    }
}
