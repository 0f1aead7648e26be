#!/usr/bin/env python3
"""models/export.py as the README runs it on an official checkpoint.

  /usr/bin/python3 tests/models/test_export.py      (about a minute, CPU)
"""

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


if __name__ == "__main__":
    unittest.main()
