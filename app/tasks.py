"""The one list of modules that define job tasks; importing this registers them all."""

from __future__ import annotations

import importlib

TASK_MODULES: tuple[str, ...] = (
    "app.jobs.maintenance",
    "app.checks.task",
    "app.sync.tasks",
    "app.mirror.tasks",
    "app.deliveries.tasks",
    "app.notify.tasks",
    "app.requests.executor",
    "app.requests.github_runs",
    "app.requests.steps.terraform_file",
    "app.requests.retention",
)

for _name in TASK_MODULES:
    importlib.import_module(_name)
