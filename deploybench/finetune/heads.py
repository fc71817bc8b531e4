"""Find a model's classifier head (timm get_classifier, else the last nn.Linear) and freeze the rest."""
from __future__ import annotations

import torch
from torch import nn


def classifier_module(model: nn.Module) -> nn.Module:
    """The final classification layer: timm's get_classifier(), else the model's last nn.Linear."""
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__}: no classifier found (no get_classifier() and no nn.Linear)")
    return linears[-1]


def head_param_names(model: nn.Module) -> set[str]:
    """Names (as in named_parameters) of the classifier head's parameters."""
    ids = {id(p) for p in classifier_module(model).parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def freeze_all_but_head(model: nn.Module) -> list[torch.nn.Parameter]:
    """Linear probe: only the head trains; returns the trainable parameters."""
    head = head_param_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in head)
    return [p for p in model.parameters() if p.requires_grad]


def freeze_batchnorm_stats(model: nn.Module) -> None:
    """Keep BatchNorm running stats of frozen layers fixed (call after model.train())."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
