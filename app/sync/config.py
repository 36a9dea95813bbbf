"""The catalog sync's settings: ``PAO_SYNC_PARSE_PROCESSES``."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import FEATURE_READERS, EnvReader, usable_cpus

MAX_PARSE_PROCESSES = 64


def default_parse_processes() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells it)."""
    return usable_cpus()


@dataclass(frozen=True)
class SyncSettings:
    # Processes that parse a big sync's files (``app.sync.parsing``); 1 parses in a thread.
    parse_processes: int = field(default_factory=default_parse_processes)


def read(r: EnvReader) -> SyncSettings:
    """Read and check the sync's variables; problems go to ``r.problems``."""
    return SyncSettings(parse_processes=r.int("PAO_SYNC_PARSE_PROCESSES", default_parse_processes(),
                                              minimum=1, maximum=MAX_PARSE_PROCESSES))


FEATURE_READERS["sync"] = read


def sync_settings(settings: object) -> SyncSettings:
    """The sync settings inside ``Settings.extra`` (defaults when absent)."""
    extra = getattr(settings, "extra", None) or {}
    value = extra.get("sync")
    return value if isinstance(value, SyncSettings) else SyncSettings()
