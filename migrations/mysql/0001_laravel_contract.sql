-- The Laravel app's tables (shared/LARAVEL-CONTRACT.md) for MariaDB >= 10.6 and
-- MySQL >= 8, created only where they do not exist yet: names and types as the
-- app's Schema builder makes them (`id()` = BIGINT UNSIGNED, `string` =
-- VARCHAR(255), `timestamps()` = TIMESTAMP NULL, `json` = JSON), plus the nullable
-- columns the worker adds (also added to existing tables by `callscribe migrate`
-- and by the Laravel migration `callscribe laravel-migration` prints).
-- Timestamps are UTC.
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    apex_id                 VARCHAR(255) NULL,
    r2_path                 VARCHAR(1024) NOT NULL,
    r2_bucket               VARCHAR(255) NULL,
    duration_seconds        INT NULL,
    file_size_bytes         BIGINT UNSIGNED NULL,
    file_format             VARCHAR(255) NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_error        TEXT NULL,
    uploaded_at             TIMESTAMP NULL DEFAULT NULL,
    processing_started_at   TIMESTAMP NULL DEFAULT NULL,
    processing_completed_at TIMESTAMP NULL DEFAULT NULL,
    created_at              TIMESTAMP NULL DEFAULT NULL,
    updated_at              TIMESTAMP NULL DEFAULT NULL,
    deleted_at              TIMESTAMP NULL DEFAULT NULL,
    priority                INT NOT NULL DEFAULT 0,
    attempts                INT NOT NULL DEFAULT 0,
    max_attempts            INT NULL,
    available_at            TIMESTAMP(6) NULL DEFAULT NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            TIMESTAMP(6) NULL DEFAULT NULL,
    lease_token             VARCHAR(36) NULL,
    processing_stage        VARCHAR(16) NULL,
    crashes                 INTEGER NOT NULL DEFAULT 0,
    redacted_audio_path     VARCHAR(512) NULL,
    campaign_type           VARCHAR(64) NULL,
    direction               VARCHAR(32) NULL,
    client_ref              VARCHAR(64) NULL,
    KEY ai_call_recordings_apex_id_index (apex_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_call_transcriptions (
    id                      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ai_call_recording_id    BIGINT UNSIGNED NOT NULL,
    full_transcript         LONGTEXT NOT NULL,
    segments                JSON NULL,
    redacted_transcript     LONGTEXT NULL,
    pii_detected            JSON NULL,
    language_detected       VARCHAR(255) NULL,
    confidence_score        DECIMAL(5,4) NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'whisper-medium',
    processing_time_seconds INT NULL,
    created_at              TIMESTAMP NULL DEFAULT NULL,
    updated_at              TIMESTAMP NULL DEFAULT NULL,
    language_probability    DOUBLE NULL,
    transcription_details   JSON NULL,
    KEY ai_call_transcriptions_ai_call_recording_id_index (ai_call_recording_id),
    CONSTRAINT ai_call_transcriptions_ai_call_recording_id_foreign FOREIGN KEY (ai_call_recording_id)
        REFERENCES ai_call_recordings (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_call_segments (
    id                       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ai_call_transcription_id BIGINT UNSIGNED NOT NULL,
    segment_index            INT NOT NULL,
    speaker_label            VARCHAR(64) NULL,
    start_time               DECIMAL(10,3) NOT NULL,
    end_time                 DECIMAL(10,3) NOT NULL,
    text                     TEXT NOT NULL,
    words                    JSON NULL,
    confidence               DECIMAL(5,4) NULL,
    created_at               TIMESTAMP NULL DEFAULT NULL,
    updated_at               TIMESTAMP NULL DEFAULT NULL,
    KEY ai_call_segments_transcription_start_index (ai_call_transcription_id, start_time),
    CONSTRAINT ai_call_segments_ai_call_transcription_id_foreign FOREIGN KEY (ai_call_transcription_id)
        REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_call_analysis (
    id                      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ai_call_recording_id    BIGINT UNSIGNED NOT NULL,
    summary                 TEXT NULL,
    sentiment_score         DECIMAL(4,2) NULL,
    sentiment_label         ENUM('very_negative', 'negative', 'neutral', 'positive', 'very_positive') NULL,
    key_topics              JSON NULL,
    action_items            JSON NULL,
    quality_score           DECIMAL(5,2) NULL,
    compliance_flags        JSON NULL,
    speaker_metrics         JSON NULL,
    model_used              VARCHAR(255) NOT NULL DEFAULT 'llama-3.1-8b',
    processing_time_seconds INT NULL,
    created_at              TIMESTAMP NULL DEFAULT NULL,
    updated_at              TIMESTAMP NULL DEFAULT NULL,
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
    analysis_error          TEXT NULL,
    KEY ai_call_analysis_ai_call_recording_id_index (ai_call_recording_id),
    KEY ai_call_analysis_sentiment_label_index (sentiment_label),
    KEY ai_call_analysis_quality_score_index (quality_score),
    CONSTRAINT ai_call_analysis_ai_call_recording_id_foreign FOREIGN KEY (ai_call_recording_id)
        REFERENCES ai_call_recordings (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
