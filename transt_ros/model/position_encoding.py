"""Sine positional encoding (DETR's ``PositionEmbeddingSine``, normalised, no padding)."""
from __future__ import annotations

import math

import torch


def sine_position_encoding(height: int, width: int, num_pos_feats: int, temperature: float = 10000.0,
                           device=None, dtype=torch.float32) -> torch.Tensor:
    """Return the (1, 2*num_pos_feats, height, width) encoding of an unpadded feature map.

    Channels ``[0, num_pos_feats)`` encode y, the rest x; positions are 1-based, divided by
    the last position (+1e-6) and scaled to 2*pi, as in DETR with ``normalize=True``.
    """
    eps, scale = 1e-6, 2 * math.pi
    y_embed = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(height, width)
    x_embed = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(height, width)
    y_embed = y_embed / (y_embed[-1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_pos_feats)
    pos_x = x_embed[:, :, None] / dim_t
    pos_y = y_embed[:, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, 0::2].sin(), pos_x[:, :, 1::2].cos()), dim=3).flatten(2)
    pos_y = torch.stack((pos_y[:, :, 0::2].sin(), pos_y[:, :, 1::2].cos()), dim=3).flatten(2)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1).unsqueeze(0).to(dtype)
