-- Operations: missed-delivery recovery.

-- One row per GitHub delivery (its GUID, the X-GitHub-Delivery header) PAO asked
-- GitHub to redeliver. The primary key is what makes "never twice" hold across
-- processes: the periodic job and `pao deliveries recover` insert here first.
CREATE TABLE delivery_redeliveries (
    guid                text PRIMARY KEY,
    hook_delivery_id    bigint NOT NULL,      -- GitHub's id of the attempt redelivered
    event               text NOT NULL,
    action              text,
    reason              text NOT NULL CHECK (reason IN ('failed', 'unrecorded')),
    status_code         integer NOT NULL,     -- what GitHub saw; 0 when it got no answer
    requested_by        text NOT NULL,        -- 'periodic' or 'cli'
    requested_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_redeliveries_requested ON delivery_redeliveries (requested_at);

-- How far back the periodic recovery has looked: one row.
CREATE TABLE delivery_recovery_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    checked_until   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
