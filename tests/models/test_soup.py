#!/usr/bin/env python3
"""Unit tests of models/soup.py: the uniform average of model files
fine-tuned from one start.

  /usr/bin/python3 tests/models/test_soup.py      (about 2 s, CPU)
"""

import os
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import safetensors_io  # noqa: E402
import soup            # noqa: E402


def model(seed, init="start.safetensors", **meta):
    g = torch.Generator().manual_seed(seed)
    t = {"conv.weight": torch.randn(4, 3, 3, 3, generator=g),
         "bn.running_var": torch.rand(4, generator=g) + 0.5,
         "bn.num_batches_tracked": torch.tensor(seed, dtype=torch.int64)}
    m = {"mms.arch": "mms-rt", "train.init": init, "train.seed": str(seed),
         "train.val_dice": "0.8", "int8.scale.conv": "0.1", "mms.input": "288x512"}
    m.update(meta)
    return t, m


class Average(unittest.TestCase):
    def test_floats_are_the_element_wise_mean(self):
        a, b, c = model(1), model(2), model(3)
        out, _ = soup.average([a, b, c])
        for k in ("conv.weight", "bn.running_var"):
            want = (a[0][k].double() + b[0][k].double() + c[0][k].double()) / 3
            self.assertTrue(torch.allclose(out[k].double(), want, atol=1e-6), k)
            self.assertEqual(out[k].dtype, torch.float32)

    def test_counters_are_the_first_models(self):
        out, _ = soup.average([model(1), model(2)])
        self.assertEqual(int(out["bn.num_batches_tracked"]), 1)

    def test_card_keeps_the_network_and_drops_what_was_one_runs(self):
        _, meta = soup.average([model(1), model(2)])
        self.assertEqual(meta["mms.input"], "288x512")
        self.assertEqual(meta["train.init"], "start.safetensors")
        self.assertEqual(meta["train.soup"], "2")
        for k in ("train.seed", "train.val_dice", "int8.scale.conv"):
            self.assertNotIn(k, meta)

    def test_one_model_is_refused(self):
        with self.assertRaises(ValueError):
            soup.average([model(1)])

    def test_another_start_is_refused(self):
        with self.assertRaises(ValueError):
            soup.average([model(1), model(2, init="other.safetensors")])

    def test_no_named_start_is_refused(self):
        with self.assertRaises(ValueError):
            soup.average([model(1, init=""), model(2, init="")])

    def test_another_network_is_refused(self):
        with self.assertRaises(ValueError):
            soup.average([model(1), model(2, **{"mms.arch": "mms-res2net101"})])

    def test_another_shape_is_refused(self):
        b = model(2)
        b[0]["conv.weight"] = torch.zeros(8, 3, 3, 3)
        with self.assertRaises(ValueError):
            soup.average([model(1), b])

    def test_a_missing_tensor_is_refused(self):
        b = model(2)
        del b[0]["bn.running_var"]
        with self.assertRaises(ValueError):
            soup.average([model(1), b])


class Command(unittest.TestCase):
    def run_soup(self, *files, out):
        return subprocess.run([sys.executable, os.path.join(ROOT, "models", "soup.py"), *files,
                               "-o", out], capture_output=True, text=True)

    def test_writes_the_soup(self):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for s in (1, 2):
                p = os.path.join(d, f"m{s}.safetensors")
                t, m = model(s)
                safetensors_io.save_file(t, p, m)
                paths.append(p)
            r = self.run_soup(*paths, out=os.path.join(d, "soup.safetensors"))
            self.assertEqual(r.returncode, 0, r.stderr)
            t, meta = safetensors_io.load_file(os.path.join(d, "soup.safetensors"))
            self.assertEqual(meta["train.soup"], "2")
            self.assertTrue(torch.allclose(t["conv.weight"],
                                           (model(1)[0]["conv.weight"] + model(2)[0]["conv.weight"]) / 2))

    def test_a_truncated_file_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m1.safetensors")
            t, m = model(1)
            safetensors_io.save_file(t, p, m)
            with open(p, "rb") as f:
                raw = f.read()
            q = os.path.join(d, "cut.safetensors")
            with open(q, "wb") as f:
                f.write(raw[:len(raw) // 2])
            r = self.run_soup(p, q, out=os.path.join(d, "soup.safetensors"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("soup.py:", r.stderr)
            self.assertNotIn("Traceback", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "soup.safetensors")))


if __name__ == "__main__":
    unittest.main()
