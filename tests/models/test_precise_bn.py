#!/usr/bin/env python3
"""Unit tests of models/precise_bn.py: BatchNorm statistics recomputed as
the population statistics of each layer's input.

  /usr/bin/python3 tests/models/test_precise_bn.py      (about 10 s, CPU)
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import data            # noqa: E402
import mmsnet          # noqa: E402
import precise_bn      # noqa: E402
import safetensors_io  # noqa: E402

SHIPPED = os.path.join(ROOT, "models", "mms-rt.safetensors")


def two_layers(seed=0):
    """conv -> BN -> ReLU -> conv -> BN, with stale running statistics."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 5, 3, padding=1), nn.BatchNorm2d(5))
    for bn in (net[1], net[4]):
        bn.running_mean.fill_(7.0)
        bn.running_var.fill_(9.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def frames(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, 8, 12, generator=g) * (i + 1) + i for i in range(n)]


def moments(xs):
    x = torch.cat(xs).double()
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


class Order(unittest.TestCase):
    def test_layers_come_in_forward_order(self):
        net = two_layers()
        self.assertEqual(precise_bn.bn_layers(net, frames(1)[0]), [net[1], net[4]])

    def test_every_layer_of_mms_rt_is_found_once(self):
        net = mmsnet.build("mms-rt")
        found = precise_bn.bn_layers(net, torch.zeros(1, 3, 32, 64))
        every = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        self.assertEqual(len(found), len(every))
        self.assertEqual(set(map(id, found)), set(map(id, every)))


class Statistics(unittest.TestCase):
    def test_first_layer_gets_its_inputs_population_moments(self):
        net, xs = two_layers(), frames()
        precise_bn.recompute(net, xs, [1.0] * len(xs))
        with torch.no_grad():
            mean, var = moments([net[0](x) for x in xs])
        torch.testing.assert_close(net[1].running_mean, mean.float(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net[1].running_var, var.float(), rtol=1e-5, atol=1e-5)

    def test_later_layer_sees_the_updated_earlier_one(self):
        net, xs = two_layers(), frames()
        precise_bn.recompute(net, xs, [1.0] * len(xs))
        with torch.no_grad():
            mean, var = moments([net[:4](x) for x in xs])   # through the updated BN
        torch.testing.assert_close(net[4].running_mean, mean.float(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net[4].running_var, var.float(), rtol=1e-5, atol=1e-5)

    def test_a_weight_of_two_counts_a_frame_twice(self):
        xs = frames()
        a, b = two_layers(), two_layers()
        precise_bn.recompute(a, xs, [2.0, 1.0, 1.0])
        precise_bn.recompute(b, [xs[0]] + xs, [1.0] * 4)
        for i in (1, 4):
            torch.testing.assert_close(a[i].running_mean, b[i].running_mean)
            torch.testing.assert_close(a[i].running_var, b[i].running_var)

    def test_weights_and_affine_parameters_are_untouched(self):
        net = two_layers()
        before = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k
                  and "num_batches" not in k}
        precise_bn.recompute(net, frames(), [1.0] * 3)
        for k, v in before.items():
            self.assertTrue(torch.equal(net.state_dict()[k], v), k)

    def test_eval_output_is_normalised_on_the_frames(self):
        net = two_layers()
        for bn in (net[1], net[4]):           # identity affine: output = normalised input
            bn.weight.data.fill_(1.0)
            bn.bias.data.fill_(0.0)
        xs = frames()
        precise_bn.recompute(net, xs, [1.0] * 3)
        with torch.no_grad():
            mean, var = moments([net(x) for x in xs])
        torch.testing.assert_close(mean.float(), torch.zeros(5), atol=1e-4, rtol=0)
        torch.testing.assert_close(var.float(), torch.ones(5), atol=1e-3, rtol=0)


class Refusals(unittest.TestCase):
    def test_no_frames(self):
        with self.assertRaises(ValueError):
            precise_bn.recompute(two_layers(), [], [])

    def test_weights_do_not_match_frames(self):
        with self.assertRaises(ValueError):
            precise_bn.recompute(two_layers(), frames(), [1.0, 1.0])

    def test_a_zero_weight(self):
        with self.assertRaises(ValueError):
            precise_bn.recompute(two_layers(), frames(), [1.0, 0.0, 1.0])

    def test_folder_weights_parse(self):
        self.assertEqual(data.parse_folder_weights("cataract=2,endovis15=0.5", data.LABELED),
                         {"cholec80-v01": 1.0, "cataract": 2.0, "endovis15": 0.5})
        self.assertEqual(data.parse_folder_weights("", ["cataract"]), {"cataract": 1.0})

    def test_folder_weights_unknown_folder(self):
        with self.assertRaises(ValueError):
            data.parse_folder_weights("kvasir=2", data.LABELED)

    def test_folder_weights_not_positive(self):
        with self.assertRaises(ValueError):
            data.parse_folder_weights("cataract=0", data.LABELED)

    def test_folder_weights_without_value(self):
        with self.assertRaises(ValueError):
            data.parse_folder_weights("cataract", data.LABELED)

    def test_a_bad_weight_stops_the_command(self):
        meta = {"mms.input": "32x64", "mms.mean": "0,0,0", "mms.std": "1,1,1"}
        split = {f: {"train": ["x"], "val": []} for f in data.LABELED}
        with self.assertRaises(SystemExit):
            precise_bn.training_frames(meta, split, "/nonexistent", "kvasir=2")


class Command(unittest.TestCase):
    """The command on the shipped model, with a one-frame-per-folder split."""

    def test_writes_a_model_without_the_stale_calibration(self):
        if not os.path.isdir(data.DEFAULT_DATA):
            if os.environ.get("CI") == "true":
                self.fail(f"{data.DEFAULT_DATA} is missing")
            self.skipTest(f"{data.DEFAULT_DATA} is missing")
        split = data.load_split()
        small = {f: {"train": split[f]["train"][:1], "val": []} for f in data.LABELED}
        with tempfile.TemporaryDirectory() as d:
            sp, out = os.path.join(d, "split.json"), os.path.join(d, "m.safetensors")
            with open(sp, "w") as f:
                json.dump(small, f)
            subprocess.run([sys.executable, os.path.join(ROOT, "models", "precise_bn.py"), SHIPPED,
                            "-o", out, "--split", sp], check=True, stdout=subprocess.DEVNULL)
            old, old_meta = safetensors_io.load_file(SHIPPED)
            new, meta = safetensors_io.load_file(out)
        self.assertFalse([k for k in meta if k.startswith("int8")])
        self.assertFalse([k for k in new if k.startswith("int8")])
        self.assertIn("3 training-split frames", meta["train.precise_bn"])
        self.assertEqual(meta["mms.arch"], old_meta["mms.arch"])
        moved = [k for k in new if k.endswith("running_mean") and not torch.equal(new[k], old[k])]
        self.assertTrue(moved)
        self.assertTrue(all(torch.equal(new[k], old[k]) for k in new if k.endswith(".weight")))


if __name__ == "__main__":
    unittest.main()
