-- Which OneDev project holds which GitHub repository's mirror (issue 10).

-- Adopted: the project existed before PAO (PAO_MIRROR_ON_CONFLICT=adopt); PAO then
-- deletes only refs it pushed there itself and leaves the project's default alone.
ALTER TABLE repositories ADD COLUMN onedev_adopted boolean NOT NULL DEFAULT false;

-- Two GitHub repositories whose names cleaned to the same project name could share one
-- project (and prune each other's branches). Keep the oldest mirror in each shared
-- project; the others lose it and are marked failed, so the next refresh gives each its
-- own project.
UPDATE repositories r
   SET onedev_project_id = NULL, onedev_project_path = NULL, onedev_url = NULL,
       last_synced_refs = '{}'::jsonb, refs_digest = NULL, sync_status = 'failed',
       error_message = 'shared a OneDev project with another mirror; the next refresh '
                       'gives it a project of its own',
       updated_at = now()
 WHERE r.onedev_project_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM repositories o
                WHERE o.onedev_project_id = r.onedev_project_id AND o.id < r.id);

-- One project, one GitHub repository.
CREATE UNIQUE INDEX repositories_onedev_project ON repositories (onedev_project_id)
    WHERE onedev_project_id IS NOT NULL;

-- Refs OneDev refused in a sync that otherwise succeeded (ref names, a JSON array).
ALTER TABLE sync_logs ADD COLUMN refs_refused jsonb;
