#!/usr/bin/env python3
"""Self-supervised pretraining of an mms-rt network by masked inpainting, for
train.py --init.

  pretrain.py --size 160x288 --iters 4000 --batch 16 --bf16 1 --out out/train/pt
  train.py --mode sup ... --init out/train/pt/init.pt

The labeled frames are few (113 for training), the unlabeled ones many
(about 3,650), and neither MMS nor self-training has turned the unlabeled
frames into validation Dice on this data (models/README.md). Pretraining is
the third way to use them: the whole U-Net, encoder and decoder, learns to
fill in masked patches of a frame from its surroundings, so it starts the
supervised run with filters for surgical scenes instead of random ones.

Each batch is half unlabeled frames and half training-split images of the
labeled folders (a folder drawn uniformly, then a frame), their masks unused:
the unlabeled frames are all laparoscopic, and the cataract microscope
would otherwise never be seen. Validation frames are never read. Square
patches (--patch pixels) are masked with probability --mask-ratio and set to
the normalised mean (0); the loss is the mean squared error of the network's
three-channel output against the normalised frame on the masked pixels only,
as in masked autoencoders: on the visible ones a U-Net's skips make copying
trivial.

--out gets log.jsonl, ckpt_last.pt (for --resume) and init.pt: the network
with the pretext's three-channel 1x1 head replaced by a fresh one-channel
head, in train.py's checkpoint layout.
"""

import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import augment                 # noqa: E402
import data                    # noqa: E402
import mmsnet                  # noqa: E402
import train                   # noqa: E402

PRETEXT_CHANNELS = 3


def build(arch, meta, channels):
    """An mms-rt network whose final 1x1 convolution has `channels` outputs."""
    net = mmsnet.build(arch, meta)
    if not isinstance(net, mmsnet.MMSRT):
        sys.exit(f"pretrain.py: --arch {arch}: only mms-rt networks are supported")
    net.final = torch.nn.Conv2d(net.final.in_channels, channels, 1)
    return net


def patch_mask(n, hw, patch, ratio, gen):
    """-> n x 1 x h x w float, 1 where a patch is masked. At least one patch
    per image is masked, so every image contributes to the loss."""
    gh, gw = -(-hw[0] // patch), -(-hw[1] // patch)
    m = (torch.rand(n, 1, gh, gw, generator=gen) < ratio).float()
    empty = m.flatten(1).sum(1) == 0
    for i in torch.nonzero(empty).flatten().tolist():
        m[i, 0, int(torch.randint(gh, (1,), generator=gen)), int(torch.randint(gw, (1,), generator=gen))] = 1
    m = m.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    return m[:, :, :hw[0], :hw[1]].contiguous()


def pretext(target, patch, ratio, gen):
    """-> (network input, mask): target with its masked patches set to the
    normalised mean, which the network must fill in from what is left."""
    m = patch_mask(target.shape[0], target.shape[-2:], patch, ratio, gen)
    return target * (1 - m), m


def masked_mse(pred, target, mask):
    """Mean squared error over the masked pixels (all channels)."""
    m = mask.expand_as(target)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp(min=1.0)


def seg_checkpoint(net, arch, meta, seed):
    """train.py's --init layout: the pretext network with a fresh one-channel
    head (seeded), so the pretext's colour head never reaches the task."""
    seg = train.seeded(seed * 100 + 1, lambda: mmsnet.build(arch, meta))
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("final.")}
    sd.update({k: v for k, v in seg.state_dict().items() if k.startswith("final.")})
    seg.load_state_dict(sd)
    return {"nets": [seg.state_dict()], "meta": meta, "pretext": "masked-inpainting"}


class Pretrain:
    def __init__(self, a):
        self.a = a
        self.hw = train.parse_hw(a.size)
        self.meta = mmsnet.card_metadata(a.arch, train.parse_sets(a.set), train.MODEL_INPUT)
        torch.manual_seed(a.seed)
        self.gen = torch.Generator().manual_seed(a.seed)
        self.net = train.seeded(a.seed * 100 + 1, lambda: build(a.arch, self.meta, PRETEXT_CHANNELS))
        self.net.to(memory_format=torch.channels_last)
        if a.bf16:
            train.keep_narrow_convs_fp32(self.net)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=a.lr, weight_decay=a.wd)
        self.it = 0
        os.makedirs(a.out, exist_ok=True)
        self.log_path = os.path.join(a.out, "log.jsonl")
        if a.resume:
            ck = torch.load(os.path.join(a.out, "ckpt_last.pt"), map_location="cpu", weights_only=False)
            self.net.load_state_dict(ck["net"])
            self.opt.load_state_dict(ck["opt"])
            self.gen.set_state(ck["gen"])
            self.it = ck["it"]
        split = data.load_split(a.split)
        folders = [f for f in a.labeled.split(",") if f]
        self.lab = data.Labeled(a.data, split, folders, "train", self.hw)
        self.by_folder = [[i for i, f in enumerate(self.lab.folders) if f == g] for g in folders]
        self.unl = data.Unlabeled(a.data, self.hw, a.cache, a.clip_stride, log=print)
        self.log({"event": "start", "argv": sys.argv, "labeled_frames": len(self.lab),
                  "unlabeled": self.unl.counts(), "start_it": self.it})

    def log(self, rec):
        train.append_log(self.log_path, rec)

    def labeled_images(self, n):
        idx = []
        for _ in range(n):
            g = self.by_folder[int(torch.randint(len(self.by_folder), (1,), generator=self.gen))]
            idx.append(g[int(torch.randint(len(g), (1,), generator=self.gen))])
        return self.lab.img[idx]

    def batch(self):
        nl = int(round(self.a.batch * self.a.labeled_frac))
        x = torch.cat([self.labeled_images(nl), self.unl.sample(self.a.batch - nl, self.gen)])
        x, _ = augment.geometric(x, None, self.gen, augment.LIGHT)
        x = augment.photometric(x, self.gen, augment.LIGHT)
        return data.normalize(x, train.MEAN, train.STD)

    def step(self):
        target = self.batch()
        x, m = pretext(target, self.a.patch, self.a.mask_ratio, self.gen)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.a.bf16)):
            out = self.net(x)
        loss = masked_mse(out.float(), target, m)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def save(self):
        ck = {"it": self.it, "net": self.net.state_dict(), "opt": self.opt.state_dict(),
              "gen": self.gen.get_state(), "args": vars(self.a)}
        tmp = os.path.join(self.a.out, "ckpt_last.pt.tmp")
        torch.save(ck, tmp)
        os.replace(tmp, os.path.join(self.a.out, "ckpt_last.pt"))
        torch.save(seg_checkpoint(self.net, self.a.arch, self.meta, self.a.seed),
                   os.path.join(self.a.out, "init.pt"))

    def run(self):
        a = self.a
        t0, n, acc = time.time(), 0, 0.0
        self.net.train()
        while self.it < a.iters:
            lr = a.lr * (1 - self.it / a.iters) ** 0.9
            for g in self.opt.param_groups:
                g["lr"] = lr
            acc += self.step()
            self.it += 1
            n += 1
            if self.it % a.log_every == 0 or self.it == a.iters:
                self.log({"event": "train", "it": self.it, "lr": round(lr, 6), "loss": round(acc / n, 4),
                          "s_per_it": round((time.time() - t0) / n, 3)})
                t0, n, acc = time.time(), 0, 0.0
            if self.it % a.save_every == 0 or self.it == a.iters:
                self.save()
        self.log({"event": "done", "it": self.it})


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mms-rt")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="architecture parameters, as train.py")
    ap.add_argument("--labeled", default=",".join(data.LABELED),
                    help="labeled folders whose training-split images (not masks) join the batches")
    ap.add_argument("--labeled-frac", type=float, default=0.5, help="share of each batch from --labeled")
    ap.add_argument("--size", default="160x288")
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=16, help="masked square's side, pixels")
    ap.add_argument("--mask-ratio", type=float, default=0.6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", type=int, default=0, choices=[0, 1])
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=data.DEFAULT_DATA)
    ap.add_argument("--split", default=data.DEFAULT_SPLIT)
    ap.add_argument("--cache", default=data.DEFAULT_CACHE)
    ap.add_argument("--clip-stride", type=int, default=5)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def main():
    a = parser().parse_args()
    if not 0.0 < a.mask_ratio < 1.0:
        sys.exit(f"pretrain.py: --mask-ratio {a.mask_ratio}: must lie in (0, 1)")
    if not 0.0 <= a.labeled_frac <= 1.0:
        sys.exit(f"pretrain.py: --labeled-frac {a.labeled_frac}: must lie in [0, 1]")
    if a.patch < 1:
        sys.exit(f"pretrain.py: --patch {a.patch}: must be >= 1")
    torch.set_num_threads(a.threads)
    Pretrain(a).run()


if __name__ == "__main__":
    main()
