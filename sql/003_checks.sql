-- Check runs on catalog pull requests.

-- The newest check wanted per pull request. Webhook handlers upsert it; the queued
-- job (one waiting per PR, by queueing lock) reads it when it starts, so a newer
-- push supersedes an older one that is still waiting.
CREATE TABLE catalog_check_requests (
    repository      text NOT NULL,            -- owner/name
    pr_number       integer NOT NULL,
    installation_id bigint,
    head_sha        text NOT NULL,
    head_ref        text,
    base_ref        text NOT NULL,
    -- A rerequest asks for a new run even when this head was already checked.
    rerun           boolean NOT NULL DEFAULT false,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository, pr_number)
);

-- One row per check run PAO created on GitHub; a retried job reuses its run.
CREATE TABLE catalog_check_runs (
    id              bigserial PRIMARY KEY,
    repository      text NOT NULL,
    pr_number       integer NOT NULL,
    head_sha        text NOT NULL,
    base_sha        text,
    check_run_id    bigint,
    status          text NOT NULL DEFAULT 'in_progress'
                    CHECK (status IN ('in_progress', 'completed')),
    conclusion      text,
    files           integer,
    errors          integer,
    warnings        integer,
    notices         integer,
    job_id          bigint,
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    error           text
);
CREATE INDEX catalog_check_runs_head ON catalog_check_runs (repository, pr_number, head_sha, id DESC);
