-- Service requests, the gaps: notifications sent once, and retention.

-- One row per (notification target, event + what it is about): a notification whose key
-- a target already has is not queued again (app/notify). Purged with the job history.
CREATE TABLE notification_keys (
    target     text NOT NULL,          -- slack, webhook, team:NAME (never a URL)
    dedup_key  text NOT NULL,          -- event:subject, e.g. request.status_changed:req-...:failed:1
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, dedup_key)
);
CREATE INDEX notification_keys_created ON notification_keys (created_at);

-- The retention purge finds ended requests by age without reading open ones.
CREATE INDEX service_requests_ended ON service_requests (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
-- Deleting a request cascades to its tickets: without this, each delete scans them all.
CREATE INDEX manual_tickets_request ON manual_tickets (request_id);
