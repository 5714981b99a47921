-- Analysis details beyond the Laravel contract's columns (applied once, tracked
-- in callscribe_migrations).
ALTER TABLE ai_call_analyses ADD COLUMN speaker_sentiment JSON NULL;
ALTER TABLE ai_call_analyses ADD COLUMN quality_breakdown JSON NULL;
ALTER TABLE ai_call_analyses ADD COLUMN outcome_details JSON NULL;
ALTER TABLE ai_call_analyses ADD COLUMN compliance_flags JSON NULL;
