-- Analysis details beyond the Laravel contract's columns.
ALTER TABLE ai_call_analyses ADD COLUMN IF NOT EXISTS speaker_sentiment JSONB NULL;
ALTER TABLE ai_call_analyses ADD COLUMN IF NOT EXISTS quality_breakdown JSONB NULL;
ALTER TABLE ai_call_analyses ADD COLUMN IF NOT EXISTS outcome_details JSONB NULL;
ALTER TABLE ai_call_analyses ADD COLUMN IF NOT EXISTS compliance_flags JSONB NULL;
