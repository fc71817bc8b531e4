"""Backbone registry: `list_backbones`, `get_backbone`, `create_backbone`, `count_gmacs`, `register_backbone`;
`load_model(ckpt_dir)` rebuilds a fine-tuned run's model from its checkpoint."""
from . import catalog  # noqa: F401  (registers the built-in backbones)
from .checkpoint import load_model
from .registry import (BackboneInfo, count_gmacs, create_backbone, get_backbone, list_backbones,
                       register_backbone)

__all__ = ["BackboneInfo", "count_gmacs", "create_backbone", "get_backbone", "list_backbones", "load_model",
           "register_backbone"]
