"""The TransT network: backbone, 1x1 projection, feature fusion, heads."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbone import Backbone
from .config import TransTConfig
from .fusion import FeatureFusionNetwork
from .heads import MLP
from .position_encoding import sine_position_encoding


@dataclass(frozen=True)
class TemplateFeatures:
    """Everything the search step needs from the template, computed once per target.

    ``tokens`` and ``pos`` are (B, Lt, C); ``attended`` is the first fusion layer's
    template self-attention, which does not depend on the search region.
    Frozen, and its tensors are never written in place: caches keyed by a template object
    (``tracker.TemplateStack``, the CUDA graphs' ``template_source``) rely on one object always
    holding the same features.
    """

    tokens: torch.Tensor
    pos: torch.Tensor
    attended: torch.Tensor | None = None


class TransT(nn.Module):
    def __init__(self, config: TransTConfig):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config.backbone)
        self.input_proj = nn.Conv2d(self.backbone.num_channels, config.d_model, kernel_size=1)
        self.featurefusion_network = FeatureFusionNetwork(
            config.d_model, config.nhead, config.num_fusion_layers, config.dim_feedforward, config.dropout)
        self.class_embed = MLP(config.d_model, config.d_model, 2, 3)
        self.bbox_embed = MLP(config.d_model, config.d_model, 4, 3)
        # Position encodings per (height, width, device, dtype). The encoding is a pure function of
        # those and of config.d_model, which is fixed for this instance (a deepcopy carries the cache
        # along with the same config), so an entry cannot go stale; a moved or cast model gets new
        # keys. Entries are only read, never written in place (an entry made under inference_mode
        # is also fine in a later training forward: only added, never saved for backward). The
        # CUDA graph step fills its entries in the warm-up runs, before capturing.
        self._pos_cache: dict = {}
        self.cache_template_attention = True
        self.channels_last = False

    def position_encoding(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """(1, H*W, C) sine encoding for an HxW feature map, cached per shape/device/dtype."""
        key = (height, width, like.device, like.dtype)
        if key not in self._pos_cache:
            pos = sine_position_encoding(height, width, self.config.d_model // 2, device=like.device)
            self._pos_cache[key] = pos.flatten(2).transpose(1, 2).to(like.dtype).contiguous()
        return self._pos_cache[key]

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) normalised images -> tokens (B, H/8*W/8, C) and their encoding.

        With ``channels_last`` the convolutions run in NHWC layout, and the tokens are a view
        of the projected feature map (no copy).
        """
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        features = self.input_proj(self.backbone(images))
        _, _, height, width = features.shape
        tokens = features.flatten(2).transpose(1, 2)
        return tokens, self.position_encoding(height, width, tokens)

    def template(self, template: torch.Tensor) -> TemplateFeatures:
        tokens, pos = self.embed(template)
        pos = pos.expand(tokens.shape[0], -1, -1)
        first_layer = self.featurefusion_network.encoder.layers[0]
        cache = self.cache_template_attention and not self.training
        attended = first_layer.self_attend_template(tokens, pos) if cache else None
        return TemplateFeatures(tokens, pos, attended)

    def track(self, template: TemplateFeatures, search: torch.Tensor) -> dict:
        """search (B, 3, Hs, Ws) -> {'pred_logits': (B, N, 2), 'pred_boxes': (B, N, 4)}.

        N = Hs/8 * Ws/8 cells in row-major order; logit 0 is the target class; boxes are
        sigmoid-normalised (cx, cy, w, h) relative to the search crop.
        """
        tokens, pos = self.embed(search)
        pos = pos.expand(tokens.shape[0], -1, -1)
        fused = self.featurefusion_network(template.tokens, tokens, template.pos, pos, template.attended)
        return {'pred_logits': self.class_embed(fused), 'pred_boxes': self.bbox_embed(fused).sigmoid()}

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> dict:
        """template (B, 3, Ht, Wt), search (B, 3, Hs, Ws), ImageNet-normalised -> see ``track``."""
        return self.track(self.template(template), search)

    def set_fused_attention(self, enabled: bool) -> None:
        """Switch every attention between the fused kernel and the eager reference."""
        for module in self.modules():
            if hasattr(module, 'fused'):
                module.fused = enabled
