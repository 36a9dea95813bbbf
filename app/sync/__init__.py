"""Catalog sync: the catalog repository's YAML files, kept in PostgreSQL on every push.

Data flow: a push webhook (``app.handlers.catalog_push``), ``pao sync``,
``POST /api/v1/sync`` or the start-up catch-up (``startup``) queue one
``sync_catalog`` job per repository (``tasks``). The job fetches the bare git
cache (``app.git.catalog.GitCache``), works out what changed since the last processed commit
(``changes``), reads the changed blobs in one ``git cat-file --batch``
(``GitCache.read_blobs``), parses them (``app.catalog.parse``), plans the
database changes without I/O (``plan``) and writes them with the run record in
one transaction (``store``). ``engine`` ties those steps together.
"""
