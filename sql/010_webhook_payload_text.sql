-- Webhook payloads are kept as the text GitHub sent, no longer as jsonb: parsing 7 KB of
-- JSON into jsonb and compressing it with pglz took about a third of PostgreSQL's time
-- per delivery. Intake still stores only payloads jsonb can read (it asks PostgreSQL
-- about the rare doubtful ones), so `payload::jsonb` works on every row.
ALTER TABLE webhook_events ALTER COLUMN payload TYPE text USING payload::text;

-- lz4 compresses at a small cost where the server has it; otherwise the payload is
-- stored uncompressed (out of line): pglz would cost more than the jsonb parsing saved.
DO $$
BEGIN
    ALTER TABLE webhook_events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    ALTER TABLE webhook_events ALTER COLUMN payload SET STORAGE EXTERNAL;
END
$$;
