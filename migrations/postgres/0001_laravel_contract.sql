-- The Laravel contract tables (see DESIGN.md) plus the queue bookkeeping columns
-- the worker owns. Timestamps are UTC, stored as Laravel's `timestamp(0)` does
-- (without time zone), here with microseconds.
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      BIGSERIAL PRIMARY KEY,
    apex_id                 VARCHAR(191) NULL,
    file_path               VARCHAR(1024) NOT NULL,
    metadata                JSONB NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_started_at   TIMESTAMP(6) NULL,
    processing_completed_at TIMESTAMP(6) NULL,
    priority                INTEGER NOT NULL DEFAULT 0,
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NULL,
    available_at            TIMESTAMP(6) NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            TIMESTAMP(6) NULL,
    last_error              TEXT NULL,
    created_at              TIMESTAMP(6) NULL,
    updated_at              TIMESTAMP(6) NULL,
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
    id                   BIGSERIAL PRIMARY KEY,
    call_recording_id    BIGINT NOT NULL UNIQUE REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    full_transcript      TEXT NULL,
    language             VARCHAR(16) NULL,
    language_probability DOUBLE PRECISION NULL,
    confidence           DOUBLE PRECISION NULL,
    model_name           VARCHAR(191) NULL,
    processing_seconds   DOUBLE PRECISION NULL,
    audio_seconds        DOUBLE PRECISION NULL,
    metadata             JSONB NULL,
    created_at           TIMESTAMP(6) NULL,
    updated_at           TIMESTAMP(6) NULL
);

CREATE TABLE IF NOT EXISTS ai_transcription_segments (
    id               BIGSERIAL PRIMARY KEY,
    transcription_id BIGINT NOT NULL REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE,
    segment_index    INTEGER NOT NULL,
    speaker          VARCHAR(64) NULL,
    start_time       DOUBLE PRECISION NOT NULL,
    end_time         DOUBLE PRECISION NOT NULL,
    text             TEXT NOT NULL,
    words            JSONB NULL,
    confidence       DOUBLE PRECISION NULL,
    created_at       TIMESTAMP(6) NULL,
    updated_at       TIMESTAMP(6) NULL
);
CREATE INDEX IF NOT EXISTS ai_transcription_segments_order_idx
    ON ai_transcription_segments (transcription_id, segment_index);

CREATE TABLE IF NOT EXISTS ai_call_analyses (
    id                     BIGSERIAL PRIMARY KEY,
    call_recording_id      BIGINT NOT NULL UNIQUE REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    summary                TEXT NULL,
    sentiment_label        VARCHAR(16) NULL,
    sentiment_score        DOUBLE PRECISION NULL,
    quality_score          DOUBLE PRECISION NULL,
    speaker_metrics        JSONB NULL,
    topics                 JSONB NULL,
    outcome                VARCHAR(64) NULL,
    action_items           JSONB NULL,
    audio_duration_seconds DOUBLE PRECISION NULL,
    audio_sample_rate      INTEGER NULL,
    audio_channels         INTEGER NULL,
    audio_rms_dbfs         DOUBLE PRECISION NULL,
    audio_peak_dbfs        DOUBLE PRECISION NULL,
    audio_clipping_ratio   DOUBLE PRECISION NULL,
    audio_silence_ratio    DOUBLE PRECISION NULL,
    audio_snr_db           DOUBLE PRECISION NULL,
    audio_quality_score    DOUBLE PRECISION NULL,
    engine                 VARCHAR(32) NULL,
    model_name             VARCHAR(191) NULL,
    created_at             TIMESTAMP(6) NULL,
    updated_at             TIMESTAMP(6) NULL,
    CONSTRAINT ai_call_analyses_sentiment_check
        CHECK (sentiment_label IS NULL OR sentiment_label IN ('positive', 'neutral', 'negative'))
);
