#!/usr/bin/env python3
"""Data for training mmsd's networks: labeled frames, the committed split,
unlabeled frames and clips, decoded once and cached at the training size.

The data lives in ../shared/data relative to the repository root and is never
copied into the repository; the unlabeled cache goes to /tmp (or --cache).

Resizing follows the engine (core/prepost.h, mmsnet.preprocess): the whole
frame is resized to the network input with bilinear interpolation, half-pixel
centres (F.interpolate(..., align_corners=False)), no crop, whatever its aspect
ratio. Masks: bilinear on 0/1, then > 0.5.

  data.py split [--data DIR] [-o models/split.json]   rewrite the split file
  data.py stage --split val --out DIR                 symlink the validation
      frames of each labeled folder into DIR/<folder>/{image,mask}, for
      `mms eval --images DIR/<folder>/image --masks DIR/<folder>/mask`
  data.py pack --out .gpukit [--per-source N]        a compact copy of the
      training data (< 48 MiB) to carry to a lent GPU machine (models/gpukit.sh)
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))
DEFAULT_SPLIT = os.path.join(HERE, "split.json")
DEFAULT_CACHE = "/tmp/mmsd-train-cache"
LABELED = ("cholec80-v01", "cataract", "endovis15")
UNLABELED = ("intermountain-lap", "gyn-laparoscopy", "cholec80-clips")
IMG_EXT = (".png", ".jpg", ".jpeg")

# Clips whose 5 s overlap the labeled Cholec80 frames (video01_000000..19 are
# source seconds 0-22.8, i.e. clips video01_000..004): never used as
# unlabeled data, so no validation frame is seen in training, even unlabeled.
EXCLUDED_CLIPS = tuple(f"video01_{i:03d}" for i in range(5))


# --------------------------------------------------------------------- split

def _stems(folder):
    return sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(folder, "image"))
                  if f.lower().endswith(IMG_EXT))


def cataract_group(stem):
    """Source video / surgical case of a cataract frame: frames of one group
    are near-duplicates and stay on one side of the split."""
    m = re.match(r"CaDIS_\w+?_(Video\d+)_", stem)
    if m:
        return "CaDIS/" + m.group(1)
    m = re.match(r"CatInstSeg_\w+?_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)_", stem)
    if m:
        return "CatInstSeg/" + m.group(1)
    m = re.match(r"cataract1k_\w+?_(case_?\d+)_", stem)
    if m:
        return "cataract1k/" + m.group(1).replace("_", "")
    raise ValueError(f"unknown cataract source for {stem!r}")


# The validation groups, chosen by rule before any training: about 25 % of
# each folder, whole groups only.
#  cholec80-v01: 20 consecutive frames 1.2 s apart; the last contiguous block
#    of five (video01_000015..19) is validation, so only one pair of
#    neighbours (14|15) meets at the boundary (a temporal hold-out).
#  cataract: 6 of 24 frames, two whole groups from two of the three datasets,
#    every dataset keeping frames in train: CatInstSeg video 2019-10-16
#    10-13-16 (3 frames) and Cataract-1K case 5014 (3 frames).
CHOLEC_VAL = [f"video01_{i:06d}" for i in range(15, 20)]
CATARACT_VAL_GROUPS = ("CatInstSeg/2019-10-16_10-13-16", "cataract1k/case5014")
#  endovis15: three operations of 40 neighbouring frames each; one whole
#    operation (op3, the last) is validation, 40 of 120 frames.
ENDOVIS_VAL_OPS = ("op3",)


def endovis_op(stem):
    """Operation of an EndoVis 2015 frame (op1_img01 -> op1)."""
    m = re.match(r"(op\d+)_img\d+$", stem)
    if not m:
        raise ValueError(f"unknown endovis15 frame name {stem!r}")
    return m.group(1)


def make_split(data_root=DEFAULT_DATA):
    out = {}
    stems = _stems(os.path.join(data_root, "labeled", "cholec80-v01"))
    out["cholec80-v01"] = {"train": [s for s in stems if s not in CHOLEC_VAL],
                           "val": [s for s in stems if s in CHOLEC_VAL]}
    stems = _stems(os.path.join(data_root, "labeled", "cataract"))
    val = [s for s in stems if cataract_group(s) in CATARACT_VAL_GROUPS]
    out["cataract"] = {"train": [s for s in stems if s not in val], "val": val}
    stems = _stems(os.path.join(data_root, "labeled", "endovis15"))
    val = [s for s in stems if endovis_op(s) in ENDOVIS_VAL_OPS]
    out["endovis15"] = {"train": [s for s in stems if s not in val], "val": val}
    return out


def parse_folder_weights(spec, folders):
    """'F1=W1,F2=W2' -> {folder: weight} over folders (unlisted ones 1.0).
    Raises ValueError with the reason."""
    w = {f: 1.0 for f in folders}
    for item in filter(None, (spec or "").split(",")):
        name, _, val = item.partition("=")
        if name not in w:
            raise ValueError(f"{name!r} is not a labeled folder of this run")
        try:
            w[name] = float(val)
        except ValueError:
            raise ValueError(f"{item!r} is not FOLDER=WEIGHT") from None
        if not w[name] > 0:
            raise ValueError(f"{name}: weight must be > 0")
    return w


def load_split(path=DEFAULT_SPLIT):
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------- image helpers

def find_file(folder, stem):
    for ext in IMG_EXT:
        p = os.path.join(folder, stem + ext)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(folder, stem + ".*"))


def read_rgb(path):
    """-> HxWx3 uint8 tensor."""
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def read_mask(path):
    """-> HxW bool tensor (tool = nonzero)."""
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a.max(axis=2)
    return torch.from_numpy(a > 127)


def resize_rgb(rgb_u8, hw):
    """HxWx3 uint8 -> 1x3xhxw float on the 0-255 scale, the engine's resize."""
    x = rgb_u8.permute(2, 0, 1).unsqueeze(0).float()
    if tuple(x.shape[2:]) != tuple(hw):
        x = F.interpolate(x, size=tuple(hw), mode="bilinear", align_corners=False)
    return x


def resize_mask(mask_bool, hw):
    """HxW bool -> 1x1xhxw float 0/1: bilinear, then > 0.5."""
    m = mask_bool.float()[None, None]
    if tuple(m.shape[2:]) != tuple(hw):
        m = (F.interpolate(m, size=tuple(hw), mode="bilinear", align_corners=False) > 0.5).float()
    return m


def normalize(x01, mean, std):
    m = torch.tensor(mean, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (x01 - m) / s


# ------------------------------------------------------------------- labeled

class Labeled:
    """One split of labeled folders, held in memory at one size:
    img Nx3xhxw float 0-1, mask Nx1xhxw float 0/1, plus names and folders.
    With keep_full, the full-resolution masks are kept too (for validation
    Dice at the frame size, as `mms eval` computes it)."""

    def __init__(self, data_root, split, folders, part, hw, keep_full=False):
        imgs, masks, self.names, self.folders, self.full_masks = [], [], [], [], []
        for folder in folders:
            base = os.path.join(data_root, "labeled", folder)
            for stem in split[folder][part]:
                rgb = read_rgb(find_file(os.path.join(base, "image"), stem))
                m = read_mask(find_file(os.path.join(base, "mask"), stem))
                if tuple(m.shape) != tuple(rgb.shape[:2]):
                    raise SystemExit(f"{folder}/{stem}: image and mask sizes differ")
                imgs.append(resize_rgb(rgb, hw) / 255.0)
                masks.append(resize_mask(m, hw))
                self.names.append(stem)
                self.folders.append(folder)
                if keep_full:
                    self.full_masks.append(m)
        if not imgs:
            raise SystemExit(f"no labeled frames for {folders} / {part}")
        self.img = torch.cat(imgs)
        self.mask = torch.cat(masks)

    def __len__(self):
        return self.img.shape[0]


# ----------------------------------------------------------------- unlabeled

def _ffmpeg_frames(path, stride):
    """Decode every stride-th frame of a clip to a list of HxWx3 uint8 arrays."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path],
                           check=True, capture_output=True, text=True).stdout
    w, h = (int(v) for v in probe.strip().split(",")[:2])
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", path,
           "-vf", f"select=not(mod(n\\,{stride}))", "-vsync", "0",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    n = len(raw) // (w * h * 3)
    return np.frombuffer(raw[:n * w * h * 3], np.uint8).reshape(n, h, w, 3)


def unlabeled_sources(data_root, clip_stride):
    """-> {source: [(kind, path), ...]}, sorted, with the excluded clips left out.
    A source with a frames/ folder is read from it: the two image sources
    always, cholec80-clips in a pack (its clips decoded already)."""
    out = {}
    for name in UNLABELED:
        d = os.path.join(data_root, "unlabeled", name, "frames")
        if name != "cholec80-clips" or os.path.isdir(d):
            out[name] = [("image", os.path.join(d, f)) for f in sorted(os.listdir(d))
                         if f.lower().endswith(IMG_EXT)]
    if "cholec80-clips" in out:
        return out
    d = os.path.join(data_root, "unlabeled", "cholec80-clips", "clips")
    clips = []
    for root, _, files in sorted(os.walk(d)):
        for f in sorted(files):
            if f.endswith(".mp4") and os.path.splitext(f)[0] not in EXCLUDED_CLIPS:
                clips.append(("clip", os.path.join(root, f)))
    out["cholec80-clips"] = sorted(clips, key=lambda t: os.path.basename(t[1]))
    return out


def _decode_source(items, hw, clip_stride):
    """-> (N x h x w x 3 uint8 array, names): a source's frames at the
    training size. Clips are 16:9 frames squashed to 256x256: resizing the
    squashed frame straight to h x w (a 16:9 size) is the same map as undoing
    the squash (455x256) and then resizing, in one resampling."""
    frames, names = [], []
    for kind, p in items:
        if kind == "image":
            arrs = [read_rgb(p)]
            tags = [os.path.basename(p)]
        else:
            arrs = [torch.from_numpy(a.copy()) for a in _ffmpeg_frames(p, clip_stride)]
            tags = [f"{os.path.basename(p)}#{i * clip_stride}" for i in range(len(arrs))]
        for a, t in zip(arrs, tags):
            x = resize_rgb(a, hw)
            frames.append(x.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy())
            names.append(t)
    return np.stack(frames), names


# Part of every cache file's name: bump it when _decode_source changes
# what it makes, so that no training reads arrays of the old code.
CACHE_VERSION = 2


def cache_key(items):
    """The files, their sizes and CACHE_VERSION: a file replaced by another
    of another size, or a changed decoder, makes a new cache file."""
    desc = [CACHE_VERSION] + [[p, os.path.getsize(p)] for _, p in items]
    return hashlib.sha1(json.dumps(desc).encode()).hexdigest()[:10]


def _build_source(items, hw, clip_stride, path):
    """Decode a source once into an N x h x w x 3 uint8 .npy file."""
    arr, names = _decode_source(items, hw, clip_stride)
    # The names first, each file whole before its name exists: a reader
    # (another training starting) that finds the .npy finds its names.
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(names, f)
    os.replace(tmp, path[:-4] + ".json")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


class Unlabeled:
    """Unlabeled frames of every source at the training size, memory-mapped
    from the cache. sample() draws a source uniformly, then a frame in it, so
    the 114 clips of one surgery do not drown the 37 other procedures."""

    def __init__(self, data_root, hw, cache_dir=DEFAULT_CACHE, clip_stride=5,
                 sources=None, log=print):
        os.makedirs(cache_dir, exist_ok=True)
        self.arrays, self.names = {}, {}
        for src, items in unlabeled_sources(data_root, clip_stride).items():
            if sources and src not in sources:
                continue
            key = cache_key(items)
            stride = f"_s{clip_stride}" if src == "cholec80-clips" else ""
            path = os.path.join(cache_dir, f"{src}_{hw[0]}x{hw[1]}{stride}_{key}.npy")
            if not os.path.exists(path):
                log(f"caching {len(items)} {src} items at {hw[0]}x{hw[1]} -> {path}")
                _build_source(items, hw, clip_stride, path)
            self.arrays[src] = np.load(path, mmap_mode="r")
            with open(path[:-4] + ".json") as f:
                self.names[src] = json.load(f)
        self.sources = sorted(self.arrays)

    def counts(self):
        return {s: int(self.arrays[s].shape[0]) for s in self.sources}

    def sample(self, n, gen):
        """-> nx3xhxw float 0-1 batch."""
        out = []
        for _ in range(n):
            src = self.sources[int(torch.randint(len(self.sources), (1,), generator=gen))]
            arr = self.arrays[src]
            i = int(torch.randint(arr.shape[0], (1,), generator=gen))
            out.append(torch.from_numpy(np.array(arr[i])))
        x = torch.stack(out).permute(0, 3, 1, 2).float() / 255.0
        return x.contiguous()


# ---------------------------------------------------------------------- pack

PACK_LIMIT = 48 << 20   # of the 64 MiB that travel; the working tree needs the rest


def pack(data_root, split, out, hw=(288, 512), per_source=300, quality=90, clip_stride=5,
         limit=PACK_LIMIT, cache_dir=DEFAULT_CACHE, log=print):
    """Write a compact copy of the training data to out, for a machine that
    cannot see ../shared: the lent GPU machine gets the working tree and at
    most 64 MiB of carried paths, and ../shared alone is over 90 MiB.

    The split's labeled frames are copied as they are, since validation
    Dice is taken at each frame's own size. Each unlabeled source is read
    from the training cache at hw (decoded once, shared with train.py), and
    per_source frames spread evenly over it are kept as JPEG (clips
    included, so no ffmpeg is needed there). Returns the bytes written.

    The pack is built next to out and renamed to it only once it is whole
    and under limit: a refused or interrupted pack leaves no half-kit that a
    device run could carry. out must not exist. The repository ignores
    /.gpukit/, the usual out: none of it may be committed."""
    if os.path.lexists(out):
        raise SystemExit(f"data.py pack: {out} exists; remove it first")
    part = out.rstrip("/") + ".partial"
    shutil.rmtree(part, ignore_errors=True)
    try:
        total = _pack_labeled(data_root, split, part)
        t, counts = _pack_unlabeled(data_root, part, hw, per_source, quality, clip_stride, cache_dir, log)
        total += t
        if total > limit:
            raise SystemExit(f"data.py pack: {out}: {total / 2**20:.1f} MiB is over "
                             f"{limit / 2**20:.0f} MiB; lower --per-source or --quality")
        with open(os.path.join(part, "PACK.json"), "w") as f:
            json.dump({"size": f"{hw[0]}x{hw[1]}", "unlabeled": counts, "quality": quality,
                       "labeled": {k: len(v["train"]) + len(v["val"]) for k, v in split.items()}}, f)
        os.rename(part, out)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    log(f"pack: {out}: {total / 2**20:.1f} MiB")
    return total


def _pack_labeled(data_root, split, out):
    total = 0
    for folder in LABELED:
        for sub in ("image", "mask"):
            d = os.path.join(out, "labeled", folder, sub)
            os.makedirs(d, exist_ok=True)
            for part in ("train", "val"):
                for stem in split[folder][part]:
                    src = find_file(os.path.join(data_root, "labeled", folder, sub), stem)
                    with open(src, "rb") as fi, open(os.path.join(d, os.path.basename(src)), "wb") as fo:
                        total += fo.write(fi.read())
    return total


def _pack_unlabeled(data_root, out, hw, per_source, quality, clip_stride, cache_dir, log):
    total, counts = 0, {}
    unl = Unlabeled(data_root, hw, cache_dir, clip_stride, log=log)
    for src in unl.sources:
        arr = unl.arrays[src]
        keep = np.unique(np.linspace(0, arr.shape[0] - 1, min(per_source, arr.shape[0])).round().astype(int))
        d = os.path.join(out, "unlabeled", src, "frames")
        os.makedirs(d, exist_ok=True)
        for k, i in enumerate(keep):
            path = os.path.join(d, f"{k:05d}.jpg")
            Image.fromarray(np.array(arr[i])).save(path, quality=quality)
            total += os.path.getsize(path)
        counts[src] = int(len(keep))
        log(f"pack: {src}: {len(keep)} of {arr.shape[0]} frames at {hw[0]}x{hw[1]}")
    return total, counts


# ----------------------------------------------------------------------- cli

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["split", "stage", "pack"])
    ap.add_argument("--per-source", type=int, default=300, help="pack: unlabeled frames kept per source")
    ap.add_argument("--size", default="288x512", help="pack: unlabeled frame size HxW")
    ap.add_argument("--quality", type=int, default=90, help="pack: JPEG quality of the unlabeled frames")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--split-file", default=DEFAULT_SPLIT)
    ap.add_argument("--split", default="val", choices=["train", "val"])
    ap.add_argument("-o", "--out")
    args = ap.parse_args()
    if args.cmd == "split":
        split = make_split(args.data)
        path = args.out or args.split_file
        with open(path, "w") as f:
            json.dump(split, f, indent=1)
            f.write("\n")
        for k, v in split.items():
            print(f"{k}: train {len(v['train'])}, val {len(v['val'])}")
        return
    if not args.out:
        sys.exit(f"data.py {args.cmd}: --out DIR is required")
    split = load_split(args.split_file)
    if args.cmd == "pack":
        h, w = (int(v) for v in args.size.split("x"))
        pack(args.data, split, args.out, (h, w), args.per_source, args.quality)
        return
    for folder in LABELED:
        for sub in ("image", "mask"):
            d = os.path.join(args.out, folder, sub)
            os.makedirs(d, exist_ok=True)
            unstage_others(d, {os.path.basename(find_file(os.path.join(args.data, "labeled", folder, sub), s))
                               for s in split[folder][args.split]})
            for stem in split[folder][args.split]:
                src = find_file(os.path.join(args.data, "labeled", folder, sub), stem)
                dst = os.path.join(d, os.path.basename(src))
                if os.path.lexists(dst):
                    os.remove(dst)
                os.symlink(os.path.abspath(src), dst)
        print(f"{folder}: {len(split[folder][args.split])} frames in {os.path.join(args.out, folder)}")


def unstage_others(d, keep):
    """Removes the links in d that the split no longer names: a frame moved
    to the other side must not be scored there. Anything but a link is
    not stage's to remove or replace: every entry is looked at before any
    is removed, so a refusal leaves the directory as it was."""
    names = sorted(os.listdir(d))
    for name in names:
        p = os.path.join(d, name)
        if not os.path.islink(p):
            sys.exit(f"data.py stage: {p} is not a link stage made; remove it or stage elsewhere")
    for name in names:
        if name not in keep:
            os.remove(os.path.join(d, name))


if __name__ == "__main__":
    main()
