-- Analysis details beyond the Laravel contract's columns (applied once, tracked
-- in callscribe_migrations).
ALTER TABLE ai_call_analyses ADD COLUMN speaker_sentiment TEXT NULL;
ALTER TABLE ai_call_analyses ADD COLUMN quality_breakdown TEXT NULL;
ALTER TABLE ai_call_analyses ADD COLUMN outcome_details TEXT NULL;
ALTER TABLE ai_call_analyses ADD COLUMN compliance_flags TEXT NULL;
