-- The Laravel app's tables (shared/LARAVEL-CONTRACT.md), created only where they
-- do not exist yet, with the types Laravel's Schema builder gives on PostgreSQL
-- (`json` is `json`, not `jsonb`; `enum` is a varchar with a CHECK; `timestamps()`
-- is `timestamp(0) without time zone`), plus the nullable columns the worker adds
-- (also added to existing tables by `callscribe migrate` and by the Laravel
-- migration `callscribe laravel-migration` prints). Timestamps are UTC.
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      BIGSERIAL PRIMARY KEY,
    apex_id                 VARCHAR(255) NULL,
    r2_path                 VARCHAR(1024) NOT NULL,
    r2_bucket               VARCHAR(255) NULL,
    duration_seconds        INTEGER NULL,
    file_size_bytes         BIGINT NULL,
    file_format             VARCHAR(255) NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_error        TEXT NULL,
    uploaded_at             TIMESTAMP(0) NULL,
    processing_started_at   TIMESTAMP(0) NULL,
    processing_completed_at TIMESTAMP(0) NULL,
    created_at              TIMESTAMP(0) NULL,
    updated_at              TIMESTAMP(0) NULL,
    deleted_at              TIMESTAMP(0) NULL,
    priority                INTEGER NOT NULL DEFAULT 0,
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NULL,
    available_at            TIMESTAMP(6) NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            TIMESTAMP(6) NULL,
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
    id                      BIGSERIAL PRIMARY KEY,
    ai_call_recording_id    BIGINT NOT NULL REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    full_transcript         TEXT NOT NULL,
    segments                JSON NULL,
    redacted_transcript     TEXT NULL,
    pii_detected            JSON NULL,
    language_detected       VARCHAR(255) NULL,
    confidence_score        NUMERIC(5,4) NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'whisper-medium',
    processing_time_seconds INTEGER NULL,
    created_at              TIMESTAMP(0) NULL,
    updated_at              TIMESTAMP(0) NULL,
    language_probability    DOUBLE PRECISION NULL,
    transcription_details   JSON NULL
);
CREATE INDEX IF NOT EXISTS ai_call_transcriptions_ai_call_recording_id_index
    ON ai_call_transcriptions (ai_call_recording_id);

CREATE TABLE IF NOT EXISTS ai_call_segments (
    id                       BIGSERIAL PRIMARY KEY,
    ai_call_transcription_id BIGINT NOT NULL REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE,
    segment_index            INTEGER NOT NULL,
    speaker_label            VARCHAR(64) NULL,
    start_time               NUMERIC(10,3) NOT NULL,
    end_time                 NUMERIC(10,3) NOT NULL,
    text                     TEXT NOT NULL,
    words                    JSON NULL,
    confidence               NUMERIC(5,4) NULL,
    created_at               TIMESTAMP(0) NULL,
    updated_at               TIMESTAMP(0) NULL
);
CREATE INDEX IF NOT EXISTS ai_call_segments_transcription_start_index
    ON ai_call_segments (ai_call_transcription_id, start_time);

CREATE TABLE IF NOT EXISTS ai_call_analysis (
    id                      BIGSERIAL PRIMARY KEY,
    ai_call_recording_id    BIGINT NOT NULL REFERENCES ai_call_recordings (id) ON DELETE CASCADE,
    summary                 TEXT NULL,
    sentiment_score         NUMERIC(4,2) NULL,
    sentiment_label         VARCHAR(255) NULL CHECK (sentiment_label IN
                                ('very_negative', 'negative', 'neutral', 'positive', 'very_positive')),
    key_topics              JSON NULL,
    action_items            JSON NULL,
    quality_score           NUMERIC(5,2) NULL,
    compliance_flags        JSON NULL,
    speaker_metrics         JSON NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'llama-3.1-8b',
    processing_time_seconds INTEGER NULL,
    created_at              TIMESTAMP(0) NULL,
    updated_at              TIMESTAMP(0) NULL,
    quality_zone            VARCHAR(32) NULL,
    outcome                 VARCHAR(64) NULL,
    outcome_details         JSON NULL,
    quality_breakdown       JSON NULL,
    speaker_sentiment       JSON NULL,
    score_impacts           JSON NULL,
    agent_actions           JSON NULL,
    analysis_config         JSON NULL,
    audio_quality           JSON NULL,
    engine                  VARCHAR(32) NULL,
    analysis_status         VARCHAR(16) NULL,
    analysis_error          TEXT NULL
);
CREATE INDEX IF NOT EXISTS ai_call_analysis_ai_call_recording_id_index ON ai_call_analysis (ai_call_recording_id);
CREATE INDEX IF NOT EXISTS ai_call_analysis_sentiment_label_index ON ai_call_analysis (sentiment_label);
CREATE INDEX IF NOT EXISTS ai_call_analysis_quality_score_index ON ai_call_analysis (quality_score);
