#!/usr/bin/env python3
"""Unit tests of the training code in models/ (losses, augmentation, split).

  /usr/bin/python3 tests/models/test_training.py      (a few seconds, CPU)

The split test reads ../shared/data: it fails under CI=true when that is missing
and is skipped otherwise.
"""

import copy
import json
import os
import sys
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import augment  # noqa: E402
import data     # noqa: E402
import losses   # noqa: E402

NO_AUG = dict(augment.STRONG, hflip=0.0, vflip=0.0, rotate=0.0, translate=0.0, scale=(1.0, 1.0),
              shear=0.0)


class Losses(unittest.TestCase):
    def test_structure_loss_orders_predictions(self):
        m = torch.zeros(2, 1, 64, 96)
        m[:, :, 20:40, 30:50] = 1
        good = losses.structure_loss((m * 2 - 1) * 12, m)
        bad = losses.structure_loss(-(m * 2 - 1) * 12, m)
        self.assertLess(good.item(), 0.01)
        self.assertGreater(bad.item(), 5.0)

    def test_structure_loss_valid_mask(self):
        m = torch.zeros(1, 1, 32, 32)
        z = torch.full_like(m, 8.0)            # predicts tool everywhere: wrong
        valid = torch.zeros_like(m)
        valid[..., :2, :2] = 1
        z[..., :2, :2] = -8.0                  # right where it counts
        self.assertLess(losses.structure_loss(z, m, valid).item(), 0.01)

    def _fp_fn(self):
        m = torch.zeros(2, 1, 32, 48)
        m[:, :, 8:24, 8:24] = 1
        fp = (m * 2 - 1) * 8
        fp[..., 8:24, 30:44] = 8.0             # false tool beside the tool
        fn = (m * 2 - 1) * 8
        fn[..., 8:24, 16:24] = -8.0            # half the tool missed
        return m, fp, fn

    def test_fp_weight_one_is_the_iou(self):
        m, fp, _ = self._fp_fn()
        one = torch.ones(2)
        self.assertAlmostEqual(losses.structure_loss(fp, m, fp_weight=one).item(),
                               losses.structure_loss(fp, m).item(), places=5)

    def test_fp_weight_above_one_costs_false_tool_more(self):
        m, fp, _ = self._fp_fn()
        a = torch.full((2,), 1.5)
        self.assertGreater(losses.structure_loss(fp, m, fp_weight=a).item(),
                           losses.structure_loss(fp, m).item() + 0.05)

    def test_fp_weight_above_one_costs_missed_tool_less(self):
        m, _, fn = self._fp_fn()
        a = torch.full((2,), 1.5)
        self.assertLess(losses.structure_loss(fn, m, fp_weight=a).item(),
                        losses.structure_loss(fn, m).item() - 0.05)

    def test_fp_weight_is_per_image(self):
        m, fp, _ = self._fp_fn()
        a = torch.tensor([1.0, 1.5])
        mixed = losses.structure_loss(fp, m, fp_weight=a).item()
        both = losses.structure_loss(fp, m, fp_weight=torch.full((2,), 1.5)).item()
        self.assertLess(mixed, both - 0.02)

    def _narrow(self):
        import train
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 32, 1))
        train.keep_narrow_convs_fp32(net)
        return net

    def test_narrow_convs_compute_in_fp32_under_bf16(self):
        net = self._narrow()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net[0](torch.rand(1, 3, 8, 8))
        self.assertEqual(y.dtype, torch.float32)

    def test_narrow_convs_of_a_copy_use_the_copys_weights(self):
        net = self._narrow()
        ema = copy.deepcopy(net)
        x = torch.rand(1, 3, 8, 8)
        before = ema(x).detach().clone()
        with torch.no_grad():
            net[0].weight.add_(1.0)     # only the live network moves
        self.assertTrue(torch.equal(ema(x), before))
        self.assertFalse(torch.equal(net(x), before))

    def test_boundary_kernel(self):
        self.assertEqual(losses.boundary_kernel(288), 31)
        self.assertEqual(losses.boundary_kernel(160) % 2, 1)

    def test_soft_skeleton_of_a_bar_is_its_midline(self):
        m = torch.zeros(1, 1, 48, 96)
        m[..., 20:29, 10:86] = 1                      # 9 rows thick, 76 long
        sk = losses.soft_skeleton(m)
        self.assertLess(sk.sum().item(), 0.25 * m.sum().item())
        self.assertGreater(sk[..., 24, 20:76].mean().item(), 0.9)
        self.assertEqual(sk[..., :20, :].sum().item(), 0.0)

    def _mostly_right(self):
        m = torch.zeros(1, 1, 10, 10)
        m[..., :5, :] = 1
        z = (m * 2 - 1) * 12                   # right, confidently, everywhere...
        z[..., 0, :5] = -3.0                   # ...but 5 missed tool pixels of 100
        return z, m

    def test_hard_pixel_bce_is_the_worst_pixels_alone(self):
        z, m = self._mostly_right()
        want = torch.nn.functional.softplus(torch.tensor(3.0)).item()    # BCE of logit -3 on a tool
        self.assertAlmostEqual(losses.hard_pixel_bce(z, m, 0.05).item(), want, places=4)

    def test_hard_pixel_bce_over_all_pixels_is_plain_bce(self):
        z, m = self._mostly_right()
        plain = torch.nn.functional.binary_cross_entropy_with_logits(z, m).item()
        self.assertAlmostEqual(losses.hard_pixel_bce(z, m, 1.0).item(), plain, places=5)

    def test_hard_pixel_bce_leaves_invalid_pixels_out(self):
        z, m = self._mostly_right()
        valid = torch.ones_like(m)
        valid[..., 0, :5] = 0
        self.assertLess(losses.hard_pixel_bce(z, m, 0.05, valid).item(), 1e-4)

    def test_lovasz_of_a_confident_right_prediction_is_zero(self):
        m = torch.zeros(2, 1, 8, 8)
        m[..., 2:5, 1:7] = 1
        self.assertEqual(losses.lovasz_hinge((m * 2 - 1) * 3, m).item(), 0.0)

    def test_lovasz_at_unit_errors_is_the_jaccard_loss(self):
        # Right pixels at margin 1 cost nothing, wrong ones at logit 0 cost
        # 1: the Lovasz extension there is the IoU loss of the mask that
        # gets those pixels wrong (Berman et al., CVPR 2018).
        g = torch.Generator().manual_seed(3)
        m = (torch.rand(2, 1, 12, 16, generator=g) > 0.6).float()
        wrong = (torch.rand(2, 1, 12, 16, generator=g) > 0.85).float()
        z = (m * 2 - 1) * (1 - wrong)
        pred = torch.where(wrong > 0, 1 - m, m)
        inter, union = (pred * m).sum((1, 2, 3)), ((pred + m) > 0).float().sum((1, 2, 3))
        want = (1 - inter / union).mean().item()
        self.assertAlmostEqual(losses.lovasz_hinge(z, m).item(), want, places=5)

    def test_lovasz_leaves_invalid_pixels_out(self):
        z, m = self._mostly_right()
        self.assertGreater(losses.lovasz_hinge(z, m).item(), 0.05)
        valid = torch.ones_like(m)
        valid[..., 0, :5] = 0
        self.assertEqual(losses.lovasz_hinge(z, m, valid).item(), 0.0)

    def test_cldice_of_a_perfect_prediction_is_zero(self):
        m = torch.zeros(2, 1, 48, 96)
        m[..., 20:29, 10:86] = 1
        self.assertLess(losses.cldice_loss((m * 2 - 1) * 12, m).item(), 0.01)

    def test_cldice_charges_a_missed_thin_end_more_than_dice(self):
        # A blob with a long thin end. Leaving out the end and leaving out as
        # many pixels of the blob cost Dice the same; clDice charges the end.
        m = torch.zeros(1, 1, 64, 128)
        m[..., 10:50, 10:40] = 1                      # blob: 1200 px
        m[..., 28:31, 40:120] = 1                     # thin end: 240 px
        no_end = m.clone()
        no_end[..., 28:31, 40:120] = 0
        no_chunk = m.clone()
        no_chunk[..., 10:18, 10:40] = 0               # 240 px of the blob
        z = lambda p: (p * 2 - 1) * 12
        end, chunk = losses.cldice_loss(z(no_end), m), losses.cldice_loss(z(no_chunk), m)
        self.assertGreater(end.item(), 2 * chunk.item())
        self.assertGreater(end.item(), 0.1)

    def test_cldice_valid_mask(self):
        m = torch.zeros(1, 1, 48, 96)
        m[..., 20:29, 10:86] = 1
        z = (m * 2 - 1) * 12
        z[..., :, 50:] = -12                          # wrong on the right half ...
        valid = torch.zeros_like(m)
        valid[..., :, :48] = 1                        # ... which does not count
        self.assertGreater(losses.cldice_loss(z, m).item(), 0.1)
        self.assertLess(losses.cldice_loss(z, m, valid).item(), 0.02)

    def test_infonce_prefers_matching_pixels(self):
        g = torch.Generator().manual_seed(0)
        f = torch.randn(2, 16, 8, 8, generator=g)
        same = losses.pixel_infonce(f, f.clone(), pixels=None)
        other = losses.pixel_infonce(f, torch.randn(2, 16, 8, 8, generator=g), pixels=None)
        self.assertLess(same.item(), other.item())
        self.assertLess(same.item(), 1.0)

    def test_all_negative_pushes_apart(self):
        g = torch.Generator().manual_seed(0)
        f = torch.randn(1, 32, 4, 4, generator=g)
        alike = losses.all_negative(f, f + 0.01, pixels=None)           # neighbours differ: low
        flat = losses.all_negative(torch.ones(1, 32, 4, 4), torch.ones(1, 32, 4, 4), pixels=None)
        self.assertLess(alike.item(), flat.item())
        # gradients reach both sides
        a, b = f.clone().requires_grad_(), f.flip(2).clone().requires_grad_()
        losses.all_negative(a, b, pixels=None).backward()
        self.assertGreater(a.grad.abs().sum().item(), 0)
        self.assertGreater(b.grad.abs().sum().item(), 0)

    def test_subsampling(self):
        g = torch.Generator().manual_seed(0)
        f = torch.randn(2, 16, 40, 40, requires_grad=True)
        losses.pixel_infonce(f, f.detach() + 0.1, pixels=64, gen=g).backward()
        self.assertEqual(int((f.grad.abs().sum(1) > 0).sum()), 2 * 64)

    def test_consistency_has_gradients(self):
        z1 = torch.randn(1, 1, 16, 16, requires_grad=True)
        z2 = torch.randn(1, 1, 16, 16, requires_grad=True)
        losses.consistency_loss(z1, z2).backward()
        self.assertGreater(z1.grad.abs().sum().item(), 0)
        self.assertGreater(z2.grad.abs().sum().item(), 0)

    def test_dice(self):
        a = torch.zeros(4, 4, dtype=torch.bool)
        self.assertEqual(losses.dice(a, a), 1.0)
        b = a.clone()
        b[0, :2] = True
        self.assertEqual(losses.dice(b, a), 0.0)
        self.assertEqual(losses.dice(b, b), 1.0)


class Augment(unittest.TestCase):
    def setUp(self):
        self.g = torch.Generator().manual_seed(0)
        self.x = torch.rand(3, 3, 32, 48, generator=self.g)

    def test_light_colour_is_light_with_larger_colour_changes(self):
        colour = {"brightness", "contrast", "saturation", "hue"}
        a, b = augment.LIGHT, augment.PRESETS["light_colour"]
        self.assertEqual({k for k in a if a[k] != b[k]}, colour)
        self.assertTrue(all(b[k] > a[k] for k in colour))

    def test_identity_affine(self):
        y, _ = augment.geometric(self.x, None, self.g, NO_AUG)
        self.assertTrue(torch.allclose(y, self.x, atol=1e-5))

    def test_flips(self):
        y, _ = augment.geometric(self.x, None, self.g, dict(NO_AUG, hflip=1.0))
        self.assertTrue(torch.allclose(y, self.x.flip(3), atol=1e-5))
        y, _ = augment.geometric(self.x, None, self.g, dict(NO_AUG, vflip=1.0))
        self.assertTrue(torch.allclose(y, self.x.flip(2), atol=1e-5))

    def test_rotation_is_rigid(self):
        one = lambda v: torch.tensor([float(v)])
        ident = dict(sc=one(1), shx=one(0), shy=one(0), tx=one(0), ty=one(0), fx=one(1), fy=one(1))
        x = torch.rand(1, 1, 32, 32, generator=self.g)
        y = augment.warp(x, augment.affine_theta(32, 32, one(90), **ident))
        self.assertTrue(torch.allclose(y, x.rot90(-1, (2, 3)), atol=1e-5))   # clockwise on screen
        # non-square frame: a pixel at (row 10, col 30) of a 32x48 frame, centre
        # (16, 24), offset (dx, dy) = (6.5, -5.5) in pixel-centre coordinates,
        # goes to offset (5.5, 6.5) after a quarter turn: (row 22, col 29)
        x = torch.zeros(1, 1, 32, 48)
        x[0, 0, 10, 30] = 1
        y = augment.warp(x, augment.affine_theta(32, 48, one(90), **ident))
        self.assertEqual(divmod(int(y.flatten().argmax()), 48), (22, 29))
        self.assertAlmostEqual(y.max().item(), 1.0, places=4)
        # translation in pixels
        y = augment.warp(x, augment.affine_theta(32, 48, one(0), **dict(ident, tx=one(3), ty=one(-2))))
        self.assertEqual(divmod(int(y.flatten().argmax()), 48), (8, 33))

    def test_image_and_mask_stay_aligned(self):
        m = (torch.rand(4, 1, 40, 72, generator=self.g) > 0.7).float()
        m = torch.nn.functional.max_pool2d(m, 5, 1, 2)           # blobs, not salt
        img = m.repeat(1, 3, 1, 1)
        y, ym = augment.geometric(img, m, self.g)
        agree = ((y[:, :1] > 0.5).float() == ym).float().mean().item()
        self.assertGreater(agree, 0.999)

    def test_photometric_range(self):
        y = augment.photometric(self.x, self.g)
        self.assertEqual(y.shape, self.x.shape)
        self.assertGreaterEqual(y.min().item(), -1e-6)
        self.assertLessEqual(y.max().item(), 1 + 1e-6)

    def test_hue_full_turn_is_identity(self):
        y = augment.hue_rotate(self.x, torch.ones(3))
        self.assertTrue(torch.allclose(y, self.x, atol=1e-4))

    def test_gridmask_fraction(self):
        x = torch.ones(16, 3, 288, 512)
        y = augment.gridmask(x, self.g, dict(augment.STRONG, grid_prob=1.0))
        frac = (y[:, 0] != 1).float().mean().item()
        self.assertGreater(frac, 0.25)
        self.assertLess(frac, 0.45)

    def test_medium_changes_colour_less_than_strong(self):
        x = torch.rand(64, 3, 16, 16, generator=self.g)
        change = lambda p: (augment.photometric(x, torch.Generator().manual_seed(1), p) - x
                            ).abs().mean().item()
        self.assertLess(change(augment.MEDIUM), 0.5 * change(augment.STRONG))

    def test_upright_never_turns_the_frame_over(self):
        m = torch.zeros(64, 1, 72, 128)
        m[..., :18, :] = 1                            # a band along the top edge
        top = lambda p: (lambda ym: (ym[..., :36, :].sum((1, 2, 3)) > ym[..., 36:, :].sum((1, 2, 3))))(
            augment.geometric(m.repeat(1, 3, 1, 1), m, torch.Generator().manual_seed(3), p)[1])
        self.assertTrue(bool(top(augment.UPRIGHT).all()))
        self.assertFalse(bool(top(augment.MEDIUM).all()))
        self.assertEqual(augment.UPRIGHT["hflip"], augment.MEDIUM["hflip"])

    def test_medium_rarely_gridmasks(self):
        x = torch.ones(64, 3, 72, 128)
        erased = lambda p: (augment.gridmask(x, torch.Generator().manual_seed(2), p)[:, 0] != 1
                            ).flatten(1).any(1).float().mean().item()
        self.assertLess(erased(augment.MEDIUM), 0.4)
        self.assertGreater(erased(augment.STRONG), 0.6)

    def test_composite(self):
        img = torch.ones(2, 3, 8, 8)
        bg = torch.zeros(1, 3, 8, 8)
        m = torch.zeros(2, 1, 8, 8)
        m[..., 2:4, 2:4] = 1
        y, pick = augment.composite(img, m, bg, self.g, prob=1.0)
        self.assertTrue(bool(pick.all()))
        self.assertTrue(torch.equal(y, m.expand_as(img)))

    def _two_tools(self):
        img = torch.rand(2, 3, 8, 8, generator=self.g)
        m = torch.zeros(2, 1, 8, 8)
        m[0, :, 0:2, 0:2] = 1
        m[1, :, 4:6, 4:7] = 1
        return img, m

    def test_copy_paste_mask_is_the_union(self):
        img, m = self._two_tools()
        y, ym = augment.copy_paste(img, m, self.g, prob=1.0)
        union = torch.maximum(m[0], m[1])
        self.assertTrue(torch.equal(ym[0], union))
        self.assertTrue(torch.equal(ym[1], union))

    def test_copy_paste_pastes_the_other_frames_pixels(self):
        img, m = self._two_tools()
        y, _ = augment.copy_paste(img, m, self.g, prob=1.0)
        self.assertTrue(torch.equal(y[0, :, 4:6, 4:7], img[1, :, 4:6, 4:7]))
        self.assertTrue(torch.equal(y[1, :, 0:2, 0:2], img[0, :, 0:2, 0:2]))
        # outside the pasted tool each frame keeps its own pixels, its own tool included
        self.assertTrue(torch.equal(y[0, :, 0:2, 0:2], img[0, :, 0:2, 0:2]))
        self.assertTrue(torch.equal(y[0, :, 6:, :], img[0, :, 6:, :]))

    def test_copy_paste_off_changes_nothing(self):
        img, m = self._two_tools()
        y, ym = augment.copy_paste(img, m, self.g, prob=0.0)
        self.assertTrue(torch.equal(y, img))
        self.assertTrue(torch.equal(ym, m))

    def test_copy_paste_needs_a_second_frame(self):
        img, m = self._two_tools()
        y, ym = augment.copy_paste(img[:1], m[:1], self.g, prob=1.0)
        self.assertTrue(torch.equal(y, img[:1]))
        self.assertTrue(torch.equal(ym, m[:1]))

    def test_shadow_darkens_the_edges_not_the_centre(self):
        img = torch.ones(4, 3, 36, 64)
        y = augment.shadow(img, self.g, prob=1.0)
        self.assertTrue(bool((y[:, :, 18, 32] > 0.95).all()))
        corners = torch.stack([y[:, :, 0, 0], y[:, :, 0, -1], y[:, :, -1, 0], y[:, :, -1, -1]])
        self.assertLess(float(corners.min()), 0.7)

    def test_shadow_never_brightens(self):
        img = torch.rand(8, 3, 36, 64, generator=self.g)
        y = augment.shadow(img, self.g, prob=1.0)
        self.assertTrue(bool((y <= img).all()))

    def test_shadow_off_changes_nothing(self):
        img = torch.rand(4, 3, 36, 64, generator=self.g)
        self.assertTrue(torch.equal(augment.shadow(img, self.g, prob=0.0), img))

    def _red_frame_black_tool(self):
        img = torch.zeros(2, 3, 32, 32)
        img[:, 0] = 0.8                          # red tissue
        m = torch.zeros(2, 1, 32, 32)
        m[:, :, 10:20, 12:16] = 1
        img = img * (1 - m) + 0.05 * m           # a black shaft
        return img, m

    def test_metal_takes_the_tissue_colour_on_the_tool_only(self):
        img, m = self._red_frame_black_tool()
        y = augment.metal(img, m, self.g, prob=1.0)
        tool = m.bool().expand_as(img)
        self.assertTrue(torch.equal(y[~tool], img[~tool]))
        r, g = y[:, 0][m[:, 0].bool()], y[:, 1][m[:, 0].bool()]
        self.assertGreater(float((r - g).min()), 0.1)       # tinted red by the tissue
        self.assertGreater(float(y[:, 0][m[:, 0].bool()].min()), 0.2)

    def test_metal_keeps_the_mask_and_the_range(self):
        img = torch.rand(4, 3, 36, 64, generator=self.g)
        m = (torch.rand(4, 1, 36, 64, generator=self.g) > 0.7).float()
        y = augment.metal(img, m, self.g, prob=1.0)
        self.assertEqual(y.shape, img.shape)
        self.assertTrue(bool((y >= 0).all() and (y <= 1).all()))

    def test_metal_off_changes_nothing(self):
        img, m = self._red_frame_black_tool()
        self.assertTrue(torch.equal(augment.metal(img, m, self.g, prob=0.0), img))

    def test_metal_without_a_tool_changes_nothing(self):
        img, _ = self._red_frame_black_tool()
        self.assertTrue(torch.equal(augment.metal(img, torch.zeros(2, 1, 32, 32), self.g, prob=1.0), img))

    def test_tool_colour_changes_the_tool_only(self):
        img = torch.rand(4, 3, 36, 64, generator=self.g)
        m = torch.zeros(4, 1, 36, 64)
        m[..., 10:20, 30:40] = 1
        y = augment.tool_colour(img, m, self.g, prob=1.0)
        tool = m.bool().expand_as(img)
        self.assertTrue(torch.equal(y[~tool], img[~tool]))
        for i in range(4):
            self.assertFalse(torch.allclose(y[i][tool[i]], img[i][tool[i]], atol=1e-3))
        self.assertTrue(bool((y >= 0).all() and (y <= 1).all()))

    def test_tool_colour_off_changes_nothing(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g)
        m = torch.ones(2, 1, 36, 64)
        self.assertTrue(torch.equal(augment.tool_colour(img, m, self.g, prob=0.0), img))

    def test_tool_colour_without_a_tool_changes_nothing(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g)
        m = torch.zeros(2, 1, 36, 64)
        self.assertTrue(torch.equal(augment.tool_colour(img, m, self.g, prob=1.0), img))

    def test_smoke_veils_a_lit_frame(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g) * 0.5 + 0.2
        y = augment.smoke(img, self.g, prob=1.0)
        self.assertTrue(bool((y.mean((1, 2, 3)) > img.mean((1, 2, 3)) + 0.05).all()))
        self.assertTrue(bool((y.std((1, 2, 3)) < 0.85 * img.std((1, 2, 3))).all()))
        self.assertTrue(bool((y >= 0).all() and (y <= 1).all()))

    def test_smoke_leaves_the_dark_outside_the_view(self):
        img = torch.full((2, 3, 36, 64), 0.6)
        img[..., :, :20] = 0.0                   # the black outside a scope's round view
        y = augment.smoke(img, self.g, prob=1.0)
        self.assertTrue(torch.equal(y[..., :, :10], img[..., :, :10]))
        self.assertGreater(float(y[..., :, 40:].min()), 0.6)

    def test_smoke_spares_the_samples_not_allowed(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g) * 0.5 + 0.2
        y = augment.smoke(img, self.g, prob=1.0, allowed=torch.tensor([False, True]))
        self.assertTrue(torch.equal(y[0], img[0]))
        self.assertFalse(torch.equal(y[1], img[1]))

    def test_smoke_off_changes_nothing(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g)
        self.assertTrue(torch.equal(augment.smoke(img, self.g, prob=0.0), img))

    def _changed(self, y, img):
        return (y - img).abs().sum(1) > 1e-6

    def test_hooks_draw_thin_wires_from_an_edge(self):
        img = torch.full((4, 3, 144, 256), 0.8)
        y = augment.hooks(img, torch.zeros(4, 1, 144, 256), self.g, prob=1.0)
        for i in range(4):
            c = self._changed(y[i:i + 1], img[i:i + 1])[0]
            self.assertGreater(int(c.sum()), 20, i)
            self.assertLess(float(c.float().mean()), 0.05, i)      # wires, not patches
            edge = bool(c[0].any() or c[-1].any() or c[:, 0].any() or c[:, -1].any())
            self.assertTrue(edge, i)
        self.assertTrue(bool((y >= 0).all() and (y <= 1).all()))

    def test_hooks_are_a_few_pixels_wide(self):
        img = torch.full((16, 3, 288, 512), 0.8)
        y = augment.hooks(img, torch.zeros(16, 1, 288, 512), self.g, prob=1.0)
        self.assertLess(float(self._changed(y, img).float().mean()), 0.012)
        one = torch.full((3, 100, 120), 0.8)
        xs = torch.arange(10.0, 100.0, 0.5)
        augment._draw_hook(one, torch.zeros(1, 100, 120), xs, torch.full_like(xs, 50.0),
                           3.0, 0.2, 0.0, torch.ones(3))
        col = (one[:, :, 50] - 0.8).abs().sum(0) > 1e-6
        self.assertIn(int(col.sum()), (3, 4, 5))

    def test_hooks_pass_behind_the_tools(self):
        img = torch.full((4, 3, 144, 256), 0.8)
        y = augment.hooks(img, torch.ones(4, 1, 144, 256), self.g, prob=1.0)
        self.assertTrue(torch.equal(y, img))

    def test_hooks_curl(self):
        # The tip turns back: the hook's pixels do not all lie on one line.
        g = torch.Generator().manual_seed(3)
        for _ in range(5):
            xs, ys = augment._hook_path(g, 288, 512)
            d = torch.stack([xs - xs[0], ys - ys[0]], 1)
            u = d[20] / d[20].norm()                   # the shaft is >= 23 pixels
            off = (d[:, 0] * u[1] - d[:, 1] * u[0]).abs()
            self.assertLess(float(off[:40].max()), 1e-3)
            self.assertGreater(float(off.max()), 0.02 * 288)

    def test_hooks_spare_the_samples_not_allowed(self):
        img = torch.full((2, 3, 72, 128), 0.8)
        y = augment.hooks(img, torch.zeros(2, 1, 72, 128), self.g, prob=1.0,
                          allowed=torch.tensor([False, True]))
        self.assertTrue(torch.equal(y[0], img[0]))
        self.assertFalse(torch.equal(y[1], img[1]))

    def test_hooks_off_changes_nothing(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g)
        self.assertTrue(torch.equal(augment.hooks(img, torch.zeros(2, 1, 36, 64), self.g, prob=0.0), img))

    def test_hooks_are_reproducible_from_the_seed(self):
        img = torch.full((2, 3, 72, 128), 0.5)
        m = torch.zeros(2, 1, 72, 128)
        a = augment.hooks(img, m, torch.Generator().manual_seed(7), prob=1.0)
        b = augment.hooks(img, m, torch.Generator().manual_seed(7), prob=1.0)
        c = augment.hooks(img, m, torch.Generator().manual_seed(8), prob=1.0)
        self.assertTrue(torch.equal(a, b))
        self.assertFalse(torch.equal(a, c))

    def _one_tool(self):
        img = torch.rand(2, 3, 36, 64, generator=self.g)
        m = torch.zeros(2, 1, 36, 64)
        m[:, :, 4:8, 50:56] = 1                  # a small tool near a corner
        return img, m

    def test_tool_zoom_makes_the_tool_bigger(self):
        img, m = self._one_tool()
        _, y = augment.tool_zoom(img, m, self.g, prob=1.0)
        for i in range(2):
            self.assertGreater(float(y[i].sum()), 1.5 * float(m[i].sum()))

    def test_tool_zoom_moves_image_and_mask_together(self):
        _, m = self._one_tool()
        x, y = augment.tool_zoom(m.repeat(1, 3, 1, 1), m, self.g, prob=1.0)
        self.assertTrue(torch.equal((x[:, :1] > 0.5).float(), y))

    def test_tool_zoom_stays_inside_the_frame(self):
        img = torch.zeros(2, 3, 36, 64)
        img[:, 0] = torch.linspace(0.5, 1, 64)             # column ramp
        img[:, 1] = torch.linspace(0.5, 1, 36).view(36, 1)  # row ramp
        m = torch.zeros(2, 1, 36, 64)
        m[:, :, 0:3, 0:3] = 1                    # a tool in the corner: the window must clamp
        x, _ = augment.tool_zoom(img, m, self.g, prob=1.0, scale=(2.0, 2.0))
        # Inside the frame every column and row is new; a window past the
        # edge would repeat the border, or fade to black.
        self.assertTrue(bool((x[:, 0, :, 1:] > x[:, 0, :, :-1]).all()))
        self.assertTrue(bool((x[:, 1, 1:, :] > x[:, 1, :-1, :]).all()))
        self.assertGreaterEqual(float(x[:, :2].min()), 0.5 - 1e-6)

    def test_tool_zoom_off_changes_nothing(self):
        img, m = self._one_tool()
        x, y = augment.tool_zoom(img, m, self.g, prob=0.0)
        self.assertTrue(torch.equal(x, img) and torch.equal(y, m))

    def test_tool_zoom_without_a_tool_changes_nothing(self):
        img, _ = self._one_tool()
        m = torch.zeros(2, 1, 36, 64)
        x, y = augment.tool_zoom(img, m, self.g, prob=1.0)
        self.assertTrue(torch.equal(x, img) and torch.equal(y, m))

    def _three_tools(self):
        img, m = self._two_tools()
        img = torch.cat([img, torch.rand(1, 3, 8, 8, generator=self.g)])
        m = torch.cat([m, torch.zeros(1, 1, 8, 8)])
        m[2, :, 6:8, 0:3] = 1
        return img, m

    def test_copy_paste_leaves_a_frame_outside_allowed_as_it_was(self):
        img, m = self._three_tools()
        y, ym = augment.copy_paste(img, m, self.g, prob=1.0, allowed=torch.tensor([True, True, False]))
        self.assertTrue(torch.equal(y[2], img[2]))
        self.assertTrue(torch.equal(ym[2], m[2]))

    def test_copy_paste_takes_no_tool_from_a_frame_outside_allowed(self):
        img, m = self._three_tools()
        for seed in range(8):
            g = torch.Generator().manual_seed(seed)
            _, ym = augment.copy_paste(img, m, g, prob=1.0, allowed=torch.tensor([True, True, False]))
            self.assertFalse(bool(ym[:2, :, 6:8, 0:3].any()))
            self.assertTrue(torch.equal(ym[0], torch.maximum(m[0], m[1])))

    def _four_tools(self):
        img, m = self._three_tools()
        img = torch.cat([img, torch.rand(1, 3, 8, 8, generator=self.g)])
        m = torch.cat([m, torch.zeros(1, 1, 8, 8)])
        m[3, :, 0:2, 6:8] = 1
        return img, m

    def test_copy_paste_groups_trade_tools_only_within_themselves(self):
        img, m = self._four_tools()
        _, ym = augment.copy_paste(img, m, self.g, prob=1.0, allowed=torch.tensor([0, 0, 1, 1]))
        self.assertTrue(torch.equal(ym[0], torch.maximum(m[0], m[1])))
        self.assertTrue(torch.equal(ym[1], torch.maximum(m[1], m[0])))
        self.assertTrue(torch.equal(ym[2], torch.maximum(m[2], m[3])))
        self.assertTrue(torch.equal(ym[3], torch.maximum(m[3], m[2])))

    def test_copy_paste_group_minus_one_is_left_out(self):
        img, m = self._four_tools()
        y, ym = augment.copy_paste(img, m, self.g, prob=1.0, allowed=torch.tensor([0, 0, -1, 1]))
        for i in (2, 3):   # out, and alone in its group
            self.assertTrue(torch.equal(y[i], img[i]))
            self.assertTrue(torch.equal(ym[i], m[i]))

    def test_copy_paste_one_group_draws_as_the_boolean_form(self):
        img, m = self._four_tools()
        a = augment.copy_paste(img, m, torch.Generator().manual_seed(3), 0.5,
                               torch.tensor([True, False, True, True]))
        b = augment.copy_paste(img, m, torch.Generator().manual_seed(3), 0.5,
                               torch.tensor([0, -1, 0, 0]))
        self.assertTrue(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]))

    def test_copy_paste_within_one_allowed_frame_changes_nothing(self):
        img, m = self._three_tools()
        y, ym = augment.copy_paste(img, m, self.g, prob=1.0, allowed=torch.tensor([False, True, False]))
        self.assertTrue(torch.equal(y, img))
        self.assertTrue(torch.equal(ym, m))


class _Frames:
    """Stands in for data.Labeled / data.Unlabeled: what Run reads, random
    64x128 frames with a box of tool."""

    def __init__(self, *a, **kw):
        g = torch.Generator().manual_seed(0)
        self.img = torch.rand(2, 3, 64, 128, generator=g)
        self.mask = torch.zeros(2, 1, 64, 128)
        self.mask[:, :, 20:40, 30:70] = 1
        self.folders = ["cataract", "cholec80-v01"]

    def __len__(self):
        return 2

    def counts(self):
        return {}

    def sample(self, n, gen):
        return torch.rand(n, 3, 64, 128, generator=gen)


class Optimiser(unittest.TestCase):
    """What the optimiser moves: both networks in MMS (F2 was once left out
    and stayed random), the heads unless --frozen-heads."""

    def run_for(self, *argv):
        import tempfile
        import train
        saved = data.Labeled, data.Unlabeled, data.load_split
        data.Labeled = data.Unlabeled = _Frames
        data.load_split = lambda path: {}
        try:
            with tempfile.TemporaryDirectory() as out:
                args = train.parser().parse_args(
                    ["--size", "64x128", "--val-size", "64x128", "--out", out] + list(argv))
                r = train.Run(args)
        finally:
            data.Labeled, data.Unlabeled, data.load_split = saved
        return r, {id(p) for g in r.opt.param_groups for p in g["params"]}

    def covered(self, mods, opt):
        return all(id(p) in opt for m in mods for p in m.parameters())

    def test_mms_trains_both_networks_and_heads(self):
        r, opt = self.run_for("--mode", "mms")
        self.assertEqual(len(r.nets), 2)
        for i, n in enumerate(r.nets):
            self.assertTrue(self.covered([n], opt), "F%d is not optimised" % (i + 1))
        self.assertTrue(self.covered(r.cls + r.proj, opt))

    def test_frozen_heads_leave_heads_out(self):
        r, opt = self.run_for("--mode", "mms", "--frozen-heads")
        self.assertTrue(self.covered(r.nets, opt))
        self.assertFalse(any(id(p) in opt for m in r.cls + r.proj for p in m.parameters()))

    def head_grads(self, *argv):
        r, _ = self.run_for("--mode", "mms", "--batch", "2", "--ubatch", "2", *argv)
        r.step()
        norm = lambda mods: sum(float(p.grad.abs().sum()) for m in mods for p in m.parameters()
                                if p.grad is not None)
        return norm(r.proj), norm(r.cls)

    def test_loss_weights_reach_the_heads(self):
        proj, cls = self.head_grads()
        self.assertGreater(proj, 0.0)
        self.assertGreater(cls, 0.0)

    def test_zero_nce_weight_leaves_projectors_untrained(self):
        proj, cls = self.head_grads("--w-nce", "0")
        self.assertEqual(proj, 0.0)
        self.assertGreater(cls, 0.0)

    def test_zero_neg_weight_leaves_classifiers_untrained(self):
        proj, cls = self.head_grads("--w-neg", "0")
        self.assertGreater(proj, 0.0)
        self.assertEqual(cls, 0.0)

    def test_deep_sup_heads_are_optimised(self):
        r, opt = self.run_for("--mode", "sup", "--batch", "2", "--deep-sup", "0.5")
        self.assertEqual(len(r.aux), len(r.nets[0].dec) - 1)
        self.assertTrue(self.covered(r.aux, opt))
        rec = r.step()
        self.assertAlmostEqual(rec["loss"], rec["l_sup"] + 0.5 * rec["l_deep"], places=4)
        self.assertTrue(all(p.grad is not None and float(p.grad.abs().sum()) > 0
                            for h in r.aux for p in h.parameters()))

    def test_deep_sup_moves_the_coarse_decoder_more(self):
        grad = lambda r: float(r.nets[0].dec[0].conv1.weight.grad.abs().sum())
        plain, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none")
        deep, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--deep-sup", "1")
        plain.step()
        deep.step()
        self.assertNotAlmostEqual(grad(plain), grad(deep), places=6)

    def test_deep_sup_heads_stay_out_of_the_network(self):
        plain, _ = self.run_for("--mode", "sup")
        deep, _ = self.run_for("--mode", "sup", "--deep-sup", "0.5")
        self.assertEqual(set(plain.nets[0].state_dict()), set(deep.nets[0].state_dict()))

    def test_deep_sup_heads_are_resumed(self):
        import tempfile
        r, _ = self.run_for("--mode", "sup", "--deep-sup", "0.5")
        with torch.no_grad():
            r.aux[0].weight.fill_(0.25)
        st = copy.deepcopy(r.state())   # a state_dict shares the weights
        with torch.no_grad():
            r.aux[0].weight.zero_()
        with tempfile.TemporaryDirectory() as d:
            torch.save(st, os.path.join(d, "ck.pt"))
            r.load_resume(os.path.join(d, "ck.pt"))
        self.assertTrue(bool((r.aux[0].weight == 0.25).all()))

    def _two_views(self, crn, *measure):
        argv = ("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                "--aug", "light", "--crn", crn, "--hooks-folders", "cataract")
        r, _ = self.run_for(*argv, *measure)
        img = torch.full_like(r.train.img, 0.5)
        x1, _, _ = r.labeled_view(img, r.train.mask, hooks_ok=r.hooks_ok)
        x2, _, _ = r.labeled_view(img, r.train.mask, hooks_ok=r.hooks_ok)
        return x1, x2, r.labeled_idx(2)

    def test_crn_keeps_the_controls_draws(self):
        a1, a2, ai = self._two_views("1", "--hooks", "1e-9")
        b1, b2, bi = self._two_views("1", "--hooks", "1")
        self.assertFalse(torch.equal(a1[0], b1[0]))            # the hooks are drawn
        self.assertTrue(torch.equal(a1[1], b1[1]))
        self.assertTrue(torch.equal(a2[1], b2[1]))             # later views as the control's
        self.assertTrue(torch.equal(ai, bi))                   # and the same batches

    def test_crn_keeps_every_measure_off_the_shared_stream(self):
        import train
        base, _ = self.run_for("--mode", "sup", "--aug", "light", "--crn", "1")
        base.labeled_view(base.train.img, base.train.mask)
        for m in train.MEASURES:
            r, _ = self.run_for("--mode", "sup", "--aug", "light", "--crn", "1",
                                "--" + m.replace("_", "-"), "1")
            r.labeled_view(r.train.img, r.train.mask)
            self.assertTrue(torch.equal(r.gen.get_state(), base.gen.get_state()), m)

    def test_without_crn_a_measure_shifts_later_draws(self):
        _, a2, _ = self._two_views("0", "--hooks", "1e-9")
        _, b2, _ = self._two_views("0", "--hooks", "1")
        self.assertFalse(torch.equal(a2[1], b2[1]))

    def test_crn_generators_are_resumed(self):
        import tempfile
        r, _ = self.run_for("--mode", "sup", "--crn", "1", "--smoke", "1")
        st = copy.deepcopy(r.state())
        want = torch.rand(3, generator=r.mgen("smoke"))
        with tempfile.TemporaryDirectory() as d:
            torch.save(st, os.path.join(d, "ck.pt"))
            r.load_resume(os.path.join(d, "ck.pt"))
        self.assertTrue(torch.equal(torch.rand(3, generator=r.mgen("smoke")), want))
        self.assertIsNot(r.mgen("smoke"), r.gen)

    def test_resume_with_another_crn_is_refused(self):
        import tempfile
        crn, _ = self.run_for("--mode", "sup", "--crn", "1")
        plain, _ = self.run_for("--mode", "sup")
        for a, b in ((crn, plain), (plain, crn)):
            with tempfile.TemporaryDirectory() as d:
                torch.save(copy.deepcopy(a.state()), os.path.join(d, "ck.pt"))
                with self.assertRaises(SystemExit):
                    b.load_resume(os.path.join(d, "ck.pt"))

    def test_deep_sup_in_mms_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "mms", "--deep-sup", "0.5")

    def test_negative_deep_sup_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--deep-sup", "-1")

    def test_aug_presets_reach_the_labeled_views(self):
        for name in ("strong", "medium", "zoom", "upright", "none"):
            r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", name)
            self.assertEqual(r.args.aug, name)
            r.step()

    def test_unknown_aug_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--aug", "extreme")

    def sup_losses(self, *argvs):
        """The supervised loss of one fixed batch under each argument list."""
        seen = []
        for argv in argvs:
            r, _ = self.run_for("--mode", "sup", "--batch", "2", *argv)
            torch.manual_seed(0)
            x = torch.randn(2, 1, 32, 64)
            m = (torch.rand(2, 1, 32, 64) > 0.5).float()
            seen.append(r.sup_loss(x, m, None, 3).item())
        return seen

    def test_cldice_weight_reaches_the_loss(self):
        off, on = self.sup_losses(("--cldice", "0"), ("--cldice", "1"))
        self.assertGreater(on, off + 0.05)

    def test_ohem_weight_reaches_the_loss(self):
        off, on = self.sup_losses(("--ohem", "0"), ("--ohem", "0.1"))
        self.assertGreater(on, off + 0.5)

    def test_ohem_outside_0_1_is_refused(self):
        for f in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--ohem", f)

    def test_copy_paste_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--copy-paste", "1")
        img, m = r.train.img, r.train.mask.clone()
        m[1] = 0
        _, y, _ = r.labeled_view(img, m)
        self.assertTrue(torch.equal(y[1].cpu(), m[0]))

    def test_copy_paste_folders_mark_their_frames(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract",
                            "--copy-paste", "1", "--copy-paste-folders", "cholec80-v01")
        self.assertEqual(r.cp_ok.tolist(), [False, True])

    def test_copy_paste_folder_groups_number_their_frames(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract",
                            "--copy-paste", "1", "--copy-paste-folders", "cataract;cholec80-v01")
        self.assertEqual(r.cp_ok.tolist(), [0, 1])

    def test_copy_paste_folder_in_two_groups_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--copy-paste", "1",
                         "--copy-paste-folders", "cataract;cataract,cholec80-v01")

    def test_copy_paste_empty_group_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--copy-paste", "1",
                         "--copy-paste-folders", "cataract;")

    def test_freeze_bn_keeps_the_running_statistics(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--freeze-bn", "1")
        bn = [b for b in r.nets[0].modules() if isinstance(b, torch.nn.BatchNorm2d)]
        before = [b.running_mean.clone() for b in bn]
        r.step()
        self.assertTrue(all(torch.equal(a, b.running_mean) for a, b in zip(before, bn)))
        self.assertTrue(all(p.grad is not None for b in bn for p in b.parameters()))

    def test_without_freeze_bn_a_step_moves_the_running_statistics(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2")
        bn = [b for b in r.nets[0].modules() if isinstance(b, torch.nn.BatchNorm2d)]
        before = [b.running_mean.clone() for b in bn]
        r.step()
        self.assertFalse(all(torch.equal(a, b.running_mean) for a, b in zip(before, bn)))

    def test_freeze_bn_survives_validation(self):
        r, _ = self.run_for("--mode", "sup", "--freeze-bn", "1")
        r.dice_per_frame(r.nets[0], r.val, False)
        self.assertTrue(r.nets[0].training)
        self.assertFalse(any(b.training for b in r.nets[0].modules()
                             if isinstance(b, torch.nn.BatchNorm2d)))

    def test_copy_paste_folders_keep_the_others_out_of_the_views(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                            "--aug", "none", "--copy-paste", "1", "--copy-paste-folders", "cholec80-v01")
        img, m = r.train.img, r.train.mask.clone()
        m[1] = 0
        _, y, _ = r.labeled_view(img, m, cp_ok=r.cp_ok)
        self.assertFalse(bool(y[1].any()))

    def test_copy_paste_folders_outside_the_run_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01", "--copy-paste", "1",
                         "--copy-paste-folders", "cataract")

    def test_copy_paste_folders_without_copy_paste_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract",
                         "--copy-paste-folders", "cholec80-v01")

    def test_smoke_folders_veil_their_frames_only(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                            "--aug", "none", "--smoke", "1", "--smoke-folders", "cataract")
        self.assertEqual(r.smoke_ok.tolist(), [True, False])
        img = torch.full_like(r.train.img, 0.3)
        x, _, _ = r.labeled_view(img, r.train.mask, smoke_ok=r.smoke_ok)
        plain = r.norm(img)
        self.assertGreater(float(x[0].mean()), float(plain[0].mean()) + 0.1)
        self.assertTrue(torch.equal(x[1], plain[1]))

    def _folders_reach_a_training_step(self, measure):
        """augment.<measure> is called, in both modes, with the per-frame
        allowed flags of --<measure>-folders."""
        for mode in ("sup", "mms"):
            r, _ = self.run_for("--mode", mode, "--labeled", "cholec80-v01,cataract", "--batch", "2",
                                "--ubatch", "2", "--" + measure, "1", f"--{measure}-folders", "cataract")
            seen, real = [], getattr(augment, measure)
            setattr(augment, measure, lambda img, *a, allowed=None: seen.append(allowed) or img)
            try:
                r.step()
            finally:
                setattr(augment, measure, real)
            self.assertTrue(seen and all(a is not None and 0 < len(a) for a in seen), mode)

    def test_smoke_folders_reach_a_training_step(self):
        self._folders_reach_a_training_step("smoke")

    def test_smoke_folders_outside_the_run_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01", "--smoke", "1",
                         "--smoke-folders", "cataract")

    def test_hooks_folders_draw_on_their_frames_only(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                            "--aug", "none", "--hooks", "1", "--hooks-folders", "cataract")
        self.assertEqual(r.hooks_ok.tolist(), [True, False])
        img = torch.full_like(r.train.img, 0.8)
        x, y, _ = r.labeled_view(img, r.train.mask, hooks_ok=r.hooks_ok)
        plain = r.norm(img)
        self.assertFalse(torch.equal(x[0], plain[0]))
        self.assertTrue(torch.equal(x[1], plain[1]))
        self.assertTrue(torch.equal(y, r.train.mask))

    def test_hooks_folders_reach_a_training_step(self):
        self._folders_reach_a_training_step("hooks")

    def test_hooks_folders_outside_the_run_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01", "--hooks", "1",
                         "--hooks-folders", "cataract")

    def test_hooks_out_of_range_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01", "--hooks", "1.5")

    def test_fp_weight_is_per_training_frame(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                            "--fp-weight", "cataract=1.4")
        want = [1.4 if f == "cataract" else 1.0 for f in r.train.folders]
        self.assertEqual(sorted(want), [1.0, 1.4])
        self.assertEqual([round(v, 3) for v in r.fp_w.tolist()], want)

    def test_fp_weight_reaches_the_supervised_loss(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2",
                            "--aug", "none", "--fp-weight", "cataract=1.4")
        seen = []
        real = r.sup_loss
        r.sup_loss = lambda *a: seen.append(a[4]) or real(*a)
        r.step()
        self.assertTrue(seen and seen[0] is not None and len(seen[0]) == 2)
        self.assertTrue(all(v in (1.0, 1.4) for v in [round(x, 3) for x in seen[0].tolist()]))

    def test_fp_weight_absent_is_the_iou(self):
        r, _ = self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract", "--batch", "2")
        self.assertIsNone(r.fp_w)

    def test_fp_weight_out_of_range_is_refused(self):
        for bad in ("cataract=2", "cataract=0", "cataract=-1"):
            with self.assertRaises(SystemExit, msg=bad):
                self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract",
                             "--fp-weight", bad)

    def test_fp_weight_outside_the_run_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01", "--fp-weight", "cataract=1.4")

    def test_smoke_folders_without_smoke_are_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--labeled", "cholec80-v01,cataract",
                         "--smoke-folders", "cataract")

    def test_shadow_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--shadow", "1")
        img = torch.ones_like(r.train.img)
        x, y, _ = r.labeled_view(img, r.train.mask)
        plain = r.norm(img)
        self.assertTrue(bool((x[:, :, 0, 0] < plain[:, :, 0, 0] - 0.5).all()))
        self.assertTrue(torch.equal(y.cpu(), r.train.mask))

    def test_metal_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--metal", "1")
        img = torch.zeros_like(r.train.img)
        img[:, 0] = 0.8
        m = torch.zeros_like(r.train.mask)
        m[..., :8, :8] = 1
        x, y, _ = r.labeled_view(img, m)
        plain = r.norm(img)
        self.assertFalse(torch.allclose(x[:, :, 0, 0], plain[:, :, 0, 0]))
        self.assertTrue(torch.equal(x[:, :, -1, -1], plain[:, :, -1, -1]))
        self.assertTrue(torch.equal(y.cpu(), m))

    def test_tool_colour_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--tool-colour", "1")
        img = torch.rand(r.train.img.shape, generator=torch.Generator().manual_seed(5))
        m = torch.zeros_like(r.train.mask)
        m[..., :8, :8] = 1
        x, y, _ = r.labeled_view(img, m)
        plain = r.norm(img)
        self.assertFalse(torch.allclose(x[:, :, :8, :8], plain[:, :, :8, :8], atol=1e-3))
        self.assertTrue(torch.equal(x[:, :, 8:, 8:], plain[:, :, 8:, 8:]))
        self.assertTrue(torch.equal(y.cpu(), m))

    def test_tool_colour_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--tool-colour", p)

    def test_smoke_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--smoke", "1")
        img = torch.full_like(r.train.img, 0.3)
        m = torch.zeros_like(r.train.mask)
        m[..., :8, :8] = 1
        x, y, _ = r.labeled_view(img, m)
        self.assertTrue(bool((x.mean((1, 2, 3)) > r.norm(img).mean((1, 2, 3)) + 0.1).all()))
        self.assertTrue(torch.equal(y.cpu(), m))

    def test_smoke_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--smoke", p)

    def test_tool_zoom_reaches_the_labeled_views(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--aug", "none", "--tool-zoom", "1")
        m = torch.zeros_like(r.train.mask)
        m[..., 4:8, 4:8] = 1
        _, y, _ = r.labeled_view(m.repeat(1, 3, 1, 1), m)
        self.assertTrue(bool((y.flatten(1).sum(1) > 1.5 * m.flatten(1).sum(1)).all()))

    def test_tool_zoom_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--tool-zoom", p)

    def test_metal_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--metal", p)

    def test_shadow_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--shadow", p)

    def test_copy_paste_outside_0_1_is_refused(self):
        for p in ("1.5", "-0.1"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--copy-paste", p)

    def test_init_from_a_shipped_file_skips_its_int8_calibration(self):
        import safetensors_io
        path = os.path.join(ROOT, "models", "mms-rt.safetensors")
        sd, _ = safetensors_io.load_file(path)
        self.assertTrue(any(k.startswith("int8.") for k in sd))
        r, _ = self.run_for("--mode", "sup", "--init", path)
        k = next(k for k in sd if not k.startswith("int8.") and sd[k].dtype.is_floating_point)
        self.assertTrue(torch.equal(r.nets[0].state_dict()[k], sd[k]))

    def test_context_grown_from_a_file_without_it_computes_the_same(self):
        import mmsnet
        import train
        r, _ = self.run_for("--mode", "sup", "--set", "context=gap", "--init", self.SHIPPED)
        plain = mmsnet.build("mms-rt", {})
        plain.load_state_dict(train.network_weights(self.SHIPPED))
        x = torch.randn(1, 3, 64, 128)
        net = r.nets[0].eval()
        with torch.no_grad():
            # (not bit-equal: the run keeps its networks channels-last)
            self.assertLess(float((net(x) - plain.eval()(x)).abs().max()), 1e-4)
        self.assertIsNotNone(net.ctx)

    def test_context_trains_from_its_zero_start(self):
        r, opt = self.run_for("--mode", "sup", "--batch", "2", "--set", "context=gap",
                              "--init", self.SHIPPED)
        self.assertTrue(self.covered([r.nets[0].ctx], opt))
        r.step()
        self.assertGreater(float(r.nets[0].ctx.fc2.weight.abs().sum()), 0.0)

    def test_init_missing_other_tensors_is_refused(self):
        import safetensors_io
        import tempfile
        sd, meta = safetensors_io.load_file(self.SHIPPED)
        sd = {k: v for k, v in sd.items() if not k.startswith(("int8.", "final."))}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cut.safetensors")
            safetensors_io.save_file(sd, path, meta)
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--set", "context=gap", "--init", path)

    def test_unknown_context_is_refused(self):
        with self.assertRaises(ValueError):
            self.run_for("--mode", "sup", "--set", "context=ppm")

    SHIPPED = os.path.join(ROOT, "models", "mms-rt.safetensors")

    def test_pseudo_teacher_stays_out_of_the_optimiser(self):
        r, opt = self.run_for("--mode", "sup", "--pseudo", self.SHIPPED)
        self.assertFalse(any(id(p) in opt for p in r.teacher.parameters()))
        self.assertTrue(self.covered(r.nets, opt))

    def test_pseudo_step_leaves_the_teacher_as_it_was(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--pseudo", self.SHIPPED)
        before = {k: v.clone() for k, v in r.teacher.state_dict().items()}
        rec = r.step()
        self.assertIn("l_pseudo", rec)
        self.assertTrue(all(torch.equal(v, r.teacher.state_dict()[k]) for k, v in before.items()))

    def test_pseudo_term_enters_the_loss_at_its_weight(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--pseudo", self.SHIPPED,
                            "--pseudo-weight", "0.25")
        rec = r.step()
        self.assertGreater(rec["l_pseudo"], 0.0)
        self.assertAlmostEqual(rec["loss"], rec["l_sup"] + 0.25 * rec["l_pseudo"], places=4)

    def test_pseudo_unsure_teacher_teaches_nothing(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--pseudo", self.SHIPPED)
        with torch.no_grad():
            for p in r.teacher.parameters():
                p.zero_()   # logits 0: probability 0.5 everywhere, no pixel confident
        self.assertEqual(r.pseudo_loss(r.nets[0]).item(), 0.0)

    def test_pseudo_sure_teacher_teaches(self):
        r, _ = self.run_for("--mode", "sup", "--batch", "2", "--pseudo", self.SHIPPED)
        with torch.no_grad():
            for p in r.teacher.parameters():
                p.zero_()
            list(r.teacher.parameters())[-1].fill_(10.0)   # the head's bias: tool everywhere
        self.assertGreater(r.pseudo_loss(r.nets[0]).item(), 0.1)

    def test_pseudo_is_refused_with_mms(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "mms", "--pseudo", self.SHIPPED)

    def test_pseudo_conf_outside_half_to_one_is_refused(self):
        for c in ("0.5", "1.0", "0.2"):
            with self.assertRaises(SystemExit):
                self.run_for("--mode", "sup", "--pseudo", self.SHIPPED, "--pseudo-conf", c)

    def test_pseudo_missing_teacher_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_for("--mode", "sup", "--pseudo", "/nonexistent/teacher.safetensors")

    def test_sup_trains_one_network(self):
        r, opt = self.run_for("--mode", "sup")
        self.assertEqual(len(r.nets), 1)
        self.assertTrue(self.covered(r.nets, opt))
        self.assertEqual(len(opt), sum(1 for _ in r.nets[0].parameters()))


class Pack(unittest.TestCase):
    """data.py pack: the compact copy of the training data carried to a lent
    GPU machine (models/gpukit.sh), on a small synthetic data root."""

    def setUp(self):
        import tempfile
        from PIL import Image
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "data")
        self.split = {}
        g = torch.Generator().manual_seed(0)
        rgb = lambda h, w: (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()
        for k, folder in enumerate(data.LABELED):
            for sub in ("image", "mask"):
                os.makedirs(os.path.join(self.root, "labeled", folder, sub))
            stems = [f"f{k}_{i}" for i in range(3)]
            for s in stems:
                Image.fromarray(rgb(40, 60)).save(os.path.join(self.root, "labeled", folder, "image", s + ".jpg"))
                Image.fromarray(rgb(40, 60)[..., 0]).save(os.path.join(self.root, "labeled", folder, "mask", s + ".png"))
            self.split[folder] = {"train": stems[:2], "val": stems[2:]}
        for n, src in zip((5, 2, 4), data.UNLABELED):
            d = os.path.join(self.root, "unlabeled", src, "frames")
            os.makedirs(d)
            for i in range(n):
                Image.fromarray(rgb(36, 64)).save(os.path.join(d, f"{i}.png"))
        self.out = os.path.join(self.tmp.name, "kit")

    def tearDown(self):
        self.tmp.cleanup()

    def pack(self, **kw):
        self.cache = os.path.join(self.tmp.name, "cache")
        return data.pack(self.root, self.split, self.out, hw=(32, 64), per_source=3,
                         cache_dir=self.cache, log=lambda m: None, **kw)

    def test_labeled_frames_are_copied_as_they_are(self):
        self.pack()
        for folder in data.LABELED:
            for stem in self.split[folder]["train"] + self.split[folder]["val"]:
                for sub in ("image", "mask"):
                    a = data.find_file(os.path.join(self.root, "labeled", folder, sub), stem)
                    b = data.find_file(os.path.join(self.out, "labeled", folder, sub), stem)
                    with open(a, "rb") as fa, open(b, "rb") as fb:
                        self.assertEqual(fa.read(), fb.read())

    def test_unlabeled_sources_keep_at_most_per_source_frames_at_the_size(self):
        self.pack()
        srcs = data.unlabeled_sources(self.out, 5)
        self.assertEqual({k: len(v) for k, v in srcs.items()},
                         {"intermountain-lap": 3, "gyn-laparoscopy": 2, "cholec80-clips": 3})
        self.assertTrue(all(kind == "image" for v in srcs.values() for kind, _ in v))
        self.assertEqual(tuple(data.read_rgb(srcs["cholec80-clips"][0][1]).shape), (32, 64, 3))

    def stage(self, split):
        import subprocess
        f = os.path.join(self.tmp.name, "split.json")
        with open(f, "w") as fh:
            json.dump(split, fh)
        out = os.path.join(self.tmp.name, "stage")
        p = subprocess.run([sys.executable, os.path.join(ROOT, "models", "data.py"), "stage",
                            "--data", self.root, "--split-file", f, "--out", out],
                           capture_output=True, text=True)
        return p, out

    def staged(self, out, folder):
        return sorted(os.listdir(os.path.join(out, folder, "image")))

    def test_stage_links_the_validation_frames(self):
        p, out = self.stage(self.split)
        self.assertEqual(p.returncode, 0, p.stderr)
        for folder in data.LABELED:
            self.assertEqual(self.staged(out, folder), [self.split[folder]["val"][0] + ".jpg"])

    def test_stage_again_drops_frames_the_split_moved(self):
        self.stage(self.split)
        moved = {k: {"train": v["train"][1:] + v["val"], "val": v["train"][:1]}
                 for k, v in self.split.items()}
        p, out = self.stage(moved)
        self.assertEqual(p.returncode, 0, p.stderr)
        for folder in data.LABELED:
            self.assertEqual(self.staged(out, folder), [moved[folder]["val"][0] + ".jpg"])

    def test_stage_leaves_a_file_it_did_not_make(self):
        _, out = self.stage(self.split)
        mine = os.path.join(out, data.LABELED[0], "image", "notes.txt")
        with open(mine, "w") as fh:
            fh.write("x")
        p, _ = self.stage(self.split)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a link stage made", p.stderr)
        self.assertTrue(os.path.exists(mine))

    def test_stage_leaves_a_kept_name_that_is_a_file(self):
        _, out = self.stage(self.split)
        folder = data.LABELED[0]
        kept = os.path.join(out, folder, "image", self.split[folder]["val"][0] + ".jpg")
        os.remove(kept)
        with open(kept, "w") as fh:
            fh.write("mine")
        p, _ = self.stage(self.split)     # the split still names it
        self.assertNotEqual(p.returncode, 0)
        with open(kept) as fh:
            self.assertEqual(fh.read(), "mine")

    def test_cache_key_follows_size_and_version(self):
        a = os.path.join(self.tmp.name, "a.png")
        with open(a, "wb") as fh:
            fh.write(b"12")
        k1 = data.cache_key([("image", a)])
        with open(a, "wb") as fh:
            fh.write(b"123")
        k2 = data.cache_key([("image", a)])
        self.assertNotEqual(k1, k2)
        old = data.CACHE_VERSION
        try:
            data.CACHE_VERSION = old + 1
            self.assertNotEqual(data.cache_key([("image", a)]), k2)
        finally:
            data.CACHE_VERSION = old

    def test_pack_trains_like_the_data_root(self):
        self.pack()
        u = data.Unlabeled(self.out, (32, 64), os.path.join(self.tmp.name, "cache"), log=lambda m: None)
        self.assertEqual(u.counts(), {"cholec80-clips": 3, "gyn-laparoscopy": 2, "intermountain-lap": 3})
        lab = data.Labeled(self.out, self.split, list(data.LABELED), "val", (32, 64), keep_full=True)
        self.assertEqual(tuple(lab.full_masks[0].shape), (40, 60))

    def test_pack_over_the_limit_is_refused(self):
        with self.assertRaises(SystemExit):
            self.pack(limit=1000)

    def test_refused_pack_leaves_nothing_behind(self):
        with self.assertRaises(SystemExit):
            self.pack(limit=1000)
        self.assertFalse(os.path.exists(self.out))
        self.assertFalse(os.path.exists(self.out + ".partial"))

    def test_existing_out_is_refused(self):
        os.makedirs(self.out)
        with self.assertRaises(SystemExit):
            self.pack()
        self.assertEqual(os.listdir(self.out), [])

    def test_pack_decodes_through_the_training_cache(self):
        self.pack()
        cached = sorted(f.split("_")[0] for f in os.listdir(self.cache) if f.endswith(".npy"))
        self.assertEqual(cached, sorted(data.UNLABELED))

    def test_missing_labeled_frame_is_an_error(self):
        self.split["cataract"]["train"].append("nosuchframe")
        with self.assertRaises(FileNotFoundError):
            self.pack()


class Split(unittest.TestCase):
    def test_committed_split(self):
        if not os.path.isdir(data.DEFAULT_DATA):
            if os.environ.get("CI") == "true":
                self.fail("../shared/data is missing (required under CI=true)")
            self.skipTest("no ../shared/data")
        split = data.load_split()
        self.assertEqual(split, data.make_split(), "models/split.json is not what data.py split writes")
        for folder in data.LABELED:
            tr, va = split[folder]["train"], split[folder]["val"]
            self.assertFalse(set(tr) & set(va))
            stems = data._stems(os.path.join(data.DEFAULT_DATA, "labeled", folder))
            self.assertEqual(sorted(tr + va), stems)
            # endovis15 has three operations: one whole operation is a third
            self.assertTrue(0.2 <= len(va) / len(stems) <= 0.34, folder)
        idx = sorted(int(s.split("_")[1]) for s in split["cholec80-v01"]["val"])
        self.assertEqual(idx, list(range(idx[0], idx[0] + len(idx))), "Cholec80 val must be one block")
        groups_tr = {data.cataract_group(s) for s in split["cataract"]["train"]}
        groups_va = {data.cataract_group(s) for s in split["cataract"]["val"]}
        self.assertFalse(groups_tr & groups_va, "a cataract case straddles the split")
        ops_tr = {data.endovis_op(s) for s in split["endovis15"]["train"]}
        ops_va = {data.endovis_op(s) for s in split["endovis15"]["val"]}
        self.assertFalse(ops_tr & ops_va, "an endovis15 operation straddles the split")
        self.assertEqual(ops_va, {"op3"})

    def test_endovis_op_rejects_foreign_names(self):
        self.assertEqual(data.endovis_op("op2_img17"), "op2")
        for bad in ("op2", "img17", "op2_img17_x", "OP2_img17"):
            with self.assertRaises(ValueError):
                data.endovis_op(bad)


class Balance(unittest.TestCase):
    """--balance 1 draws each folder equally often, whatever its size."""

    def draw(self, balance, n=3000, weights=""):
        import train
        r = train.Run.__new__(train.Run)
        r.args = type("A", (), {"balance": balance, "folder_weights": weights})()
        r.train = _Sized(["big"] * 80 + ["small"] * 10)
        r.perm, r.perms = torch.empty(0, dtype=torch.long), {}
        r.gen = torch.Generator().manual_seed(0)
        idx = r.labeled_idx(n)
        return sum(1 for i in idx.tolist() if r.train.folders[i] == "small") / n

    def test_balanced_draws_folders_equally(self):
        self.assertAlmostEqual(self.draw(1), 0.5, delta=0.05)

    def test_unbalanced_draws_frames_equally(self):
        self.assertAlmostEqual(self.draw(0), 10 / 90, delta=0.03)

    def test_folder_weight_draws_a_folder_more_often(self):
        self.assertAlmostEqual(self.draw(1, weights="small=3"), 0.75, delta=0.05)

    def test_folder_weight_of_an_unknown_folder_is_refused(self):
        with self.assertRaises(SystemExit):
            self.draw(1, weights="nosuch=2")

    def test_folder_weight_must_be_positive(self):
        for bad in ("small=0", "small=-1", "small=x", "small"):
            with self.assertRaises(SystemExit):
                self.draw(1, weights=bad)

    def test_balanced_visits_every_frame_of_a_folder(self):
        import train
        r = train.Run.__new__(train.Run)
        r.args = type("A", (), {"balance": 1, "folder_weights": ""})()
        r.train = _Sized(["a"] * 7 + ["b"] * 3)
        r.perms, r.gen = {}, torch.Generator().manual_seed(1)
        seen = set(r.labeled_idx(200).tolist())
        self.assertEqual(seen, set(range(10)))


class _Sized:
    def __init__(self, folders):
        self.folders = folders

    def __len__(self):
        return len(self.folders)


if __name__ == "__main__":
    unittest.main()
