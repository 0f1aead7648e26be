#!/usr/bin/env python3
"""Unit tests of models/widen.py: an mms-rt model grown to twice its width
computes the same function.

  /usr/bin/python3 tests/models/test_widen.py      (about 10 s, CPU)
"""

import os
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import export          # noqa: E402
import mmsnet          # noqa: E402
import reference       # noqa: E402
import safetensors_io  # noqa: E402
import widen           # noqa: E402

SMALL = {"mms.arch": "mms-rt", "mms.widths": "8,8,16,16,32", "mms.blocks": "1,1,2,1",
         "mms.decoder": "24,16,8,8"}
TWICE = ([16, 16, 32, 32, 64], [48, 32, 16, 16])
MIXED = ([16, 16, 24, 24, 48], [32, 24, 16, 16])       # 8 doubles, 16 and 32 grow by half


def narrow(seed=0):
    """A small mms-rt with random weights and BN statistics, in eval mode."""
    net = mmsnet.build("mms-rt", SMALL)
    export.randomize(net, seed)
    return net.eval()


def grown(net, seed=0, target=TWICE):
    _, meta, plan = widen.wide_meta(dict(SMALL), *target)
    wide = mmsnet.build("mms-rt", meta)
    wide.load_state_dict(widen.widen_state(net, net.state_dict(), plan, seed))
    return wide.eval()


class SameFunction(unittest.TestCase):
    def test_logits_are_unchanged(self):
        net = narrow()
        wide = grown(net)
        x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            torch.testing.assert_close(wide(x), net(x), rtol=1e-4, atol=1e-4)

    def test_logits_are_unchanged_by_a_mixed_plan(self):
        net = narrow()
        wide = grown(net, target=MIXED)
        x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            torch.testing.assert_close(wide(x), net(x), rtol=1e-4, atol=1e-4)

    def test_the_card_gives_the_new_widths(self):
        _, meta, plan = widen.wide_meta(dict(SMALL), *MIXED)
        self.assertEqual(meta["mms.widths"], "16,16,24,24,48")
        self.assertEqual(meta["mms.decoder"], "32,24,16,16")
        self.assertEqual(plan, {8: 16, 16: 24, 32: 48, 24: 32})

    def test_the_blocks_stay(self):
        _, meta, _ = widen.wide_meta(dict(SMALL), *TWICE)
        self.assertEqual(meta["mms.blocks"], "1,1,2,1")

    def test_copies_differ_so_training_can_separate_them(self):
        net = narrow()
        w = grown(net).state_dict()["layers.0.0.conv1.weight"]
        c = w.shape[1] // 2
        self.assertFalse(torch.allclose(w[:, :c], w[:, c:]))

    def test_each_pair_of_copies_sums_to_the_original(self):
        net = narrow()
        w0 = net.state_dict()["dec.0.conv1.weight"]           # reads [skip, upsampled]
        w = grown(net).state_dict()["dec.0.conv1.weight"]
        skip, up = 16, 32                                      # widths[3], widths[4]
        s = w[: w0.shape[0]]
        summed = torch.cat([s[:, :skip] + s[:, skip:2 * skip],
                            s[:, 2 * skip:2 * skip + up] + s[:, 2 * skip + up:]], 1)
        torch.testing.assert_close(summed, w0)

    def test_the_seed_draws_the_fractions(self):
        net = narrow()
        a = grown(net, 1).state_dict()["stem.3.weight"]
        b = grown(net, 2).state_dict()["stem.3.weight"]
        self.assertFalse(torch.equal(a, b))


class Pieces(unittest.TestCase):
    def test_source_channels_tile_each_segment(self):
        self.assertEqual(widen.source_channels([2, 3], {2: 4, 3: 6}).tolist(),
                         [0, 1, 0, 1, 2, 3, 4, 2, 3, 4])

    def test_source_channels_copy_the_first_ones(self):
        self.assertEqual(widen.source_channels([4], {4: 6}).tolist(), [0, 1, 2, 3, 0, 1])

    def test_a_channel_without_a_copy_keeps_its_weight(self):
        w = torch.randn(2, 4, 1, 1)
        out = widen.widen_conv(w, False, [4], torch.Generator(), {4: 6})
        torch.testing.assert_close(out[:, 2:4], w[:, 2:4])
        torch.testing.assert_close(out[:, 0:2] + out[:, 4:6], w[:, 0:2])

    def test_rgb_input_is_not_split(self):
        w = torch.randn(4, 3, 3, 3)
        out = widen.widen_conv(w, True, None, torch.Generator(), {4: 8})
        torch.testing.assert_close(out, torch.cat([w, w]))

    def test_a_one_channel_output_stays_one(self):
        w = torch.randn(1, 4, 1, 1)
        self.assertEqual(widen.widen_conv(w, False, [4], torch.Generator(), {4: 8}).shape, (1, 8, 1, 1))

    def test_segments_must_cover_the_input(self):
        with self.assertRaises(AssertionError):
            widen.widen_conv(torch.randn(4, 6, 3, 3), True, [4], torch.Generator(), {4: 8})


class Refusals(unittest.TestCase):
    def test_only_mms_rt_grows(self):
        with self.assertRaises(SystemExit):
            widen.wide_meta({"mms.arch": "res2net-unet"}, [32, 64, 128, 256, 512], [192, 96, 64, 32])

    def test_one_width_growing_two_ways(self):
        with self.assertRaises(ValueError):
            widen.make_plan([8, 8], [16, 12])

    def test_more_than_twice(self):
        with self.assertRaises(ValueError):
            widen.make_plan([8], [17])

    def test_narrower(self):
        with self.assertRaises(ValueError):
            widen.make_plan([8], [7])

    def test_a_missing_width(self):
        with self.assertRaises(ValueError):
            widen.make_plan([8, 16], [16])

    def test_the_card_refuses_a_bad_plan(self):
        with self.assertRaises(SystemExit):
            widen.wide_meta(dict(SMALL), [16, 12, 32, 32, 64], TWICE[1])

    def test_a_tensor_the_widening_does_not_know(self):
        net = narrow()
        sd = dict(net.state_dict())
        sd["extra.weight"] = torch.zeros(1)
        with self.assertRaises(ValueError):
            widen.widen_state(net, sd, widen.make_plan([8, 16, 32, 24], [16, 32, 64, 48]))


class Command(unittest.TestCase):
    def test_the_file_loads_and_drops_the_int8_calibration(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "n.safetensors"), os.path.join(d, "w.safetensors")
            net = narrow()
            meta = dict(SMALL, **{"mms.input": "64x96", "mms.mean": "0.5,0.5,0.5",
                                  "mms.std": "0.25,0.25,0.25", "mms.threshold": "0.5",
                                  "int8.method": "absmax"})
            safetensors_io.save_file(net.state_dict(), src, meta)
            subprocess.run([sys.executable, os.path.join(ROOT, "models", "widen.py"), src, "-o", out,
                            "--widths", "16,16,24,24,48", "--decoder", "32,24,16,16"],
                           check=True, stdout=subprocess.DEVNULL)
            wide, wmeta = reference.load(out)
        self.assertNotIn("int8.method", wmeta)
        self.assertEqual(wmeta["train.widened_from"], "n.safetensors")
        x = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            torch.testing.assert_close(wide(x), net(x), rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    unittest.main()
