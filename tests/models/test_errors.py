#!/usr/bin/env python3
"""Unit tests of models/errors.py: false positives split into components.

  /usr/bin/python3 tests/models/test_errors.py      (a second, CPU)
"""

import os
import sys
import unittest

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import errors     # noqa: E402
import reference  # noqa: E402
import mmsnet     # noqa: E402

SHIPPED = os.path.join(ROOT, "models", "mms-rt.safetensors")


def frame():
    gt = np.zeros((100, 200), bool)
    gt[40:60, 20:120] = True                   # a labeled shaft
    return gt


class FalsePositiveComponents(unittest.TestCase):
    def test_a_perfect_mask_has_none(self):
        gt = frame()
        self.assertEqual(errors.fp_components(gt.copy(), gt, min_area=1), [])

    def test_missed_pixels_are_not_false_positives(self):
        gt = frame()
        pred = gt.copy()
        pred[40:60, 20:60] = False
        self.assertEqual(errors.fp_components(pred, gt, min_area=1), [])

    def test_a_blob_away_from_the_tools_is_elsewhere(self):
        gt = frame()
        pred = gt.copy()
        pred[0:15, 150:190] = True             # a hook at the top edge
        (c,) = errors.fp_components(pred, gt, min_area=1)
        self.assertEqual(c["area"], 15 * 40)
        self.assertEqual(c["box"], (0, 15, 150, 190))
        self.assertFalse(c["along_tool"])

    def test_a_fringe_of_a_labeled_tool_is_along_it(self):
        gt = frame()
        pred = gt.copy()
        pred[36:40, 20:120] = True             # the shaft drawn 4 rows wider
        (c,) = errors.fp_components(pred, gt, min_area=1)
        self.assertTrue(c["along_tool"])

    def test_near_sets_how_close_is_along(self):
        gt = frame()
        pred = gt.copy()
        pred[25:30, 20:120] = True             # 10 rows above the shaft
        self.assertFalse(errors.fp_components(pred, gt, min_area=1, near=5)[0]["along_tool"])
        self.assertTrue(errors.fp_components(pred, gt, min_area=1, near=12)[0]["along_tool"])

    def test_small_specks_are_left_out(self):
        gt = frame()
        pred = gt.copy()
        pred[80:85, 150:155] = True            # 25 pixels
        self.assertEqual(errors.fp_components(pred, gt, min_area=26), [])
        self.assertEqual(len(errors.fp_components(pred, gt, min_area=25)), 1)

    def test_a_diagonal_wire_is_one_component(self):
        gt = frame()
        pred = gt.copy()
        for i in range(30):                    # one pixel wide, corners touching only
            pred[65 + i, 150 + i] = True
        (c,) = errors.fp_components(pred, gt, min_area=1)
        self.assertEqual(c["area"], 30)

    def test_largest_first(self):
        gt = frame()
        pred = gt.copy()
        pred[0:5, 150:160] = True              # 50, first in raster order
        pred[10:30, 150:190] = True            # 800
        pred[80:100, 150:160] = True           # 200
        self.assertEqual([c["area"] for c in errors.fp_components(pred, gt, min_area=1)], [800, 200, 50])


class Segment(unittest.TestCase):
    """mmsnet.segment, which errors.py and agreement.py run, reads the card."""

    def setUp(self):
        self.model, self.meta = reference.load(SHIPPED)
        self.rgb = torch.randint(0, 256, (90, 160, 3), generator=torch.Generator().manual_seed(0),
                                 dtype=torch.uint8)

    def test_mask_has_the_frame_size(self):
        self.assertEqual(tuple(mmsnet.segment(self.model, self.meta, self.rgb).shape), (90, 160))

    def test_threshold_comes_from_the_card(self):
        none = mmsnet.segment(self.model, dict(self.meta, **{"mms.threshold": "1.0"}), self.rgb)
        every = mmsnet.segment(self.model, dict(self.meta, **{"mms.threshold": "-1.0"}), self.rgb)
        self.assertFalse(bool(none.any()))
        self.assertTrue(bool(every.all()))


class SegmentFlip(unittest.TestCase):
    """mmsnet.segment(flip=True), agreement.py's side of the engine's
    --tta flip: mirroring the frame mirrors the mask."""

    def setUp(self):
        self.model, self.meta = reference.load(SHIPPED)
        self.rgb = torch.randint(0, 256, (288, 512, 3), generator=torch.Generator().manual_seed(1),
                                 dtype=torch.uint8)
        # Noise is no tool to the model: a threshold at the median
        # probability gives a mask with both classes to compare.
        hw = (288, 512)
        mean = [float(v) for v in self.meta["mms.mean"].split(",")]
        std = [float(v) for v in self.meta["mms.std"].split(",")]
        with torch.no_grad():
            p = torch.sigmoid(self.model(mmsnet.preprocess(self.rgb, hw, mean, std)))
        self.meta = dict(self.meta, **{"mms.threshold": repr(float(p.median()))})

    def mismatch(self, flip):
        a = mmsnet.segment(self.model, self.meta, self.rgb, flip=flip)
        b = mmsnet.segment(self.model, self.meta, self.rgb.flip(1).contiguous(), flip=flip)
        return float((a != b.flip(1)).float().mean())

    def test_flip_mask_is_mirror_symmetric(self):
        self.assertLess(self.mismatch(True), 1e-4)

    def test_plain_mask_is_not(self):
        self.assertGreater(self.mismatch(False), 1e-3)

    def test_flip_off_is_the_plain_path(self):
        plain = mmsnet.segment(self.model, self.meta, self.rgb)
        self.assertTrue(bool((mmsnet.segment(self.model, self.meta, self.rgb, flip=False) == plain).all()))


if __name__ == "__main__":
    unittest.main()
