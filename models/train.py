#!/usr/bin/env python3
"""Train mmsd's segmentation network with MMS (Min-Max Similarity, Lou et al.,
IEEE TMI 2023) or supervised-only, and export it as a model file.

  train.py --mode mms --arch mms-rt --labeled cholec80-v01,cataract \\
           --size 160x288 --iters 8000 --batch 4 --out out/train/mms-lo
  train.py --mode mms --size 288x512 --init out/train/mms-lo/ckpt_last.pt --lr 3e-4 \\
           --iters 1000 --out out/train/mms

MMS: two networks F1, F2 of one architecture, different initialisations; each
gets its own strongly augmented view of the labeled batch, both the same
unlabeled batch. Loss = (1) structure loss of both networks on the labels
+ (2) consistency of their unlabeled predictions + (3) pixel InfoNCE between
projector features P1, P2 of the unlabeled predictions + (4) all-negative
contrastive loss between classifier features C1, C2 of the labeled
predictions, weighted equally (losses.py). Adam, poly learning-rate decay.
--mode sup: one network, loss (1) only, same data, augmentation and budget.

Validation (every --val-every iterations and at the end) runs the networks on
the validation split of every labeled folder at the model input size
(--val-size, default 288x512), resizes the logits to the frame size as the
engine does, and computes Dice per frame. The checkpoint (and the network,
F1 or F2) with the best mean validation Dice over the folders in --labeled is
kept in ckpt_best.pt and exported to model.safetensors; nothing else is
chosen on validation frames. --out gets log.jsonl (one JSON object per line),
ckpt_last.pt, ckpt_best.pt, model.safetensors.
"""

import argparse
import copy
import math
import hashlib
import json
import os
import shlex
import sys
import time
import types
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import augment                 # noqa: E402
import data                    # noqa: E402
import losses                  # noqa: E402
import mmsnet                  # noqa: E402
import safetensors_io          # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MODEL_INPUT = (288, 512)
# The optional augmentations a run may add to its control's (--crn).
MEASURES = ("tool_zoom", "copy_paste", "shadow", "metal", "tool_colour", "hooks", "smoke")


def parse_hw(s):
    h, w = (int(v) for v in s.lower().split("x"))
    return h, w


def parse_sets(sets):
    params = {}
    for s in sets or []:
        k, _, v = s.partition("=")
        if not v:
            sys.exit(f"train.py: --set {s!r}: expected key=value")
        params[k] = v
    return params


def keep_narrow_convs_fp32(net):
    """Under bf16 autocast, PyTorch 1.13's oneDNN (Debian 12, on an AMX Xeon)
    returns NaN weight gradients for convolutions of 16 output channels or
    fewer at 144x256 and larger (measured: oc 8 and 16 fail, 32 and more do
    not). Those layers compute in fp32; they hold a small part of the MACs."""
    # A method bound to its module, not a closure over it: copy.deepcopy
    # (the EMA copies) rebinds a bound method to the copy, while a copied
    # closure would still run the live network's weights.
    def fp32_forward(conv, x):
        with torch.autocast(x.device.type, enabled=False):
            return conv._conv_forward(x.float(), conv.weight, conv.bias)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and m.out_channels <= 16:
            m.forward = types.MethodType(fp32_forward, m)


def seeded(seed, fn):
    """Run fn with the global RNG seeded (module initialisation)."""
    torch.manual_seed(seed)
    return fn()


def append_log(path, rec):
    """One JSON object per line in path (log.jsonl), echoed to stdout."""
    rec = dict(rec, time=round(time.time(), 1))
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)


def network_weights(path):
    """A .safetensors export's network weights. A shipped file also carries
    its int8 calibration, which is not the network's and belongs to the
    weights it was made for."""
    sd, _ = safetensors_io.load_file(path)
    return {k: v for k, v in sd.items() if not k.startswith("int8.")}


class Run:
    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.hw = parse_hw(args.size)
        self.val_hw = parse_hw(args.val_size)
        self.folders = [f for f in args.labeled.split(",") if f]
        for f in self.folders:
            if f not in data.LABELED:
                sys.exit(f"train.py: --labeled: unknown folder {f!r} (have {', '.join(data.LABELED)})")
        os.makedirs(args.out, exist_ok=True)
        self.log_path = os.path.join(args.out, "log.jsonl")
        self.mms = args.mode == "mms"
        self.params = parse_sets(args.set)
        self.meta = mmsnet.card_metadata(args.arch, self.params, MODEL_INPUT)

        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        # --crn: each optional measure draws from a generator of its own, so
        # a run with one measure more than its control sees the control's
        # batches and augmentations (common random numbers). On the shared
        # stream a measure shifts every later draw, and two such runs differ
        # by about 0.01 validation Dice before the measure does anything.
        self.mgens = {m: torch.Generator().manual_seed(args.seed * 1000003 + zlib.crc32(m.encode()))
                      for m in MEASURES} if args.crn else {}

        # networks: F1 and F2 differ only by their initialisation seed
        build = lambda: mmsnet.build(args.arch, self.meta)
        self.nets = [seeded(args.seed * 100 + 1, build).to(self.dev)]
        if self.mms:
            self.nets.append(seeded(args.seed * 100 + 2, build).to(self.dev))
        # Every network trains (F2 was once left out of this list: it stayed
        # random, and everything MMS measured before that fix is void).
        mods = list(self.nets)
        if self.mms:
            self.cls = [seeded(args.seed * 100 + 3 + i, losses.Classifier).to(self.dev) for i in range(2)]
            self.proj = [seeded(args.seed * 100 + 5 + i, losses.Projector).to(self.dev) for i in range(2)]
            mods += self.cls + self.proj
        self.aux, self.taps = self.deep_sup_heads() if args.deep_sup > 0 else ([], [])
        mods += self.aux
        self.mods = mods
        # The official MMS code leaves C1, C2, P1, P2 out of the optimiser:
        # fixed random heads, through which the contrastive losses can only
        # move the networks, never satisfy themselves.
        trained = mods if not (self.mms and args.frozen_heads) else self.nets
        if args.channels_last:
            for n in self.nets:
                n.to(memory_format=torch.channels_last)
        if args.bf16:
            for n in self.nets:
                keep_narrow_convs_fp32(n)
        for hw, what in ((self.hw, "--size"), (self.val_hw, "--val-size")):
            try:
                with torch.no_grad():
                    self.nets[0].eval()(torch.zeros(1, 3, *hw, device=self.dev))
            except RuntimeError:
                sys.exit(f"train.py: {what} {hw[0]}x{hw[1]}: {args.arch} needs a size its encoder "
                         f"divides evenly (mms-rt: multiples of 32, e.g. 160x288, 224x384, 288x512)")
            finally:
                self.train_mode(self.nets[0])
        params = [p for m in trained for p in m.parameters()]
        self.ema_decays = [float(d) for d in args.ema.split(",") if d] if args.ema else []
        for d in self.ema_decays:
            if not 0.0 < d < 1.0:
                sys.exit(f"train.py: --ema {d}: a decay must lie in (0, 1)")
        if args.deep_sup < 0:
            sys.exit(f"train.py: --deep-sup {args.deep_sup}: a weight must be >= 0")
        for name in MEASURES + ("ohem",):
            v = getattr(args, name)
            if not 0.0 <= v <= 1.0:
                sys.exit(f"train.py: --{name.replace('_', '-')} {v}: must lie in [0, 1]")
        self.opt = torch.optim.Adam(params, lr=args.lr, weight_decay=args.wd)
        self.it = 0
        self.best = {"score": -1.0}
        self.perm = torch.empty(0, dtype=torch.long)
        self.perms = {}
        if args.init:
            self.load_init(args.init)
        # Weight averages start from the weights the run starts from (after
        # --init), so a fine-tune's average begins at its initial model.
        self.emas = [[copy.deepcopy(n).eval() for n in self.nets] for _ in self.ema_decays]
        if args.resume:
            self.load_resume(os.path.join(args.out, "ckpt_last.pt"))

        split = data.load_split(args.split)
        t = time.time()
        self.train = data.Labeled(args.data, split, self.folders, "train", self.hw)
        self.val = data.Labeled(args.data, split, list(data.LABELED), "val", self.val_hw, keep_full=True)
        self.cp_ok = self.copy_paste_allowed()
        self.smoke_ok = self.frames_in("--smoke-folders", args.smoke_folders, "--smoke", args.smoke)
        self.hooks_ok = self.frames_in("--hooks-folders", args.hooks_folders, "--hooks", args.hooks)
        self.fp_w = self.fp_weights()
        self.val_lo = None
        if self.hw != self.val_hw:   # for information only: validation at the training size
            self.val_lo = data.Labeled(args.data, split, list(data.LABELED), "val", self.hw)
        self.unl = None
        self.teacher = self.load_teacher(args.pseudo) if args.pseudo else None
        if self.mms or args.composite or self.teacher is not None:
            self.unl = data.Unlabeled(args.data, self.hw, args.cache, args.clip_stride, log=self.say)
        with open(args.split, "rb") as f:
            self.split_sha = hashlib.sha1(f.read()).hexdigest()[:12]
        self.log({"event": "start", "argv": sys.argv, "mode": args.mode, "arch": args.arch,
                  "size": args.size, "labeled": self.folders, "train_frames": len(self.train),
                  "val_frames": len(self.val), "unlabeled": self.unl.counts() if self.unl else None,
                  "params": {f"F{i + 1}": sum(p.numel() for p in n.parameters()) for i, n in enumerate(self.nets)},
                  "split_sha1": self.split_sha, "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "data_load_s": round(time.time() - t, 1), "start_it": self.it})

    # ------------------------------------------------------------ logging
    def say(self, msg):
        print(msg, flush=True)

    def log(self, rec):
        append_log(self.log_path, rec)

    # ------------------------------------------------------- checkpoints
    def state(self):
        st = {"it": self.it, "args": vars(self.args), "best": self.best, "meta": self.meta,
              "nets": [n.state_dict() for n in self.nets], "opt": self.opt.state_dict(),
              "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
              "mgens": {m: g.get_state() for m, g in self.mgens.items()},
              "mode": self.args.mode, "perm": self.perm, "perms": self.perms}
        if self.emas:
            st["emas"] = [[n.state_dict() for n in e] for e in self.emas]
            st["ema_decays"] = self.ema_decays
        if self.mms:
            st["cls"] = [c.state_dict() for c in self.cls]
            st["proj"] = [p.state_dict() for p in self.proj]
        if self.aux:
            st["aux"] = [h.state_dict() for h in self.aux]
        return st

    def deep_sup_heads(self):
        """--deep-sup: a 1x1 logit head on each decoder block's output but the
        last (mms-rt: 1/16, 1/8 and 1/4 of the input), trained against the
        same mask. The coarse blocks decide what is a tool (a hook against an
        instrument, a shaft in glare) and otherwise learn it only through
        three upsamplings; the heads live in train.py and never reach the
        exported model."""
        a = self.args
        if self.mms or a.arch != "mms-rt":
            sys.exit("train.py: --deep-sup is for --mode sup and --arch mms-rt")
        net = self.nets[0]
        taps = [None] * (len(net.dec) - 1)
        heads = []
        for i, block in enumerate(net.dec[:-1]):
            block.register_forward_hook(lambda m, inp, out, i=i: taps.__setitem__(i, out))
            heads.append(seeded(a.seed * 100 + 7 + i,
                                lambda c=block.conv2.out_channels: nn.Conv2d(c, 1, 1)).to(self.dev))
        return heads, taps

    def deep_sup_loss(self, target, valid, kern):
        """Mean structure loss of the heads, on the decoder outputs of the
        last forward pass, upsampled to the mask; fp32 outside autocast (the
        narrow-convolution bf16 fault, keep_narrow_convs_fp32)."""
        size = target.shape[-2:]
        ls = [self.sup_loss(F.interpolate(h(t.float()), size=size, mode="bilinear", align_corners=True),
                            target, valid, kern) for h, t in zip(self.aux, self.taps)]
        return sum(ls) / len(ls)

    def load_init(self, path):
        """Weights only (networks, and heads where both runs have them)."""
        if path.endswith(".safetensors"):
            nets = [network_weights(path)]
            ck = {}
        else:
            ck = torch.load(path, map_location="cpu", weights_only=False)
            nets = ck["nets"]
            if not self.mms and len(nets) > 1:           # sup from an MMS run: its best network
                nets = [nets[ck.get("best", {}).get("net", 0)]]
        for i, n in enumerate(self.nets):
            self.load_net(n, nets[min(i, len(nets) - 1)])
        if len(self.nets) > len(nets):
            self.say("train.py: --init holds one network: F2 starts as a copy of F1")
        if self.mms and "cls" in ck:
            for m, s in zip(self.cls, ck["cls"]):
                m.load_state_dict(s)
            for m, s in zip(self.proj, ck["proj"]):
                m.load_state_dict(s)

    def load_net(self, net, sd):
        """Strict, but a network grown with a global-context block (--set
        context=gap) may start from one without it: the block starts at
        zero, so the grown network computes what the file's did."""
        missing, unexpected = net.load_state_dict(sd, strict=False)
        grown = [k for k in missing if k.startswith("ctx.")]
        if unexpected or len(grown) != len(missing):
            sys.exit(f"train.py: --init does not fit the network: missing "
                     f"{[k for k in missing if k not in grown]}, unexpected {unexpected}")
        if grown:
            self.say(f"train.py: --init has no global-context block: {len(grown)} tensors start at their init")

    def load_teacher(self, path):
        """--pseudo: a frozen network (a .safetensors export) whose confident
        masks on unlabeled frames become labels."""
        if self.mms:
            sys.exit("train.py: --pseudo is for --mode sup (MMS has its own unlabeled terms)")
        if not 0.5 < self.args.pseudo_conf < 1.0:
            sys.exit(f"train.py: --pseudo-conf {self.args.pseudo_conf}: must lie in (0.5, 1)")
        if not self.args.pseudo_weight > 0:
            sys.exit(f"train.py: --pseudo-weight {self.args.pseudo_weight}: must be > 0")
        try:
            sd = network_weights(path)
        except (OSError, ValueError) as e:
            sys.exit(f"train.py: --pseudo {path}: {e}")
        t = mmsnet.build(self.args.arch, self.meta)
        t.load_state_dict(sd)
        return t.to(self.dev).eval()

    def pseudo_loss(self, net):
        """Self-training on unlabeled frames (the noisy-student idea): the
        teacher labels a clean frame, the student learns it from a strong
        view of it, on the pixels where the teacher is confident either way
        (the rest count for nothing). Both take the same geometric warp, so
        the pseudo-mask stays aligned with the view."""
        a = self.args
        xu0 = self.unl.sample(a.ubatch or a.batch, self.gen)
        with torch.no_grad():
            p = torch.sigmoid(self.fwd(self.teacher, self.norm(xu0))).cpu()
        target = (p > 0.5).float()
        conf = ((p > a.pseudo_conf) | (p < 1 - a.pseudo_conf)).float()
        aug = augment.PRESETS.get(a.aug)
        img, both = augment.geometric(xu0, torch.cat([target, conf], 1), self.gen, aug or augment.STRONG)
        if aug is not None:
            img = augment.photometric(img, self.gen, aug)
            img = augment.gridmask(img, self.gen, aug)
        z = self.fwd(net, self.norm(img))
        # BCE alone, as pseudo-labels usually are: the IoU term of the
        # structure loss is near 1 on a tool-free frame for any spread of
        # small probabilities, and most unlabeled frames are tissue only.
        w = both[:, 1:].to(self.dev)
        bce = F.binary_cross_entropy_with_logits(z, both[:, :1].to(self.dev), weight=w, reduction="sum")
        return bce / w.sum().clamp_min(1.0)

    def load_resume(self, path):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        for n, s in zip(self.nets, ck["nets"]):
            n.load_state_dict(s)
        if self.mms:
            for m, s in zip(self.cls, ck["cls"]):
                m.load_state_dict(s)
            for m, s in zip(self.proj, ck["proj"]):
                m.load_state_dict(s)
        for h, s in zip(self.aux, ck.get("aux", [])):
            h.load_state_dict(s)
        if self.emas:
            if ck.get("ema_decays") != self.ema_decays:
                sys.exit("train.py: --resume: --ema differs from the interrupted run's")
            for e, se in zip(self.emas, ck["emas"]):
                for n, s in zip(e, se):
                    n.load_state_dict(s)
        self.opt.load_state_dict(ck["opt"])
        self.gen.set_state(ck["gen"])
        # A run resumed on the other kind of stream would go on with draws
        # its control never saw.
        if set(ck.get("mgens", {})) != set(self.mgens):
            sys.exit("train.py: --resume: --crn differs from the interrupted run's")
        for m, st in ck.get("mgens", {}).items():
            self.mgens[m].set_state(st)
        torch.set_rng_state(ck["torch_rng"])
        self.it, self.best = ck["it"], ck["best"]
        self.perm = ck.get("perm", torch.empty(0, dtype=torch.long))
        self.perms = ck.get("perms", {})

    def save(self, name):
        path = os.path.join(self.args.out, name)
        torch.save(self.state(), path + ".tmp")
        os.replace(path + ".tmp", path)

    def export(self):
        ck = torch.load(os.path.join(self.args.out, "ckpt_best.pt"), map_location="cpu", weights_only=False)
        b = ck["best"]
        if b.get("ema") is None:
            sd, network = ck["nets"][b["net"]], f"F{b['net'] + 1}"
        else:
            sd = ck["emas"][b["ema"]][b["net"]]
            network = f"F{b['net'] + 1}-ema{ck['ema_decays'][b['ema']]}"
        extra = {"train.mode": self.args.mode, "train.network": network,
                 "train.iter": str(b["it"]), "train.iters": str(self.args.iters),
                 "train.val_dice": f"{b['score']:.4f}",
                 "train.val_folders": ",".join(self.folders),
                 "train.labeled": ",".join(self.folders), "train.size": self.args.size,
                 "train.seed": str(self.args.seed), "train.split_sha1": self.split_sha,
                 "train.composite": str(bool(self.args.composite)).lower(),
                 "train.balance": str(bool(self.args.balance)).lower(),
                 "train.copy_paste": str(self.args.copy_paste),
                 "train.copy_paste_folders": self.args.copy_paste_folders or "all",
                 "train.shadow": str(self.args.shadow),
                 "train.metal": str(self.args.metal),
                 "train.tool_zoom": str(self.args.tool_zoom),
                 "train.smoke": str(self.args.smoke),
                 "train.smoke_folders": self.args.smoke_folders or "all",
                 "train.hooks": str(self.args.hooks),
                 "train.hooks_folders": self.args.hooks_folders or "all",
                 "train.crn": str(self.args.crn),
                 "train.freeze_bn": str(self.args.freeze_bn),
                 "train.tool_colour": str(self.args.tool_colour),
                 "train.deep_sup": str(self.args.deep_sup),
                 "train.pseudo": os.path.basename(self.args.pseudo) if self.args.pseudo else "off",
                 "train.init": os.path.basename(self.args.init) if self.args.init else "",
                 "train.command": " ".join(shlex.quote(a) for a in sys.argv),
                 "train.torch": torch.__version__}
        for folder, d in b["per_folder"].items():
            extra[f"train.val_dice.{folder}"] = f"{d:.4f}"
        # the card's input is the size the checkpoint was validated (chosen) at
        meta = mmsnet.card_metadata(self.args.arch, self.params, self.val_hw, extra=extra)
        out = os.path.join(self.args.out, "model.safetensors")
        safetensors_io.save_file(sd, out, meta)
        self.log({"event": "export", "path": out, "network": extra["train.network"],
                  "iter": b["it"], "val_dice": b["score"], "per_folder": b["per_folder"]})

    # ---------------------------------------------------------- batches
    def labeled_idx(self, n):
        if self.args.balance:
            return self.balanced_idx(n)
        out = []
        while len(out) < n:
            if self.perm.numel() == 0:
                self.perm = torch.randperm(len(self.train), generator=self.gen)
            out.append(int(self.perm[0]))
            self.perm = self.perm[1:]
        return torch.tensor(out)

    def balanced_idx(self, n):
        """A folder drawn uniformly, then the next frame of its own shuffled
        order: endovis15's 80 training frames would otherwise outweigh
        cataract's 18 more than four to one."""
        folders = sorted(set(self.train.folders))
        w = self.folder_weights(folders)
        out = []
        for _ in range(n):
            if w is None:
                f = folders[int(torch.randint(len(folders), (1,), generator=self.gen))]
            else:
                f = folders[int(torch.multinomial(w, 1, generator=self.gen))]
            perm = self.perms.get(f)
            if perm is None or perm.numel() == 0:
                idx = torch.tensor([i for i, g in enumerate(self.train.folders) if g == f])
                perm = idx[torch.randperm(len(idx), generator=self.gen)]
            out.append(int(perm[0]))
            self.perms[f] = perm[1:]
        return torch.tensor(out)

    def folder_weights(self, folders):
        """--folder-weights as a tensor over folders, or None for the uniform
        draw (kept as torch.randint so that earlier runs reproduce)."""
        if not self.args.folder_weights:
            return None
        try:
            w = data.parse_folder_weights(self.args.folder_weights, folders)
        except ValueError as e:
            sys.exit(f"train.py: --folder-weights: {e}")
        return torch.tensor([w[f] for f in folders], dtype=torch.float64)

    def frames_in(self, flag, listed, prob_flag, prob):
        """A --*-folders option as one bool per training frame, or None when
        every folder takes part (the option unset)."""
        if not listed:
            return None
        names = [f for f in listed.split(",") if f]
        for f in names:
            if f not in self.folders:
                sys.exit(f"train.py: {flag}: {f!r} is not a labeled folder of this run")
        if len(names) < 1 or prob <= 0:
            sys.exit(f"train.py: {flag} needs {prob_flag} P > 0 and at least one folder")
        return torch.tensor([g in names for g in self.train.folders])

    def fp_weights(self):
        """--fp-weight as one Tversky weight per training frame, or None (the
        plain IoU term, so that earlier runs reproduce)."""
        if not self.args.fp_weight:
            return None
        try:
            w = data.parse_folder_weights(self.args.fp_weight, self.folders)
        except ValueError as e:
            sys.exit(f"train.py: --fp-weight: {e}")
        if any(not 0 < v < 2 for v in w.values()):
            sys.exit("train.py: --fp-weight: each weight must be in (0, 2)")
        return torch.tensor([w[g] for g in self.train.folders])

    def copy_paste_allowed(self):
        """--copy-paste-folders as one bool per training frame, or, when it
        lists groups (F1,F2;F3), one group number per frame (-1: out)."""
        listed = self.args.copy_paste_folders
        if ";" not in listed:
            return self.frames_in("--copy-paste-folders", listed, "--copy-paste", self.args.copy_paste)
        groups = [g for g in listed.split(";")]
        masks = [self.frames_in("--copy-paste-folders", g, "--copy-paste", self.args.copy_paste)
                 if g else None for g in groups]
        if any(m is None for m in masks):
            sys.exit(f"train.py: --copy-paste-folders {listed!r}: a group between ';' is empty")
        names = [f for g in groups for f in g.split(",") if f]
        if len(names) != len(set(names)):
            sys.exit(f"train.py: --copy-paste-folders {listed!r}: a folder is in two groups")
        out = torch.full((len(self.train.folders),), -1, dtype=torch.long)
        for k, m in enumerate(masks):
            out[m] = k
        return out

    def train_mode(self, m):
        """m.train(), but with --freeze-bn its BatchNorm layers stay in eval
        mode: a fine-tune of batch 4 then trains against the statistics that
        inference will use instead of each batch's own."""
        m.train()
        if self.args.freeze_bn:
            for b in m.modules():
                if isinstance(b, torch.nn.modules.batchnorm._BatchNorm):
                    b.eval()
        return m

    def mgen(self, measure):
        return self.mgens.get(measure, self.gen)

    def norm(self, x01):
        x = data.normalize(x01.to(self.dev), MEAN, STD)
        return x.contiguous(memory_format=torch.channels_last) if self.args.channels_last else x

    def labeled_view(self, img, mask, bg=None, bg_tool=None, cp_ok=None, smoke_ok=None, hooks_ok=None):
        """One strong view of a labeled batch; with --composite, the tools may
        be pasted on unlabeled backgrounds bg (valid excludes background pixels
        that the networks think hold an unlabeled tool, bg_tool)."""
        aug = augment.PRESETS.get(self.args.aug)
        if aug is not None:
            img, mask = augment.geometric(img, mask, self.gen, aug)
        if self.args.tool_zoom > 0:
            img, mask = augment.tool_zoom(img, mask, self.mgen("tool_zoom"), self.args.tool_zoom)
        if self.args.copy_paste > 0:
            img, mask = augment.copy_paste(img, mask, self.mgen("copy_paste"), self.args.copy_paste, cp_ok)
        if self.args.shadow > 0:
            img = augment.shadow(img, self.mgen("shadow"), self.args.shadow)
        if self.args.metal > 0:
            img = augment.metal(img, mask, self.mgen("metal"), self.args.metal)
        if self.args.tool_colour > 0:
            img = augment.tool_colour(img, mask, self.mgen("tool_colour"), self.args.tool_colour)
        if self.args.hooks > 0:
            img = augment.hooks(img, mask, self.mgen("hooks"), self.args.hooks, allowed=hooks_ok)
        if self.args.smoke > 0:
            img = augment.smoke(img, self.mgen("smoke"), self.args.smoke, allowed=smoke_ok)
        valid = None
        if bg is not None:
            img, pick = augment.composite(img, mask, bg, self.gen, self.args.composite_prob)
            n = img.shape[0]
            reps = (n + bg_tool.shape[0] - 1) // bg_tool.shape[0]
            tool = bg_tool.repeat(reps, 1, 1, 1)[:n]
            doubt = pick.view(n, 1, 1, 1) & (mask < 0.5) & tool
            valid = (~doubt).float()
        if aug is not None:
            img = augment.photometric(img, self.gen, aug)
            img = augment.gridmask(img, self.gen, aug)
        return self.norm(img), mask.to(self.dev), (valid.to(self.dev) if valid is not None else None)

    def unlabeled_batch(self):
        xu0 = self.unl.sample(self.args.ubatch, self.gen)
        xu0, _ = augment.geometric(xu0, None, self.gen)
        xu0 = augment.photometric(xu0, self.gen)
        xu = augment.gridmask(xu0, self.gen)
        return xu0, self.norm(xu)

    # ------------------------------------------------------------- step
    def rampup_weight(self):
        t = self.args.rampup * self.args.iters
        if t <= 0 or self.it >= t:
            return 1.0
        return math.exp(-5.0 * (1.0 - self.it / t) ** 2)

    def sup_loss(self, logits, target, valid, kern, fpw=None):
        loss = losses.structure_loss(logits, target, valid, kern, fpw)
        if self.args.cldice > 0:
            loss = loss + self.args.cldice * losses.cldice_loss(logits, target, valid)
        if self.args.ohem > 0:
            loss = loss + self.args.ohem_weight * losses.hard_pixel_bce(logits, target, self.args.ohem, valid)
        if self.args.lovasz > 0:
            loss = loss + self.args.lovasz * losses.lovasz_hinge(logits, target, valid)
        return loss

    def fwd(self, net, x):
        """The network's logits, in fp32 whatever it computed in: under --bf16
        the convolutions run in bfloat16 (oneDNN's AMX or AVX512-BF16
        kernels), the losses stay fp32."""
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=bool(self.args.bf16)):
            z = net(x)
        return z.float()

    def step(self):
        a = self.args
        idx = self.labeled_idx(a.batch)
        img, mask = self.train.img[idx], self.train.mask[idx]
        cp_ok = self.cp_ok[idx] if self.cp_ok is not None else None
        sm_ok = self.smoke_ok[idx] if self.smoke_ok is not None else None
        hk_ok = self.hooks_ok[idx] if self.hooks_ok is not None else None
        kern = losses.boundary_kernel(self.hw[0])
        rec = {}
        if self.mms:
            f1, f2 = self.nets
            xu0, xu = self.unlabeled_batch()
            zu1, zu2 = self.fwd(f1, xu), self.fwd(f2, xu)
            bg = bg_tool = None
            if a.composite:
                bg = xu0
                pu = 0.5 * (torch.sigmoid(zu1) + torch.sigmoid(zu2))
                bg_tool = (pu.detach() > 0.5).cpu()
            x1, y1, v1 = self.labeled_view(img, mask, bg, bg_tool, cp_ok, sm_ok, hk_ok)
            x2, y2, v2 = self.labeled_view(img, mask, bg, bg_tool, cp_ok, sm_ok, hk_ok)
            zl1, zl2 = self.fwd(f1, x1), self.fwd(f2, x2)
            fpw = self.fp_w[idx] if self.fp_w is not None else None
            l_sup = self.sup_loss(zl1, y1, v1, kern, fpw) + self.sup_loss(zl2, y2, v2, kern, fpw)
            l_cons = losses.consistency_loss(zu1, zu2, kern)
            if not a.cons_grad:
                # As the official code (its loss_diff returns .item()): the
                # term is reported but moves nothing.
                l_cons = l_cons.detach()
            hp = lambda z: F.avg_pool2d(z, a.head_pool) if a.head_pool > 1 else z
            l_nce = losses.pixel_infonce(self.proj[0](hp(zu1)), self.proj[1](hp(zu2)), a.tau, a.pixels, self.gen)
            l_neg = losses.all_negative(self.cls[0](hp(zl1)), self.cls[1](hp(zl2)), a.tau, a.pixels, self.gen)
            # The unlabeled terms are switched on gradually (the usual sigmoid
            # ramp-up of semi-supervised training): at full weight from the
            # start, they pull both networks to the trivial all-background
            # agreement before the labels have taught either anything.
            w = self.rampup_weight()
            loss = l_sup + w * (a.w_cons * l_cons + a.w_nce * l_nce + a.w_neg * l_neg)
            rec = {"w_unsup": round(w, 4), "l_sup": l_sup.item(), "l_cons": l_cons.item(),
                   "l_nce": l_nce.item(),
                   "l_neg": l_neg.item()}
        else:
            f1 = self.nets[0]
            bg = bg_tool = None
            if a.composite:
                xu0, xu = self.unlabeled_batch()
                with torch.no_grad():
                    bg_tool = (torch.sigmoid(self.fwd(f1, xu)) > 0.5).cpu()
                bg = xu0
            x1, y1, v1 = self.labeled_view(img, mask, bg, bg_tool, cp_ok, sm_ok, hk_ok)
            fpw = self.fp_w[idx] if self.fp_w is not None else None
            loss = l_sup = self.sup_loss(self.fwd(f1, x1), y1, v1, kern, fpw)
            rec = {"l_sup": l_sup.item()}
            if self.aux:
                l_ds = self.deep_sup_loss(y1, v1, kern)
                loss = loss + a.deep_sup * l_ds
                rec["l_deep"] = l_ds.item()
            if self.teacher is not None:
                l_pse = self.pseudo_loss(f1)
                loss = loss + a.pseudo_weight * l_pse
                rec["l_pseudo"] = l_pse.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.update_emas()
        rec["loss"] = loss.item()
        return rec

    @torch.no_grad()
    def update_emas(self):
        """Exponential moving averages of the weights (and of the BN
        statistics, which belong to them): on 100-odd labeled frames one
        step's weights are noisy, their average over the last 1/(1-decay)
        steps less so."""
        for d, e in zip(self.ema_decays, self.emas):
            for avg, net in zip(e, self.nets):
                cur = net.state_dict()
                for k, v in avg.state_dict().items():
                    if v.dtype.is_floating_point:
                        v.mul_(d).add_(cur[k].detach(), alpha=1.0 - d)
                    else:
                        v.copy_(cur[k])

    def set_lr(self):
        lr = self.args.lr * (1.0 - self.it / self.args.iters) ** self.args.poly
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    # ------------------------------------------------------- validation
    @torch.no_grad()
    def dice_per_frame(self, net, ds, full):
        net.eval()
        out = []
        x = self.norm(ds.img)
        for i in range(0, x.shape[0], 4):
            z = net(x[i:i + 4]).cpu()
            for j in range(z.shape[0]):
                k = i + j
                if full:
                    gt = ds.full_masks[k]
                    zz = F.interpolate(z[j:j + 1], size=tuple(gt.shape), mode="bilinear", align_corners=False)
                else:
                    gt = ds.mask[k, 0] > 0.5
                    zz = z[j:j + 1]
                pred = torch.sigmoid(zz)[0, 0] > 0.5
                out.append(losses.dice(pred, gt))
        self.train_mode(net)
        return out

    def per_folder(self, ds, dices):
        res = {}
        for f in data.LABELED:
            v = [d for d, g in zip(dices, ds.folders) if g == f]
            if v:
                res[f] = float(np.mean(v))
        return res

    def validate(self):
        rec = {"event": "val", "it": self.it}
        scores = []
        cands = [(None, i, n, f"F{i + 1}") for i, n in enumerate(self.nets)]
        for k, (d, e) in enumerate(zip(self.ema_decays, self.emas)):
            cands += [(k, i, n, f"F{i + 1}-ema{d}") for i, n in enumerate(e)]
        for ema, i, net, name in cands:
            d = self.dice_per_frame(net, self.val, True)
            pf = self.per_folder(self.val, d)
            score = float(np.mean([pf[f] for f in self.folders]))
            scores.append((score, i, pf, ema))
            rec[name] = {"score": round(score, 4), **{k: round(v, 4) for k, v in pf.items()},
                               "frames": {n: round(x, 4) for n, x in zip(self.val.names, d)}}
            if self.val_lo is not None:
                dl = self.dice_per_frame(net, self.val_lo, False)
                rec[name][f"at_{self.args.size}"] = {k: round(v, 4) for k, v in self.per_folder(self.val_lo, dl).items()}
        # ties go to F1, then to the raw weights over their averages
        score, i, pf, ema = max(scores, key=lambda s: (s[0], -s[1], -1 if s[3] is None else -2 - s[3]))
        improved = score > self.best["score"]
        if improved:
            self.best = {"score": score, "net": i, "it": self.it, "per_folder": pf, "ema": ema}
        rec["best"] = self.best
        self.log(rec)
        self.save("ckpt_last.pt")
        if improved:
            self.save("ckpt_best.pt")

    # ------------------------------------------------------------- loop
    def run(self):
        a = self.args
        t0, n, acc = time.time(), 0, {}
        for m in self.mods:
            self.train_mode(m)
        while self.it < a.iters:
            lr = self.set_lr()
            rec = self.step()
            self.it += 1
            n += 1
            for k, v in rec.items():
                acc[k] = acc.get(k, 0.0) + v
            if self.it % a.log_every == 0 or self.it == a.iters:
                dt = time.time() - t0
                self.log({"event": "train", "it": self.it, "lr": lr, "s_per_it": round(dt / n, 3),
                          **{k: round(v / n, 4) for k, v in acc.items()}})
                t0, n, acc = time.time(), 0, {}
            if self.it % a.val_every == 0 or self.it == a.iters:
                tv = time.time()
                self.validate()
                t0 += time.time() - tv
        if self.best["score"] < 0:
            self.validate()
        self.export()


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["mms", "sup"], default="mms")
    ap.add_argument("--arch", default="mms-rt", help="mms-rt, res2net-unet or mms-res2net101")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="architecture parameter (card key without mms.), e.g. widths=16,32,64,128,256")
    ap.add_argument("--labeled", default="cholec80-v01,cataract",
                    help="labeled folders whose train split is used; their val split chooses the checkpoint")
    ap.add_argument("--size", default="288x512", help="training resolution HxW")
    ap.add_argument("--val-size", default="288x512",
                    help="validation input HxW; also the exported card's mms.input (default: the model input 288x512)")
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=4, help="labeled frames per iteration")
    ap.add_argument("--folder-weights", default="",
                    help="with --balance 1: relative draw weights of folders, e.g. cataract=2 "
                         "(others 1): a per-folder loss weight by sampling")
    ap.add_argument("--balance", type=int, default=0, choices=[0, 1],
                    help="draw each labeled frame's folder uniformly, then a frame of it (1), "
                         "or frames uniformly over all folders (0)")
    ap.add_argument("--ubatch", type=int, default=None, help="unlabeled frames per iteration (default: --batch)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4, help="Adam weight decay")
    ap.add_argument("--poly", type=float, default=0.9, help="poly decay power")
    ap.add_argument("--tau", type=float, default=0.07, help="contrastive temperature")
    ap.add_argument("--rampup", type=float, default=0.4,
                    help="fraction of --iters over which the unlabeled losses ramp up to "
                         "full weight (sigmoid ramp-up); 0 = full weight from the start")
    # The paper weights the four losses equally (1.0); other values are
    # ablations, reported as such in the model card.
    ap.add_argument("--w-cons", type=float, default=1.0, help="MMS: weight of the unlabeled consistency loss")
    ap.add_argument("--w-nce", type=float, default=1.0, help="MMS: weight of the pixel-wise InfoNCE loss")
    ap.add_argument("--w-neg", type=float, default=1.0, help="MMS: weight of the all-negative loss")
    ap.add_argument("--pixels", type=int, default=1024, help="pixels sampled per image for the contrastive losses")
    ap.add_argument("--head-pool", type=int, default=2,
                    help="average-pool the logit maps by this factor before the projector/classifier heads "
                         "(1 = the paper's full resolution; 2 quarters their cost on a CPU)")
    ap.add_argument("--frozen-heads", action="store_true",
                    help="MMS: keep classifiers and projectors at their random init (official code)")
    ap.add_argument("--cons-grad", type=int, default=1, choices=[0, 1],
                    help="MMS: 0 = the consistency term carries no gradient (official code)")
    ap.add_argument("--ohem", type=float, default=0.0, metavar="F",
                    help="add a BCE term over each image's F highest-loss pixels (0: off)")
    ap.add_argument("--ohem-weight", type=float, default=1.0, help="weight of the --ohem term")
    ap.add_argument("--fp-weight", default="", metavar="F=A,...",
                    help="per folder, the IoU term becomes Tversky's with false tool weighted A "
                         "and missed tool 2-A (0 < A < 2; unlisted folders 1 = the IoU)")
    ap.add_argument("--lovasz", type=float, default=0.0, metavar="W",
                    help="add the Lovasz hinge (per-image IoU surrogate) at weight W")
    ap.add_argument("--cldice", type=float, default=0.0,
                    help="weight of a clDice term (thin-structure loss) added to the supervised loss")
    ap.add_argument("--ema", default="",
                    help="comma-separated decays: also keep, validate and possibly export "
                         "exponential moving averages of each network's weights (e.g. 0.995)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this checkpoint (.pt of train.py, or a .safetensors)")
    ap.add_argument("--resume", action="store_true", help="continue --out's ckpt_last.pt")
    ap.add_argument("--aug", choices=["strong", "medium", "zoom", "upright", "light", "light_colour",
                                      "none"], default="strong",
                    help="augmentation of the labeled views: strong (the MMS paper's), medium "
                         "(lighter, augment.MEDIUM), zoom (medium with 2x zoom-ins reaching "
                         "the edges, augment.ZOOM), upright (medium without vertical flips, "
                         "augment.UPRIGHT), light (upright with small shifts and colour "
                         "changes, no GridMask, augment.LIGHT), light_colour (light's geometry "
                         "with larger colour changes, augment.LIGHT_COLOUR), none (for debugging only); "
                         "the unlabeled views of MMS always get strong")
    ap.add_argument("--composite", action="store_true",
                    help="tool compositing: paste labeled tools onto unlabeled backgrounds")
    ap.add_argument("--composite-prob", type=float, default=0.5)
    ap.add_argument("--copy-paste", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, paste the tools of another "
                         "labeled frame of the batch over it (mask: the union); 0 = off")
    ap.add_argument("--shadow", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, darken the frame from a random "
                         "radius outwards (endoscope light falloff; augment.shadow); 0 = off")
    ap.add_argument("--deep-sup", type=float, default=0.0, metavar="W",
                    help="sup mode: a logit head on each coarse decoder block, its structure loss "
                         "weighted W (deep supervision; the heads are not exported); 0 = off")
    ap.add_argument("--metal", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, turn the tools into mirror-like "
                         "metal that takes the tissue's colours (augment.metal); 0 = off")
    ap.add_argument("--tool-colour", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, change the colour of the tool pixels "
                         "alone (augment.tool_colour); 0 = off")
    ap.add_argument("--smoke", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, veil the frame in surgical smoke "
                         "(augment.smoke); 0 = off")
    ap.add_argument("--smoke-folders", default="", metavar="LIST",
                    help="comma-separated labeled folders whose views --smoke may veil "
                         "(default: all)")
    ap.add_argument("--hooks", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, draw 1-3 synthetic speculum hooks "
                         "(thin curled wires from the edges) as background (augment.hooks); 0 = off")
    ap.add_argument("--hooks-folders", default="", metavar="LIST",
                    help="comma-separated labeled folders whose views --hooks may draw on "
                         "(default: all), e.g. cataract")
    ap.add_argument("--tool-zoom", type=float, default=0.0, metavar="P",
                    help="with probability P per labeled view, zoom 1.5-2.5x into a window around "
                         "a random tool pixel (augment.tool_zoom); 0 = off")
    ap.add_argument("--pseudo", default="", metavar="TEACHER",
                    help="sup mode: self-training; TEACHER (a .safetensors) labels --ubatch unlabeled "
                         "frames a step, the student learns its confident pixels from a strong view")
    ap.add_argument("--pseudo-weight", type=float, default=0.5, help="weight of the --pseudo term")
    ap.add_argument("--pseudo-conf", type=float, default=0.9,
                    help="--pseudo: pixels whose teacher probability is above this or below "
                         "1 - this are labels, the rest are ignored")
    ap.add_argument("--copy-paste-folders", default="", metavar="F1,F2",
                    help="only frames of these labeled folders give or take pasted tools "
                         "(default: all), e.g. cholec80-v01,endovis15 to keep cataract out; "
                         "groups split by ';' trade tools only within themselves, e.g. "
                         "'cholec80-v01,endovis15;cataract'")
    ap.add_argument("--freeze-bn", type=int, default=0, choices=(0, 1),
                    help="1 = BatchNorm layers keep their running statistics and normalise "
                         "by them while training (their scale and shift still learn), as "
                         "at inference: for fine-tunes, whose batches of 4 give noisy "
                         "statistics")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=data.DEFAULT_DATA)
    ap.add_argument("--split", default=data.DEFAULT_SPLIT)
    ap.add_argument("--cache", default=data.DEFAULT_CACHE, help="unlabeled frame cache (never in the repository)")
    ap.add_argument("--clip-stride", type=int, default=5, help="decode every N-th frame of the clips")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crn", type=int, default=0, choices=[0, 1],
                    help="1 = common random numbers: each optional measure (--tool-zoom, "
                         "--copy-paste, --shadow, --metal, --tool-colour, --hooks, --smoke) draws "
                         "from its own generator, so a run and its control see the same batches "
                         "and other augmentations; 0 = one shared stream (runs before it)")
    ap.add_argument("--channels-last", type=int, default=1, choices=[0, 1],
                    help="run the networks in channels_last memory format (faster on CPU)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", type=int, default=0, choices=[0, 1],
                    help="forward and backward passes of the networks in bfloat16 (autocast); "
                         "losses, weights and the optimiser in fp32. Only where the CPU has "
                         "native bf16 (amx_bf16 or avx512_bf16) or on a CUDA GPU: elsewhere it is "
                         "emulated and slow")
    return ap


def main():
    args = parser().parse_args()
    if args.ubatch is None:
        args.ubatch = args.batch
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("train.py: --device cuda: no CUDA device")
    torch.set_num_threads(args.threads)
    Run(args).run()


if __name__ == "__main__":
    main()
