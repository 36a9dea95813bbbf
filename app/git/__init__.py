"""Git plumbing shared by the catalog sync, the pull-request checks and the mirror.

- ``run``: ``run_git``, the one way PAO starts git (minimal environment, token in
  the environment only, scrubbed output, typed errors, process-group kill).
- ``env``: the environment rule for every subprocess PAO starts.
- ``catalog``: the catalog repository's caches for the sync (``GitCache``) and the checks
  (``RepoCache``).
- ``repo``: ``BareRepository``, a bare cache (atomic creation, fetch by URL, bulk
  reads), and ``cache_dir``, the one rule for where caches live.
- ``locks``: ``writing(cache)``, one writer per cache; clears the ref locks a killed
  git left.
- ``orphans``: stopping the git helpers a killed PAO process left running.
- ``parse``: parsers for ``ls-tree``, ``diff --raw`` and ``cat-file --batch`` output.
"""
