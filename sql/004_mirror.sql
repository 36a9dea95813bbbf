-- Mirrors of starred GitHub repositories in OneDev (seed 002, issue 5).

-- One row per GitHub repository we mirror, keyed by GitHub's repository id so a
-- rename or transfer on GitHub keeps the same mirror.
CREATE TABLE repositories (
    id                     bigserial PRIMARY KEY,
    github_repo_id         bigint NOT NULL UNIQUE,
    github_url             text NOT NULL,
    github_clone_url       text NOT NULL,
    github_owner           text NOT NULL,
    github_name            text NOT NULL,
    github_full_name       text NOT NULL,
    github_default_branch  text,
    github_is_private      boolean NOT NULL DEFAULT false,
    github_size_kb         bigint NOT NULL DEFAULT 0,
    installation_id        bigint,
    -- What asked for the mirror first: star, poll, manual (CLI/API).
    source                 text NOT NULL DEFAULT 'star',
    starred_by             text,
    onedev_project_id      bigint,
    onedev_project_path    text,
    onedev_url             text,
    sync_status            text NOT NULL DEFAULT 'pending'
                           CHECK (sync_status IN ('pending', 'in_progress', 'completed', 'failed')),
    retry_count            integer NOT NULL DEFAULT 0,
    last_synced_at         timestamptz,
    -- refs/heads/* and refs/tags/* -> sha as last pushed, and a digest of that map:
    -- an update pushes only when the digest moved.
    last_synced_refs       jsonb NOT NULL DEFAULT '{}',
    refs_digest            text,
    error_message          text,
    unstarred_at           timestamptz,
    deleted_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repositories_full_name ON repositories (lower(github_full_name));
CREATE INDEX repositories_status ON repositories (sync_status, id);

-- One row per sync attempt (and per unstar/delete), newest read first.
CREATE TABLE sync_logs (
    id               bigserial PRIMARY KEY,
    repository_id    bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    event_type       text NOT NULL,   -- star, poll, push, refresh, manual, unstar, delete
    status           text NOT NULL,   -- success, retrying, failed, recorded
    duration_seconds double precision,
    refs_pushed      integer,
    bytes_fetched    bigint,
    job_id           bigint,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_logs_repository ON sync_logs (repository_id, id DESC);

-- The last stars list seen per polled user, to tell new stars from removed ones.
CREATE TABLE mirror_stars (
    user_login     text NOT NULL,
    github_repo_id bigint NOT NULL,
    full_name      text NOT NULL,
    seen_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_login, github_repo_id)
);
