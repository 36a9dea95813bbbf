"""The one list of feature modules whose settings readers must be registered.

Each module named here calls ``app.config.FEATURE_READERS[...] = reader`` on import.
"""

from __future__ import annotations

import importlib

FEATURE_CONFIG_MODULES: tuple[str, ...] = (
    "app.mirror.config",
    "app.deliveries.config",
    "app.metrics_endpoint",
    "app.notify.config",
    "app.console.config",
    "app.requests.config",
    "app.sync.config",
)

for _name in FEATURE_CONFIG_MODULES:
    importlib.import_module(_name)
