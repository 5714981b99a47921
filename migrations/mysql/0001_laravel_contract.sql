-- The Laravel contract tables (see DESIGN.md) for MariaDB >= 10.6 and MySQL >= 8,
-- with Laravel's conventions: BIGINT UNSIGNED auto ids, UTC timestamps, JSON columns.
CREATE TABLE IF NOT EXISTS ai_call_recordings (
    id                      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    apex_id                 VARCHAR(191) NULL,
    file_path               VARCHAR(1024) NOT NULL,
    metadata                JSON NULL,
    processing_status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    processing_started_at   TIMESTAMP(6) NULL DEFAULT NULL,
    processing_completed_at TIMESTAMP(6) NULL DEFAULT NULL,
    priority                INT NOT NULL DEFAULT 0,
    attempts                INT UNSIGNED NOT NULL DEFAULT 0,
    max_attempts            INT UNSIGNED NULL,
    available_at            TIMESTAMP(6) NULL DEFAULT NULL,
    worker_id               VARCHAR(191) NULL,
    heartbeat_at            TIMESTAMP(6) NULL DEFAULT NULL,
    last_error              TEXT NULL,
    created_at              TIMESTAMP(6) NULL DEFAULT NULL,
    updated_at              TIMESTAMP(6) NULL DEFAULT NULL,
    KEY ai_call_recordings_claim_idx (processing_status, priority, id),
    KEY ai_call_recordings_heartbeat_idx (processing_status, heartbeat_at),
    KEY ai_call_recordings_apex_id_idx (apex_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_call_transcriptions (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    call_recording_id    BIGINT UNSIGNED NOT NULL,
    full_transcript      LONGTEXT NULL,
    language             VARCHAR(16) NULL,
    language_probability DOUBLE NULL,
    confidence           DOUBLE NULL,
    model_name           VARCHAR(191) NULL,
    processing_seconds   DOUBLE NULL,
    audio_seconds        DOUBLE NULL,
    metadata             JSON NULL,
    created_at           TIMESTAMP(6) NULL DEFAULT NULL,
    updated_at           TIMESTAMP(6) NULL DEFAULT NULL,
    UNIQUE KEY ai_call_transcriptions_recording_unique (call_recording_id),
    CONSTRAINT ai_call_transcriptions_recording_fk FOREIGN KEY (call_recording_id)
        REFERENCES ai_call_recordings (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_transcription_segments (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    transcription_id BIGINT UNSIGNED NOT NULL,
    segment_index    INT UNSIGNED NOT NULL,
    speaker          VARCHAR(64) NULL,
    start_time       DOUBLE NOT NULL,
    end_time         DOUBLE NOT NULL,
    text             TEXT NOT NULL,
    words            JSON NULL,
    confidence       DOUBLE NULL,
    created_at       TIMESTAMP(6) NULL DEFAULT NULL,
    updated_at       TIMESTAMP(6) NULL DEFAULT NULL,
    KEY ai_transcription_segments_order_idx (transcription_id, segment_index),
    CONSTRAINT ai_transcription_segments_transcription_fk FOREIGN KEY (transcription_id)
        REFERENCES ai_call_transcriptions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_call_analyses (
    id                     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    call_recording_id      BIGINT UNSIGNED NOT NULL,
    summary                TEXT NULL,
    sentiment_label        VARCHAR(16) NULL,
    sentiment_score        DOUBLE NULL,
    quality_score          DOUBLE NULL,
    speaker_metrics        JSON NULL,
    topics                 JSON NULL,
    outcome                VARCHAR(64) NULL,
    action_items           JSON NULL,
    audio_duration_seconds DOUBLE NULL,
    audio_sample_rate      INT UNSIGNED NULL,
    audio_channels         INT UNSIGNED NULL,
    audio_rms_dbfs         DOUBLE NULL,
    audio_peak_dbfs        DOUBLE NULL,
    audio_clipping_ratio   DOUBLE NULL,
    audio_silence_ratio    DOUBLE NULL,
    audio_snr_db           DOUBLE NULL,
    audio_quality_score    DOUBLE NULL,
    engine                 VARCHAR(32) NULL,
    model_name             VARCHAR(191) NULL,
    created_at             TIMESTAMP(6) NULL DEFAULT NULL,
    updated_at             TIMESTAMP(6) NULL DEFAULT NULL,
    UNIQUE KEY ai_call_analyses_recording_unique (call_recording_id),
    CONSTRAINT ai_call_analyses_recording_fk FOREIGN KEY (call_recording_id)
        REFERENCES ai_call_recordings (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
