"""PAO: the platform catalog GitHub App."""

__version__ = "0.1.0"
