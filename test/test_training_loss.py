"""TransT loss against hand-computed values."""
import math

import pytest
import torch

from transt_ros.training.loss import TransTLoss, box_cxcywh_to_xyxy, box_iou_giou, positive_mask


def test_positive_cells_are_the_cells_whose_centres_lie_in_the_box():
    # 4x4 map: centres at 0.125, 0.375, 0.625, 0.875; box x in [0.2, 0.7], y in [0.3, 0.9].
    box = torch.tensor([[0.45, 0.6, 0.5, 0.6]])
    mask = positive_mask(box, 4, 4).view(4, 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1:4, 1:3] = True
    assert torch.equal(mask, expected)


def test_positive_cells_on_a_non_square_map_and_box_edges_inclusive():
    # 2 rows x 4 columns; box x in [0.375, 0.875] hits the centres 0.375, 0.625, 0.875 exactly.
    box = torch.tensor([[0.625, 0.25, 0.5, 0.5]])
    mask = positive_mask(box, 2, 4).view(2, 4)
    assert mask.tolist() == [[False, True, True, True], [False, False, False, False]]


def test_a_box_smaller_than_a_cell_gets_the_cell_holding_its_centre():
    box = torch.tensor([[0.3, 0.6, 0.01, 0.01], [1.2, -0.1, 0.01, 0.01]])
    mask = positive_mask(box, 4, 4)
    assert mask[0].nonzero().flatten().tolist() == [2 * 4 + 1]
    assert mask[1].nonzero().flatten().tolist() == [0 * 4 + 3]  # clamped into the map


def test_iou_and_giou_including_disjoint_boxes():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])
    b = torch.tensor([[0.0, 0.125, 0.5, 0.375], [0.7, 0.7, 0.9, 0.9], [0.5, 0.0, 1.0, 0.5]])
    iou, giou = box_iou_giou(a, b)
    assert iou.tolist() == pytest.approx([0.5, 0.0, 0.0])
    # disjoint: union 0.25 + 0.04, hull 0.9 x 0.9; touching: union 0.5 = hull 0.5 x 1.
    assert giou.tolist() == pytest.approx([0.5, -(0.81 - 0.29) / 0.81, 0.0])


def test_box_conversion():
    assert box_cxcywh_to_xyxy(torch.tensor([0.5, 0.4, 0.2, 0.4])).tolist() == pytest.approx([0.4, 0.2, 0.6, 0.6])


def _outputs(pred_box_cell0):
    """2x2 map; cell 0 predicts target (logits [2, 0]), the others background ([0, 1])."""
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]])
    boxes = torch.full((1, 4, 4), 0.5)
    boxes[0, 0] = torch.tensor(pred_box_cell0)
    return {'pred_logits': logits, 'pred_boxes': boxes}


def test_loss_terms_by_hand():
    # Ground truth x, y in [0, 0.5]: only cell 0 (centre 0.25, 0.25) is positive.
    target = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    losses = TransTLoss()(_outputs([0.8, 0.8, 0.2, 0.2]), target)
    ce_positive = math.log(1 + math.exp(-2))      # -log softmax([2, 0])[0]
    ce_background = math.log(1 + math.exp(-1))    # -log softmax([0, 1])[1]
    ce = (1.0 * ce_positive + 3 * 0.0625 * ce_background) / (1.0 + 3 * 0.0625)
    l1 = 0.55 + 0.55 + 0.3 + 0.3
    giou_loss = 1 + (0.81 - 0.29) / 0.81
    assert losses['loss_ce'].item() == pytest.approx(ce, rel=1e-6)
    assert losses['loss_bbox'].item() == pytest.approx(l1, rel=1e-6)
    assert losses['loss_giou'].item() == pytest.approx(giou_loss, rel=1e-6)
    assert losses['loss'].item() == pytest.approx(8.334 * ce + 5 * l1 + 2 * giou_loss, rel=1e-6)
    assert losses['num_positives'].item() == 1
    assert losses['iou'].item() == 0.0


def test_regression_terms_are_divided_by_the_number_of_positives():
    # Two samples, 1 + 4 positives (second box covers the whole 2x2 map); perfect boxes on
    # sample 1, a 0.1 offset in cx on every cell of sample 0 -> L1 sum 0.1 over 5 positives.
    target = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    logits = torch.zeros(2, 4, 2)
    boxes = target[:, None, :].repeat(1, 4, 1).clone()
    boxes[0, :, 0] += 0.1
    losses = TransTLoss()({'pred_logits': logits, 'pred_boxes': boxes}, target)
    assert losses['num_positives'].item() == 5
    assert losses['loss_bbox'].item() == pytest.approx(0.1 / 5, rel=1e-5)


def test_custom_weights_and_feature_size_check():
    target = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    losses = TransTLoss(ce_weight=1.0, bbox_weight=0.0, giou_weight=0.0, background_weight=1.0)(
        _outputs([0.25, 0.25, 0.5, 0.5]), target)
    expected_ce = (math.log(1 + math.exp(-2)) + 3 * math.log(1 + math.exp(-1))) / 4
    assert losses['loss'].item() == pytest.approx(expected_ce, rel=1e-6)
    assert losses['iou'].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='cells'):
        TransTLoss()(_outputs([0.5] * 4), target, feature_size=(3, 3))


def test_loss_backpropagates_to_logits_and_boxes():
    outputs = _outputs([0.8, 0.8, 0.2, 0.2])
    for value in outputs.values():
        value.requires_grad_(True)
    TransTLoss()(outputs, torch.tensor([[0.25, 0.25, 0.5, 0.5]]))['loss'].backward()
    assert outputs['pred_logits'].grad.abs().sum() > 0
    assert outputs['pred_boxes'].grad[0, 0].abs().sum() > 0
    assert outputs['pred_boxes'].grad[0, 1:].abs().sum() == 0  # background cells: no box loss
