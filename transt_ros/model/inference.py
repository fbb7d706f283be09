"""Inference-only rewrites of a TransT model: the fast path.

``fast_inference_copy(model)`` returns a copy with BatchNorm folded into the preceding
convolutions (same function, different rounding), convolutions in channels-last layout,
fused attention kernels, and the template-side work cached by ``TransT.template``. The
reference path is the model as built, computing what the authors' code computes: eager
``nn.MultiheadAttention`` arithmetic with its all-False padding mask, separate BatchNorm
layers, template self-attention redone every frame. Both give the golden outputs within the
same tolerances (see the golden tests).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

_CONV_BN_PAIRS = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'))


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        folded.bias.copy_((conv_bias - bn.running_mean) * scale + bn.bias)
    return folded


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every (conv, BatchNorm) pair of a ResNet trunk in place; returns how many."""
    folded = 0
    for child in module.modules():
        for conv_name, bn_name in _CONV_BN_PAIRS:
            conv, bn = getattr(child, conv_name, None), getattr(child, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(child, conv_name, _folded_conv(conv, bn))
                setattr(child, bn_name, nn.Identity())
                folded += 1
        if isinstance(child, nn.Sequential) and len(child) == 2 \
                and isinstance(child[0], nn.Conv2d) and isinstance(child[1], nn.BatchNorm2d):
            child[0], child[1] = _folded_conv(child[0], child[1]), nn.Identity()
            folded += 1
    return folded


def fast_inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` rewritten for speed; ``model`` itself is unchanged."""
    fast = copy.deepcopy(model).eval()
    fold_batchnorm(fast.backbone)
    fast.set_fused_attention(True)
    fast.cache_template_attention = True
    fast.channels_last = True
    fast.backbone.to(memory_format=torch.channels_last)
    fast.input_proj.to(memory_format=torch.channels_last)
    return fast


def reference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy on the plain eager path (no folding, no fused kernels, no caching)."""
    reference = copy.deepcopy(model).eval()
    reference.set_fused_attention(False)
    reference.cache_template_attention = False
    return reference
