"""Backbone registry: `list_backbones`, `get_backbone`, `create_backbone`, `count_gmacs`, `register_backbone`."""
from . import catalog  # noqa: F401  (registers the built-in backbones)
from .registry import (BackboneInfo, count_gmacs, create_backbone, get_backbone, list_backbones,
                       register_backbone)

__all__ = ["BackboneInfo", "count_gmacs", "create_backbone", "get_backbone", "list_backbones", "register_backbone"]
