"""TransT's training loss (Chen et al., CVPR 2021, Sec. 3.3; the released ``SetCriterion``).

Positives are the search feature-map cells whose centres lie inside the ground-truth box;
every other cell is background. Classification: 2-class cross-entropy (index 0 = target)
with class weights [1, ``background_weight``] (weighted mean, as ``F.cross_entropy``).
Regression on the positives only: L1 and (1 - GIoU) of the predicted normalised
(cx, cy, w, h) against the ground truth, summed and divided by the number of positives
(averaged over processes under ``torch.distributed``, as DETR). Total =
``ce_weight`` x CE + ``bbox_weight`` x L1 + ``giou_weight`` x GIoU.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_iou_giou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise IoU and generalised IoU of (..., 4) (x0, y0, x1, y1) boxes."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    top_left = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    inter_wh = (bottom_right - top_left).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = area1 + area2 - inter
    iou = inter / union
    hull_wh = (torch.maximum(boxes1[..., 2:], boxes2[..., 2:]) - torch.minimum(boxes1[..., :2], boxes2[..., :2]))
    hull = hull_wh[..., 0] * hull_wh[..., 1]
    return iou, iou - (hull - union) / hull


def positive_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 4) normalised (cx, cy, w, h) -> (B, height * width) bool, row-major cells.

    Cell (i, j) is positive when its centre ((j + 0.5) / width, (i + 0.5) / height) lies in
    the box (edges included). A box that contains no cell centre (smaller than a cell) gets
    the one cell containing its centre, so every sample has a positive.
    """
    x0, y0, x1, y1 = box_cxcywh_to_xyxy(boxes).unbind(-1)
    centres_x = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
    centres_y = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
    inside_x = (centres_x[None] >= x0[:, None]) & (centres_x[None] <= x1[:, None])
    inside_y = (centres_y[None] >= y0[:, None]) & (centres_y[None] <= y1[:, None])
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).flatten(1)
    empty = ~mask.any(dim=1)
    if empty.any():
        column = (boxes[:, 0] * width).floor().clamp(0, width - 1).long()
        row = (boxes[:, 1] * height).floor().clamp(0, height - 1).long()
        mask[empty, (row * width + column)[empty]] = True
    return mask


class TransTLoss(nn.Module):
    def __init__(self, ce_weight: float = 8.334, bbox_weight: float = 5.0, giou_weight: float = 2.0,
                 background_weight: float = 0.0625):
        super().__init__()
        self.ce_weight, self.bbox_weight, self.giou_weight = ce_weight, bbox_weight, giou_weight
        self.register_buffer('class_weights', torch.tensor([1.0, background_weight]), persistent=False)

    @classmethod
    def from_config(cls, loss) -> TransTLoss:
        return cls(loss.ce_weight, loss.bbox_weight, loss.giou_weight, loss.background_weight)

    def forward(self, outputs: dict, target_boxes: torch.Tensor, feature_size: tuple[int, int] | None = None):
        """outputs: 'pred_logits' (B, N, 2), 'pred_boxes' (B, N, 4); target_boxes (B, 4)
        normalised (cx, cy, w, h); ``feature_size`` (H, W) with H * W = N (default square).

        Returns a dict of 0-d tensors: 'loss' (weighted total, differentiable), 'loss_ce',
        'loss_bbox', 'loss_giou', and detached statistics 'iou' (mean IoU of the positives'
        boxes) and 'num_positives'.
        """
        logits = outputs['pred_logits'].float()
        pred_boxes = outputs['pred_boxes'].float()
        target_boxes = target_boxes.float()
        batch, cells, _ = logits.shape
        if feature_size is None:
            side = math.isqrt(cells)
            feature_size = (side, side)
        if feature_size[0] * feature_size[1] != cells:
            raise ValueError(f'feature map {feature_size} does not have {cells} cells')
        positives = positive_mask(target_boxes, *feature_size)
        labels = (~positives).long()
        loss_ce = F.cross_entropy(logits.transpose(1, 2), labels, self.class_weights.to(logits.device))

        batch_index, cell_index = positives.nonzero(as_tuple=True)
        matched = pred_boxes[batch_index, cell_index]
        target = target_boxes[batch_index]
        num_positives = torch.tensor(float(len(batch_index)), device=logits.device)
        normaliser = num_positives.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(normaliser)
            normaliser = normaliser / dist.get_world_size()
        normaliser = normaliser.clamp(min=1.0)
        loss_bbox = F.l1_loss(matched, target, reduction='none').sum() / normaliser
        iou, giou = box_iou_giou(box_cxcywh_to_xyxy(matched), box_cxcywh_to_xyxy(target))
        loss_giou = (1 - giou).sum() / normaliser
        total = self.ce_weight * loss_ce + self.bbox_weight * loss_bbox + self.giou_weight * loss_giou
        return {'loss': total, 'loss_ce': loss_ce, 'loss_bbox': loss_bbox, 'loss_giou': loss_giou,
                'iou': iou.detach().mean() if len(iou) else torch.zeros((), device=logits.device),
                'num_positives': num_positives}
