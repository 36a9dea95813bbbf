"""The web console: server-rendered pages (Jinja2) for people, beside the REST API for machines.

``render.py`` (templates, HTML errors), ``catalog.py`` (browse the catalog). Each page
module exposes ``routes``, registered through ``app.web.ROUTE_MODULES``.
"""
