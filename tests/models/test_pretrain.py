#!/usr/bin/env python3
"""Unit tests of models/pretrain.py (masked-inpainting pretraining).

  /usr/bin/python3 tests/models/test_pretrain.py      (a few seconds, CPU)

The data classes are replaced by random frames: what is tested is the
pretext (masks, loss), the checkpoint train.py --init reads, and the checks
of the command line, not the data.
"""

import os
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import data      # noqa: E402
import pretrain  # noqa: E402
import train     # noqa: E402


class _Frames:
    """Stands in for data.Labeled / data.Unlabeled; records which split
    part each Labeled was asked for."""
    parts = []

    def __init__(self, *a, **kw):
        if len(a) >= 4 and isinstance(a[3], str):     # Labeled(root, split, folders, part, hw)
            _Frames.parts.append(a[3])
        g = torch.Generator().manual_seed(0)
        self.img = torch.rand(3, 3, 64, 96, generator=g)
        self.mask = torch.zeros(3, 1, 64, 96)
        self.folders = ["cataract", "cholec80-v01", "endovis15"]

    def __len__(self):
        return 3

    def counts(self):
        return {"fake": 3}

    def sample(self, n, gen):
        return torch.rand(n, 3, 64, 96, generator=gen)


class _FakeData:
    def __enter__(self):
        self.saved = data.Labeled, data.Unlabeled, data.load_split
        data.Labeled = data.Unlabeled = _Frames
        data.load_split = lambda path: {}
        _Frames.parts = []
        return self

    def __exit__(self, *exc):
        data.Labeled, data.Unlabeled, data.load_split = self.saved


def pretrain_run(out, *argv):
    a = pretrain.parser().parse_args(["--size", "64x96", "--batch", "4", "--out", out,
                                      "--log-every", "1", "--save-every", "1"] + list(argv))
    with _FakeData():
        p = pretrain.Pretrain(a)
        p.run()
    return p


class PatchMask(unittest.TestCase):
    def test_masks_whole_patches(self):
        g = torch.Generator().manual_seed(0)
        m = pretrain.patch_mask(4, (64, 96), 16, 0.5, g)
        blocks = m.view(4, 1, 4, 16, 6, 16)
        self.assertTrue(torch.equal(blocks.amax((3, 5)), blocks.amin((3, 5))))

    def test_masked_share_follows_the_ratio(self):
        g = torch.Generator().manual_seed(1)
        m = pretrain.patch_mask(64, (64, 96), 8, 0.6, g)
        self.assertAlmostEqual(m.mean().item(), 0.6, delta=0.03)

    def test_every_image_has_a_masked_patch(self):
        g = torch.Generator().manual_seed(2)
        m = pretrain.patch_mask(32, (64, 96), 16, 1e-6, g)
        self.assertTrue(bool((m.flatten(1).sum(1) > 0).all()))

    def test_size_not_a_multiple_of_the_patch(self):
        g = torch.Generator().manual_seed(3)
        self.assertEqual(tuple(pretrain.patch_mask(2, (50, 70), 16, 0.5, g).shape), (2, 1, 50, 70))


class Pretext(unittest.TestCase):
    def setUp(self):
        self.t = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(4)) + 3.0
        self.x, self.m = pretrain.pretext(self.t, 16, 0.5, torch.Generator().manual_seed(5))

    def test_masked_pixels_are_hidden(self):
        self.assertEqual((self.x * self.m).abs().sum().item(), 0.0)

    def test_visible_pixels_are_kept(self):
        self.assertTrue(torch.equal(self.x * (1 - self.m), self.t * (1 - self.m)))


class MaskedMSE(unittest.TestCase):
    def setUp(self):
        self.t = torch.zeros(1, 3, 8, 8)
        self.m = torch.zeros(1, 1, 8, 8)
        self.m[..., :4, :] = 1

    def test_errors_on_visible_pixels_cost_nothing(self):
        p = self.t.clone()
        p[..., 4:, :] = 5.0
        self.assertEqual(pretrain.masked_mse(p, self.t, self.m).item(), 0.0)

    def test_errors_on_masked_pixels_are_averaged_over_them(self):
        p = self.t.clone()
        p[..., :4, :] = 2.0
        self.assertAlmostEqual(pretrain.masked_mse(p, self.t, self.m).item(), 4.0, places=5)


class Checkpoint(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_init_carries_the_encoder_and_a_one_channel_head(self):
        p = pretrain_run(self.out, "--iters", "2")
        ck = torch.load(os.path.join(self.out, "init.pt"), weights_only=False)
        sd = ck["nets"][0]
        self.assertEqual(tuple(sd["final.weight"].shape)[0], 1)
        self.assertTrue(torch.equal(sd["stem.0.weight"], p.net.state_dict()["stem.0.weight"]))

    def test_train_init_reads_the_pretrained_weights(self):
        p = pretrain_run(self.out, "--iters", "2")
        init = os.path.join(self.out, "init.pt")
        with _FakeData(), tempfile.TemporaryDirectory() as out2:
            a = train.parser().parse_args(["--mode", "sup", "--size", "64x96", "--val-size", "64x96",
                                           "--init", init, "--out", out2])
            r = train.Run(a)
        want = p.net.state_dict()["layers.0.0.conv1.weight"]
        self.assertTrue(torch.equal(r.nets[0].state_dict()["layers.0.0.conv1.weight"], want))

    def test_training_moves_the_weights(self):
        before = train.seeded(1, lambda: pretrain.build("mms-rt", {}, 3)).state_dict()["stem.0.weight"]
        p = pretrain_run(self.out, "--iters", "2", "--seed", "0")
        self.assertFalse(torch.equal(p.net.state_dict()["stem.0.weight"], before))

    def test_resume_continues_where_it_stopped(self):
        pretrain_run(self.out, "--iters", "2")
        p = pretrain_run(self.out, "--iters", "3", "--resume")
        with open(os.path.join(self.out, "log.jsonl")) as f:
            its = [r for r in f.read().splitlines() if '"event": "train"' in r]
        self.assertEqual(p.it, 3)
        self.assertEqual(len(its), 3)

    def test_reads_training_frames_only(self):
        pretrain_run(self.out, "--iters", "1")
        self.assertEqual(_Frames.parts, ["train"])


class CommandLine(unittest.TestCase):
    def refused(self, *argv):
        with tempfile.TemporaryDirectory() as out:
            sys.argv = ["pretrain.py", "--out", out] + list(argv)
            with self.assertRaises(SystemExit) as cm:
                pretrain.main()
        self.assertNotEqual(cm.exception.code, 0)

    def test_mask_ratio_of_zero_or_one_is_refused(self):
        self.refused("--mask-ratio", "0")
        self.refused("--mask-ratio", "1")

    def test_labeled_share_above_one_is_refused(self):
        self.refused("--labeled-frac", "1.5")

    def test_patch_of_zero_is_refused(self):
        self.refused("--patch", "0")

    def test_other_architectures_are_refused(self):
        with self.assertRaises(SystemExit):
            pretrain.build("mms-res2net101", {}, 3)


if __name__ == "__main__":
    unittest.main()
