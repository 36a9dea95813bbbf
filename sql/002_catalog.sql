-- Catalog sync: the items and bundles from the catalog repository, the files
-- they came from, and the bookkeeping of every sync run.

-- Where each catalog repository's sync stands: the last commit fully processed.
CREATE TABLE catalog_sync_state (
    repository         text NOT NULL,  -- normalised PAO_REPO_URL
    branch             text NOT NULL,
    last_processed_sha text,
    processed_at       timestamptz,
    last_run_id        bigint,
    PRIMARY KEY (repository, branch)
);

-- One row per sync attempt. The row is created (status running) in its own
-- transaction; everything else a sync writes commits with its final status.
CREATE TABLE catalog_sync_runs (
    id              bigserial PRIMARY KEY,
    repository      text NOT NULL,
    branch          text NOT NULL,
    from_sha        text,
    to_sha          text,
    mode            text CHECK (mode IN ('full', 'incremental', 'reconcile', 'noop')),
    triggered_by    text NOT NULL CHECK (triggered_by IN ('webhook', 'manual', 'startup')),
    delivery_id     text,
    job_id          bigint,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'completed', 'completed_with_errors', 'failed')),
    files_changed   integer NOT NULL DEFAULT 0,
    items_added     integer NOT NULL DEFAULT 0,
    items_updated   integer NOT NULL DEFAULT 0,
    items_removed   integer NOT NULL DEFAULT 0,
    bundles_added   integer NOT NULL DEFAULT 0,
    bundles_updated integer NOT NULL DEFAULT 0,
    bundles_removed integer NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    error           text
);
CREATE INDEX catalog_sync_runs_repo ON catalog_sync_runs (repository, branch, id DESC);
CREATE INDEX catalog_sync_runs_running ON catalog_sync_runs (repository, branch) WHERE status = 'running';

-- Files that did not parse or validate in a run, or lost a name to another file.
CREATE TABLE catalog_sync_errors (
    id       bigserial PRIMARY KEY,
    run_id   bigint NOT NULL REFERENCES catalog_sync_runs (id) ON DELETE CASCADE,
    path     text NOT NULL,
    line     integer NOT NULL DEFAULT 1,
    col      integer NOT NULL DEFAULT 1,
    code     text NOT NULL,
    message  text NOT NULL
);
CREATE INDEX catalog_sync_errors_run ON catalog_sync_errors (run_id);

-- Every catalog file at the last processed commit: lets a sync skip unchanged
-- blobs and decide which file owns a name without reading the others.
CREATE TABLE catalog_files (
    repository  text NOT NULL,
    path        text NOT NULL,
    blob_oid    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('item', 'bundle')),
    -- The name this file holds (its last valid claim); NULL when it never parsed.
    identifier  text,
    error       text,  -- why the current blob is not in use; NULL when it is
    PRIMARY KEY (repository, path)
);
CREATE INDEX catalog_files_identifier ON catalog_files (repository, kind, identifier);

CREATE TABLE catalog_items (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    display_name      text,
    version           text NOT NULL,
    description       text NOT NULL,
    owner             text NOT NULL,
    tags              jsonb NOT NULL DEFAULT '[]',
    category          text,
    presentation      jsonb,
    fulfillment       jsonb,
    document          jsonb NOT NULL,
    source_repository text NOT NULL,
    source_file_path  text NOT NULL,
    source_file_hash  text NOT NULL,
    last_seen_sha     text NOT NULL,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_items_active_name ON catalog_items (name) WHERE is_active;
CREATE INDEX catalog_items_tags ON catalog_items USING gin (tags jsonb_path_ops);
CREATE INDEX catalog_items_owner ON catalog_items (owner, name);
CREATE INDEX catalog_items_category ON catalog_items (category, name);

CREATE TABLE catalog_bundles (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    display_name      text,
    version           text NOT NULL,
    description       text NOT NULL,
    owner             text NOT NULL,
    tags              jsonb NOT NULL DEFAULT '[]',
    category          text,
    bundle_definition jsonb NOT NULL DEFAULT '{}',  -- required_items, optional_items
    presentation      jsonb,
    fulfillment       jsonb,
    document          jsonb NOT NULL,
    source_repository text NOT NULL,
    source_file_path  text NOT NULL,
    source_file_hash  text NOT NULL,
    last_seen_sha     text NOT NULL,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_bundles_active_name ON catalog_bundles (name) WHERE is_active;
CREATE INDEX catalog_bundles_tags ON catalog_bundles USING gin (tags jsonb_path_ops);
