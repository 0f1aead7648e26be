#!/usr/bin/env python3
"""models/export.py as the README runs it on an official checkpoint.

  /usr/bin/python3 tests/models/test_export.py      (about a minute, CPU)
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import mmsnet           # noqa: E402
import safetensors_io   # noqa: E402

PY = os.environ.get("PYTHON", "/usr/bin/python3")


def readme_command():
    """The README's checkpoint command, word for word."""
    with open(os.path.join(ROOT, "README.md")) as f:
        for line in f:
            if line.startswith("python3 models/export.py checkpoint"):
                return shlex.split(line)
    raise AssertionError("README.md lost its export.py checkpoint command")


def export(cwd, argv):
    argv = [PY, os.path.join(ROOT, argv[1])] + argv[2:]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True)


class Checkpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.argv = readme_command()
        arch = cls.argv[cls.argv.index("--arch") + 1]
        meta = mmsnet.card_metadata(arch, {}, (288, 512))
        torch.manual_seed(0)
        cls.model = mmsnet.build(arch, meta).eval()
        cls.state = cls.model.state_dict()

    def test_readme_command_converts_a_saved_state_dict(self):
        with tempfile.TemporaryDirectory() as d:
            torch.save(self.state, os.path.join(d, "Model_1.pth"))
            r = export(d, self.argv)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = self.argv[self.argv.index("-o") + 1]
            tensors, meta = safetensors_io.load_file(os.path.join(d, out))
        self.assertEqual(meta["mms.arch"], self.argv[self.argv.index("--arch") + 1])
        self.assertEqual(set(tensors), set(self.state))
        for k, v in self.state.items():
            self.assertTrue(torch.equal(tensors[k], v), k)

    def test_dataparallel_prefix_is_stripped(self):
        with tempfile.TemporaryDirectory() as d:
            torch.save({"state_dict": {"module." + k: v for k, v in self.state.items()}},
                       os.path.join(d, "Model_1.pth"))
            r = export(d, self.argv)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_wrong_network_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            torch.save({"conv.weight": torch.zeros(3)}, os.path.join(d, "Model_1.pth"))
            r = export(d, self.argv)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("missing", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "mms-paper.safetensors")))

    def test_truncated_checkpoint_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "Model_1.pth")
            torch.save(self.state, p)
            with open(p, "r+b") as f:
                f.truncate(os.path.getsize(p) // 2)
            r = export(d, self.argv)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not a readable PyTorch checkpoint", r.stderr)
            self.assertNotIn("Traceback", r.stderr)

    def test_missing_checkpoint_argument_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            argv = [a for a in self.argv if a != "Model_1.pth"]
            r = export(d, argv)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("CKPT.pth is required", r.stderr)



class Last(unittest.TestCase):
    """export.py last RUN_DIR: a train.py run's last checkpoint as a model
    file, with the run's card and the last iteration's figures."""

    @classmethod
    def setUpClass(cls):
        cls.meta = mmsnet.card_metadata("mms-rt", {}, (288, 512))
        states = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            states.append(mmsnet.build("mms-rt", cls.meta).state_dict())
        cls.picked, cls.last = states

    def make_run(self, d, mode="sup", rows=(20, 40)):
        nets = [self.last] if mode == "sup" else [self.picked, self.last]
        torch.save({"it": 40, "nets": nets, "mode": mode, "best": {"net": len(nets) - 1, "it": 20}},
                   os.path.join(d, "ckpt_last.pt"))
        meta = dict(self.meta, **{"train.iter": "20", "train.val_dice": "0.5000",
                                  "train.val_dice.cataract": "0.4000", "train.seed": "3",
                                  "int8.check": "0.98", "int8.method": "absmax"})
        safetensors_io.save_file(dict(self.picked, **{"int8.absmax": torch.ones(4)}),
                                 os.path.join(d, "model.safetensors"), meta)
        net = "F1" if mode == "sup" else "F2"
        with open(os.path.join(d, "log.jsonl"), "w") as f:
            for it in rows:
                f.write(json.dumps({"event": "val", "it": it, net: {
                    "score": it / 100, "cataract": it / 200, "frames": {"a": 0.1}}}) + "\n")

    def export_last(self, d, out="last.safetensors"):
        r = subprocess.run([PY, os.path.join(ROOT, "models", "export.py"), "last", d, "-o",
                            os.path.join(d, out)], capture_output=True, text=True)
        return r, os.path.join(d, out)

    def test_last_exports_the_last_weights(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d)
            r, out = self.export_last(d)
            self.assertEqual(r.returncode, 0, r.stderr)
            tensors, _ = safetensors_io.load_file(out)
        self.assertEqual(set(tensors), set(self.last))
        for k, v in self.last.items():
            self.assertTrue(torch.equal(tensors[k], v), k)

    def test_last_card_gives_the_last_iteration_and_its_figures(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d)
            _, out = self.export_last(d)
            _, meta = safetensors_io.load_file(out)
        self.assertEqual((meta["train.iter"], meta["train.export"], meta["train.seed"]), ("40", "last", "3"))
        self.assertEqual((meta["train.val_dice"], meta["train.val_dice.cataract"]), ("0.4000", "0.2000"))
        self.assertEqual(meta["mms.arch"], "mms-rt")

    def test_last_drops_the_picked_weights_calibration(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d)
            _, out = self.export_last(d)
            tensors, meta = safetensors_io.load_file(out)
        self.assertFalse([k for k in list(meta) + list(tensors) if k.startswith("int8.")])

    def test_last_without_its_validation_keeps_no_stale_figures(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d, rows=(20,))
            r, out = self.export_last(d)
            self.assertEqual(r.returncode, 0, r.stderr)
            _, meta = safetensors_io.load_file(out)
        self.assertFalse([k for k in meta if k.startswith("train.val_dice")])

    def test_last_of_an_mms_run_takes_the_chosen_network(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d, mode="mms")
            _, out = self.export_last(d)
            tensors, meta = safetensors_io.load_file(out)
        self.assertEqual(meta["train.network"], "F2")
        self.assertTrue(all(torch.equal(tensors[k], v) for k, v in self.last.items()))

    def test_last_without_a_checkpoint_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d)
            os.remove(os.path.join(d, "ckpt_last.pt"))
            r, out = self.export_last(d)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not a finished train.py run", r.stderr)
            self.assertFalse(os.path.exists(out))

    def test_last_truncated_checkpoint_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_run(d)
            p = os.path.join(d, "ckpt_last.pt")
            with open(p, "r+b") as f:
                f.truncate(os.path.getsize(p) // 2)
            r, out = self.export_last(d)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("Traceback", r.stderr)
            self.assertFalse(os.path.exists(out))

    def test_last_without_a_run_dir_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([PY, os.path.join(ROOT, "models", "export.py"), "last", "-o",
                                os.path.join(d, "x.safetensors")], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("RUN_DIR is required", r.stderr)


if __name__ == "__main__":
    unittest.main()
