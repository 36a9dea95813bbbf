"""Recovery settings: ``PAO_DELIVERY_RECOVERY_INTERVAL`` and ``PAO_DELIVERY_RECOVERY_MAX``."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import FEATURE_READERS, EnvReader


@dataclass(frozen=True)
class RecoverySettings:
    interval: float = 600.0  # seconds between periodic runs; 0: off
    max_per_run: int = 50  # redeliveries requested per run at most


def read(r: EnvReader) -> RecoverySettings:
    """Read the recovery variables; ``PAO_DELIVERY_RECOVERY_INTERVAL=off`` disables the job."""
    raw = r.raw("PAO_DELIVERY_RECOVERY_INTERVAL")
    off = raw is not None and raw.lower() in ("off", "0", "false", "no")
    interval = 0.0 if off else r.duration("PAO_DELIVERY_RECOVERY_INTERVAL", 600.0)
    return RecoverySettings(
        interval=interval,
        max_per_run=r.int("PAO_DELIVERY_RECOVERY_MAX", 50, minimum=1, maximum=1000),
    )


FEATURE_READERS["deliveries"] = read


def recovery_settings(settings: object) -> RecoverySettings:
    """The recovery settings inside ``Settings.extra`` (defaults when absent)."""
    value = (getattr(settings, "extra", None) or {}).get("deliveries")
    return value if isinstance(value, RecoverySettings) else RecoverySettings()
