-- The service spine: webhook deliveries, the job queue, and API tokens.

-- Every delivery GitHub sends, valid or not. A redelivery (same X-GitHub-Delivery)
-- is another row with a higher attempt number: the work's own keys deduplicate.
CREATE TABLE webhook_events (
    id              bigserial PRIMARY KEY,
    delivery_id     text NOT NULL,
    attempt         integer NOT NULL DEFAULT 1,
    event           text NOT NULL,
    action          text,
    installation_id bigint,
    repository      text,
    signature_valid boolean NOT NULL,
    payload         jsonb,
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- received: stored, not yet dispatched; queued: jobs created; ignored: no
    -- handler wanted it; rejected: bad signature or payload; processed: jobs done.
    status          text NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'queued', 'ignored', 'rejected', 'processed', 'failed')),
    reason          text,
    job_ids         bigint[] NOT NULL DEFAULT '{}',
    processed_at    timestamptz,
    error           text
);
CREATE INDEX webhook_events_delivery ON webhook_events (delivery_id);
CREATE INDEX webhook_events_received ON webhook_events (received_at DESC);

-- The job queue, with procrastinate's semantics:
--  * queueing_lock: at most one *waiting* (todo) job per key; a second enqueue
--    while one waits returns the waiting job. While one runs, one more may wait.
--  * lock: two jobs with the same lock never run (status doing) at once.
-- Both rules are unique partial indexes, so they hold across processes.
CREATE TABLE jobs (
    id              bigserial PRIMARY KEY,
    task            text NOT NULL,
    args            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'todo'
                    CHECK (status IN ('todo', 'doing', 'succeeded', 'failed', 'cancelled')),
    queueing_lock   text,
    lock            text,
    priority        integer NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 5,
    scheduled_at    timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    heartbeat_at    timestamptz,
    finished_at     timestamptz,
    worker_id       text,
    delivery_id     text,
    result          jsonb,
    last_error      text
);
CREATE UNIQUE INDEX jobs_queueing_lock_todo ON jobs (queueing_lock) WHERE status = 'todo';
CREATE UNIQUE INDEX jobs_lock_doing ON jobs (lock) WHERE status = 'doing';
CREATE INDEX jobs_fetch ON jobs (priority DESC, id) WHERE status = 'todo';
CREATE INDEX jobs_doing_heartbeat ON jobs (heartbeat_at) WHERE status = 'doing';
CREATE INDEX jobs_status_id ON jobs (status, id DESC);

-- One row per attempt, for `pao jobs show` and post-mortems.
CREATE TABLE job_attempts (
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    worker_id   text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text NOT NULL,  -- succeeded, retry, failed, stalled, superseded
    error       text,
    PRIMARY KEY (job_id, attempt)
);

-- Workers LISTEN on this channel; polling covers a missed notification.
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pao_jobs', NEW.task);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'todo') EXECUTE FUNCTION jobs_notify();
CREATE TRIGGER jobs_notify_update AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'todo' AND OLD.status IS DISTINCT FROM 'todo')
    EXECUTE FUNCTION jobs_notify();

-- REST API bearer tokens. Only a SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    prefix      text NOT NULL,
    user_id     text NOT NULL,
    team        text,
    is_admin    boolean NOT NULL DEFAULT false,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

-- Where the App is installed, kept current by installation webhooks, so jobs
-- that start without a webhook (start-up catch-up, polls) know which
-- installation's token reaches a repository.
CREATE TABLE installations (
    id            bigint PRIMARY KEY,
    account_login text NOT NULL,
    account_type  text,
    suspended     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

CREATE TABLE installation_repositories (
    installation_id bigint NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    repository_id   bigint NOT NULL,
    full_name       text NOT NULL,
    PRIMARY KEY (installation_id, repository_id)
);
CREATE INDEX installation_repositories_name ON installation_repositories (lower(full_name));
