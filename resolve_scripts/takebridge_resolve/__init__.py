"""TakeBridge for DaVinci Resolve (Edit page scripts). Entry points take `resolve` first."""
from .core import Options, ResolveError, Shot, generate, run, selected_items, takes_of  # noqa: F401

__all__ = ["Options", "ResolveError", "Shot", "generate", "run", "selected_items", "takes_of"]
