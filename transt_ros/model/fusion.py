"""TransT's feature fusion network: N layers of ECA+CFA on both branches, a final CFA.

All sequences are batch-first (B, L, C); ``pos_*`` are positional encodings of the same
shape, added to queries and keys (never to values), as in the paper.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .attention import MultiheadAttention


def _with_pos(x, pos):
    return x if pos is None else x + pos



class FusionLayer(nn.Module):
    """One ECA (self-attention) + CFA (cross-attention + FFN) on both branches.

    Branch 1 is the template, branch 2 the search region.
    """

    def __init__(self, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.self_attn1 = MultiheadAttention(d_model, nhead, dropout)
        self.self_attn2 = MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn1 = MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn2 = MultiheadAttention(d_model, nhead, dropout)
        self.linear11 = nn.Linear(d_model, dim_feedforward)
        self.linear12 = nn.Linear(dim_feedforward, d_model)
        self.linear21 = nn.Linear(d_model, dim_feedforward)
        self.linear22 = nn.Linear(dim_feedforward, d_model)
        for i in (1, 2):
            for j in (1, 2, 3):
                setattr(self, f'norm{i}{j}', nn.LayerNorm(d_model))
        self.dropout = nn.Dropout(dropout)

    def self_attend_template(self, src1, pos1):
        """ECA on the template branch (depends on the template only)."""
        q1 = _with_pos(src1, pos1)
        return self.norm11(src1 + self.dropout(self.self_attn1(q1, q1, src1)))

    def forward(self, src1, src2, pos1, pos2, src1_attended=None):
        """src1 (B, Lt, C) template, src2 (B, Ls, C) search -> updated (src1, src2).

        ``src1_attended`` may carry a cached ``self_attend_template(src1, pos1)``.
        """
        src1 = self.self_attend_template(src1, pos1) if src1_attended is None else src1_attended
        q2 = _with_pos(src2, pos2)
        src2 = self.norm21(src2 + self.dropout(self.self_attn2(q2, q2, src2)))

        q1, q2 = _with_pos(src1, pos1), _with_pos(src2, pos2)
        cross1 = self.multihead_attn1(q1, q2, src2)
        cross2 = self.multihead_attn2(q2, q1, src1)

        src1 = self.norm12(src1 + self.dropout(cross1))
        src1 = self.norm13(src1 + self.dropout(self.linear12(self.dropout(F.relu(self.linear11(src1), inplace=True)))))
        src2 = self.norm22(src2 + self.dropout(cross2))
        src2 = self.norm23(src2 + self.dropout(self.linear22(self.dropout(F.relu(self.linear21(src2), inplace=True)))))
        return src1, src2


class Encoder(nn.Module):
    def __init__(self, num_layers, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.layers = nn.ModuleList(
            FusionLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_layers))

    def forward(self, src1, src2, pos1, pos2, first_template_attended=None):
        for index, layer in enumerate(self.layers):
            cached = first_template_attended if index == 0 else None
            src1, src2 = layer(src1, src2, pos1, pos2, src1_attended=cached)
        return src1, src2


class DecoderLayer(nn.Module):
    """The final CFA: search queries attend to the template, then an FFN."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt, memory, pos_tgt, pos_memory):
        attended = self.multihead_attn(_with_pos(tgt, pos_tgt), _with_pos(memory, pos_memory), memory)
        tgt = self.norm1(tgt + self.dropout(attended))
        return self.norm2(tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(tgt), inplace=True)))))


class Decoder(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(d_model, nhead, dim_feedforward, dropout)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt, memory, pos_tgt, pos_memory):
        for layer in self.layers:
            tgt = layer(tgt, memory, pos_tgt, pos_memory)
        return self.norm(tgt)


class FeatureFusionNetwork(nn.Module):
    def __init__(self, d_model=256, nhead=8, num_layers=4, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.encoder = Encoder(num_layers, d_model, nhead, dim_feedforward, dropout)
        self.decoder = Decoder(d_model, nhead, dim_feedforward, dropout)

    def forward(self, template, search, pos_template, pos_search, first_template_attended=None):
        """template (B, Lt, C), search (B, Ls, C) -> fused search features (B, Ls, C)."""
        memory_template, memory_search = self.encoder(
            template, search, pos_template, pos_search, first_template_attended)
        return self.decoder(memory_search, memory_template, pos_search, pos_template)
