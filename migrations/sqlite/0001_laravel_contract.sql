-- The Laravel contract tables (see DESIGN.md) plus the queue bookkeeping columns
-- the worker owns, for SQLite, the embedded default. Timestamps are UTC text
-- `YYYY-MM-DD HH:MM:SS.SSS`, which sorts and compares as time.
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    apex_id                 VARCHAR(191) NULL,
    file_path               VARCHAR(1024) NOT NULL,
    metadata                TEXT NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_started_at   TEXT NULL,
    processing_completed_at TEXT NULL,
    priority                INTEGER NOT NULL DEFAULT 0,
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NULL,
    available_at            TEXT NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            TEXT NULL,
    last_error              TEXT NULL,
    created_at              TEXT NULL,
    updated_at              TEXT NULL,
    CONSTRAINT ai_call_recordings_status_check
        CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed'))
);
-- The claim query: pending rows, highest priority first, oldest first.
CREATE INDEX IF NOT EXISTS ai_call_recordings_claim_idx
    ON ai_call_recordings (priority DESC, id) WHERE processing_status = 'pending';
-- The rescuer: processing rows by heartbeat.
CREATE INDEX IF NOT EXISTS ai_call_recordings_heartbeat_idx
    ON ai_call_recordings (heartbeat_at) WHERE processing_status = 'processing';
CREATE INDEX IF NOT EXISTS ai_call_recordings_status_idx ON ai_call_recordings (processing_status);
CREATE INDEX IF NOT EXISTS ai_call_recordings_apex_id_idx ON ai_call_recordings (apex_id);

CREATE TABLE IF NOT EXISTS ai_call_transcriptions (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    call_recording_id    INTEGER NOT NULL UNIQUE REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    full_transcript      TEXT NULL,
    language             VARCHAR(16) NULL,
    language_probability REAL NULL,
    confidence           REAL NULL,
    model_name           VARCHAR(191) NULL,
    processing_seconds   REAL NULL,
    audio_seconds        REAL NULL,
    metadata             TEXT NULL,
    created_at           TEXT NULL,
    updated_at           TEXT NULL
);

CREATE TABLE IF NOT EXISTS ai_transcription_segments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    transcription_id INTEGER NOT NULL REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE,
    segment_index    INTEGER NOT NULL,
    speaker          VARCHAR(64) NULL,
    start_time       REAL NOT NULL,
    end_time         REAL NOT NULL,
    text             TEXT NOT NULL,
    words            TEXT NULL,
    confidence       REAL NULL,
    created_at       TEXT NULL,
    updated_at       TEXT NULL
);
CREATE INDEX IF NOT EXISTS ai_transcription_segments_order_idx
    ON ai_transcription_segments (transcription_id, segment_index);

CREATE TABLE IF NOT EXISTS ai_call_analyses (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    call_recording_id      INTEGER NOT NULL UNIQUE REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    summary                TEXT NULL,
    sentiment_label        VARCHAR(16) NULL,
    sentiment_score        REAL NULL,
    quality_score          REAL NULL,
    speaker_metrics        TEXT NULL,
    topics                 TEXT NULL,
    outcome                VARCHAR(64) NULL,
    action_items           TEXT NULL,
    audio_duration_seconds REAL NULL,
    audio_sample_rate      INTEGER NULL,
    audio_channels         INTEGER NULL,
    audio_rms_dbfs         REAL NULL,
    audio_peak_dbfs        REAL NULL,
    audio_clipping_ratio   REAL NULL,
    audio_silence_ratio    REAL NULL,
    audio_snr_db           REAL NULL,
    audio_quality_score    REAL NULL,
    engine                 VARCHAR(32) NULL,
    model_name             VARCHAR(191) NULL,
    created_at             TEXT NULL,
    updated_at             TEXT NULL,
    CONSTRAINT ai_call_analyses_sentiment_check
        CHECK (sentiment_label IS NULL OR sentiment_label IN ('positive', 'neutral', 'negative'))
);
