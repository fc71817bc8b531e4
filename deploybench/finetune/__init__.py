"""Fine-tuning stage: the seed-study protocol, resumable checkpoints; load_checkpoint is backbones.load_model."""
from ..backbones import load_model as load_checkpoint
from .heads import classifier_module, freeze_all_but_head, head_param_names
from .trainer import finetune_run, is_complete

__all__ = ["finetune_run", "load_checkpoint", "is_complete", "classifier_module", "freeze_all_but_head",
           "head_param_names"]
