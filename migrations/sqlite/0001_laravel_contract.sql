-- The Laravel app's tables (shared/LARAVEL-CONTRACT.md) for SQLite, the embedded
-- default, with the same columns as on PostgreSQL and MariaDB, plus the columns the
-- worker adds. Timestamps are UTC text `YYYY-MM-DD HH:MM:SS.SSS`, which sorts and
-- compares as time (Laravel's SQLite grammar stores `datetime` text the same way).
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    apex_id                 VARCHAR(255) NULL,
    r2_path                 VARCHAR(1024) NOT NULL,
    r2_bucket               VARCHAR(255) NULL,
    duration_seconds        INTEGER NULL,
    file_size_bytes         INTEGER NULL,
    file_format             VARCHAR(255) NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_error        TEXT NULL,
    uploaded_at             DATETIME NULL,
    processing_started_at   DATETIME NULL,
    processing_completed_at DATETIME NULL,
    created_at              DATETIME NULL,
    updated_at              DATETIME NULL,
    deleted_at              DATETIME NULL,
    priority                INTEGER NOT NULL DEFAULT 0,
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NULL,
    available_at            DATETIME NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            DATETIME NULL,
    lease_token             VARCHAR(36) NULL,
    processing_stage        VARCHAR(16) NULL,
    crashes                 INTEGER NOT NULL DEFAULT 0,
    redacted_audio_path     VARCHAR(512) NULL,
    campaign_type           VARCHAR(64) NULL,
    direction               VARCHAR(32) NULL,
    client_ref              VARCHAR(64) NULL
);
CREATE INDEX IF NOT EXISTS ai_call_recordings_apex_id_index ON ai_call_recordings (apex_id);

CREATE TABLE IF NOT EXISTS ai_call_transcriptions (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    ai_call_recording_id    INTEGER NOT NULL REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    full_transcript         TEXT NOT NULL,
    segments                TEXT NULL,
    redacted_transcript     TEXT NULL,
    pii_detected            TEXT NULL,
    language_detected       VARCHAR(255) NULL,
    confidence_score        NUMERIC NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'whisper-medium',
    processing_time_seconds INTEGER NULL,
    created_at              DATETIME NULL,
    updated_at              DATETIME NULL,
    language_probability    DOUBLE NULL,
    transcription_details   TEXT NULL
);
CREATE INDEX IF NOT EXISTS ai_call_transcriptions_ai_call_recording_id_index
    ON ai_call_transcriptions (ai_call_recording_id);

CREATE TABLE IF NOT EXISTS ai_call_segments (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    ai_call_transcription_id INTEGER NOT NULL REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE,
    segment_index            INTEGER NOT NULL,
    speaker_label            VARCHAR(64) NULL,
    start_time               NUMERIC NOT NULL,
    end_time                 NUMERIC NOT NULL,
    text                     TEXT NOT NULL,
    words                    TEXT NULL,
    confidence               NUMERIC NULL,
    created_at               DATETIME NULL,
    updated_at               DATETIME NULL
);
CREATE INDEX IF NOT EXISTS ai_call_segments_transcription_start_index
    ON ai_call_segments (ai_call_transcription_id, start_time);

CREATE TABLE IF NOT EXISTS ai_call_analysis (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    ai_call_recording_id    INTEGER NOT NULL REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    summary                 TEXT NULL,
    sentiment_score         NUMERIC NULL,
    sentiment_label         VARCHAR(255) NULL CHECK (sentiment_label IN
                                ('very_negative', 'negative', 'neutral', 'positive', 'very_positive')),
    key_topics              TEXT NULL,
    action_items            TEXT NULL,
    quality_score           NUMERIC NULL,
    compliance_flags        TEXT NULL,
    speaker_metrics         TEXT NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'llama-3.1-8b',
    processing_time_seconds INTEGER NULL,
    created_at              DATETIME NULL,
    updated_at              DATETIME NULL,
    quality_zone            VARCHAR(32) NULL,
    outcome                 VARCHAR(64) NULL,
    outcome_details         TEXT NULL,
    quality_breakdown       TEXT NULL,
    speaker_sentiment       TEXT NULL,
    score_impacts           TEXT NULL,
    agent_actions           TEXT NULL,
    analysis_config         TEXT NULL,
    audio_quality           TEXT NULL,
    engine                  VARCHAR(32) NULL,
    analysis_status         VARCHAR(16) NULL,
    analysis_error          TEXT NULL
);
CREATE INDEX IF NOT EXISTS ai_call_analysis_ai_call_recording_id_index ON ai_call_analysis (ai_call_recording_id);
