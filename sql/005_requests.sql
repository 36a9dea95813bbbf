-- Service requests: what a developer asked for (an item or a bundle), the plan
-- it was given at submission (a snapshot: later catalog changes never alter it),
-- its steps and their attempts, manual tickets, and an audit trail of events.

-- Tokens carry who they are: a request's requester is its token's identity.
ALTER TABLE api_tokens ADD COLUMN email text;

CREATE TABLE service_requests (
    id                bigserial PRIMARY KEY,
    request_id        text NOT NULL UNIQUE,            -- req-YYYYMMDD-xxxxxxxx
    catalog_item      text,                            -- exactly one of item / bundle
    catalog_bundle    text,
    catalog_version   text NOT NULL,
    status            text NOT NULL DEFAULT 'submitted'
                      CHECK (status IN ('submitted', 'in_progress', 'waiting_manual',
                                        'completed', 'failed', 'cancelled')),
    -- Resolved parameters without secret fields (those live only in `secrets`).
    bundle_parameters jsonb NOT NULL DEFAULT '{}',
    item_parameters   jsonb NOT NULL DEFAULT '{}',    -- {item: {field: value}}
    -- Secret field values, encrypted with PAO_SECRET_KEY; NULL once the request ends.
    secrets           bytea,
    -- Versions, presentation and fulfillment the plan came from, and the items enabled.
    snapshot          jsonb NOT NULL,
    outputs           jsonb,                           -- {item: {name: value}} when completed
    requester_user_id text NOT NULL,
    requester_team    text,
    requester_email   text,
    submitted_by      text NOT NULL,                   -- the token's user (an admin may submit for others)
    idempotency_key   text,
    body_hash         text,                            -- keyed hash of the submitted body
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CHECK ((catalog_item IS NULL) <> (catalog_bundle IS NULL))
);
CREATE UNIQUE INDEX service_requests_idempotency
    ON service_requests (submitted_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX service_requests_team ON service_requests (requester_team, id DESC);
CREATE INDEX service_requests_status ON service_requests (status, id DESC);

CREATE TABLE request_steps (
    id            bigserial PRIMARY KEY,
    request_id    bigint NOT NULL REFERENCES service_requests (id) ON DELETE CASCADE,
    step_id       text NOT NULL,       -- <item or bundle>.<step id>, unique in the request
    owner_name    text NOT NULL,       -- the item (or bundle) the step belongs to
    name          text NOT NULL,
    step_type     text NOT NULL,       -- HttpPost, GitHubWorkflow, TerraformFile, manual
    config        jsonb NOT NULL,      -- unrendered templates, as planned
    depends_on    text[] NOT NULL DEFAULT '{}',
    outputs_declared text[] NOT NULL DEFAULT '{}',
    on_failure    text NOT NULL DEFAULT 'fail',
    position      integer NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'queued', 'running', 'waiting_manual',
                                    'completed', 'failed', 'cancelled')),
    outputs       jsonb,
    job_tracking  jsonb,
    error         jsonb,               -- the last typed error {type, message, details}
    started_at    timestamptz,
    completed_at  timestamptz,
    UNIQUE (request_id, step_id)
);

CREATE TABLE request_step_attempts (
    step_pk        bigint NOT NULL REFERENCES request_steps (id) ON DELETE CASCADE,
    attempt_number integer NOT NULL,
    status         text NOT NULL,      -- running, completed, failed, retrying
    started_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    error          jsonb,
    PRIMARY KEY (step_pk, attempt_number)
);

CREATE TABLE manual_tickets (
    id            bigserial PRIMARY KEY,
    request_id    bigint NOT NULL REFERENCES service_requests (id) ON DELETE CASCADE,
    step_pk       bigint NOT NULL REFERENCES request_steps (id) ON DELETE CASCADE,
    ticket_system text NOT NULL,
    ticket_id     text,
    ticket_url    text,
    ticket_type   text NOT NULL DEFAULT 'fulfillment',   -- fulfillment or fallback
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    UNIQUE (step_pk, ticket_type)
);

-- Every transition, for the audit trail and the live event stream.
CREATE TABLE request_events (
    id          bigserial PRIMARY KEY,
    request_id  bigint NOT NULL REFERENCES service_requests (id) ON DELETE CASCADE,
    step_id     text,
    event       text NOT NULL,         -- submitted, step_status, status, ...
    from_status text,
    to_status   text,
    actor       text,
    detail      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_events_request ON request_events (request_id, id);

-- Listeners (the SSE stream) wake on this channel; the payload is the request id.
CREATE FUNCTION request_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pao_request_events', NEW.request_id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER request_events_notify AFTER INSERT ON request_events
    FOR EACH ROW EXECUTE FUNCTION request_events_notify();
