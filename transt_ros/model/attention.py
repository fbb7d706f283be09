"""Multi-head attention with ``nn.MultiheadAttention``'s parameter names, batch-first.

Two numerically equivalent paths: ``fused=True`` (default) runs
``F.scaled_dot_product_attention`` (no masks: every tracking crop is fully valid);
``fused=False`` is the reference: exactly the authors' eager computation
(``F.multi_head_attention_forward`` with an all-False key-padding mask, sequence-first).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiheadAttention(nn.Module):
    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.nhead, self.dropout = d_model, nhead, dropout
        self.head_dim = d_model // nhead
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.fused = True
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.nhead, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, C), key and value (B, Lk, C) -> (B, Lq, C)."""
        if not self.fused:
            return self._reference(query, key, value)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = self._split_heads(F.linear(query, w_q, b_q))
        k = self._split_heads(F.linear(key, w_k, b_k))
        v = self._split_heads(F.linear(value, w_v, b_v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, self.d_model))

    def _reference(self, query, key, value):
        """The authors' computation: ``nn.MultiheadAttention`` in (L, B, C) layout, with the
        (all-False) key-padding mask of an unpadded crop and the averaged attention weights."""
        padding_mask = torch.zeros(key.shape[0], key.shape[1], dtype=torch.bool, device=key.device)
        out, _ = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), self.d_model, self.nhead,
            self.in_proj_weight, self.in_proj_bias, None, None, False, self.dropout, self.out_proj.weight,
            self.out_proj.bias, training=self.training, key_padding_mask=padding_mask, need_weights=True)
        return out.transpose(0, 1)
