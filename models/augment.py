"""Batched data augmentation on torch tensors (no torchvision on Debian 12).

Every function takes images as Bx3xHxW float tensors on the 0-1 scale (before
the ImageNet normalisation, so that padding is black, like the corners of an
endoscope's field of view), masks as Bx1xHxW float 0/1 tensors, and a
torch.Generator, so that a run is reproducible from its seed.

The strong augmentation of the MMS method (Lou et al., TMI 2023; the official
code's "strong" transform): flips, rotation, random affine (translation,
scale, shear), colour jitter with a large hue range, random greyscale,
Gaussian blur, and GridMask on the image only. Ranges are given in `STRONG`.
"""

import math

import torch
import torch.nn.functional as F

# ImageNet mean on the 0-1 scale: GridMask fills with it, i.e. with 0 after
# normalisation, as the official code (which masks the normalised tensor) does.
MEAN = (0.485, 0.456, 0.406)

STRONG = dict(
    hflip=0.5, vflip=0.5,
    rotate=90.0,            # degrees, uniform in [-rotate, rotate]
    translate=0.25,         # fraction of width / height, uniform in [-t, t]
    scale=(0.75, 1.33),     # log-uniform
    shear=15.0,             # degrees, uniform in [-shear, shear], x and y
    brightness=0.3, contrast=0.3, saturation=0.3,   # factor uniform in [1-v, 1+v]
    hue=0.5,                # fraction of the colour circle, uniform in [-hue, hue]
    grey=0.2,               # probability of greyscale
    blur_sigma=(0.1, 2.0),  # 3x3 Gaussian kernel, sigma uniform in this range
    grid_prob=0.8, grid_d=(20, 80), grid_ratio=0.4, grid_rotate=90.0,  # d at 288 rows
)

# A lighter set for the small supervised networks: under STRONG the 2 M
# parameter mms-rt ends its training with the structure loss still near 0.8
# (underfitting), a hue turn of up to half the circle makes the cataract red
# reflex any colour, and GridMask can erase a thin instrument tip whole.
MEDIUM = dict(STRONG,
              rotate=20.0, translate=0.1, scale=(0.8, 1.25), shear=5.0,
              brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03,
              grey=0.05, blur_sigma=(0.1, 1.0), grid_prob=0.2)

# MEDIUM with zoom-ins up to 2x that can reach the frame's edges (a shift of
# up to 0.35 of the frame): more views, at twice the resolution, of what the
# cataract errors are made of - the retractor hooks at the edge, which the
# labels leave out, and the thin distal ends of the instruments.
ZOOM = dict(MEDIUM, scale=(0.8, 2.0), translate=0.35)

# MEDIUM without vertical flips: the frame's "up" is a cue. The cataract
# retractor hooks, which the labels leave out, come in from the top edge and
# the instruments from the sides and bottom; a vertical flip turns a hook
# into something shaped and placed like an instrument.
UPRIGHT = dict(MEDIUM, vflip=0.0)

# UPRIGHT, lighter still: small shifts, scales and colour changes, no
# GridMask. Under MEDIUM the structure loss of mms-rt stays at 0.4-0.5 over
# a whole fine-tune and its training frames score no better than its
# validation frames (endovis15 0.82, cataract 0.84): a test of whether the
# network is held back by fitting, not by what it has seen.
LIGHT = dict(UPRIGHT,
             rotate=10.0, translate=0.05, scale=(0.9, 1.11), shear=0.0,
             brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02,
             grey=0.0, blur_sigma=(0.1, 0.5), grid_prob=0.0)

# LIGHT's geometry with MEDIUM's colour changes and more hue: LIGHT cut
# both at once, and endovis15's validation operation is lit redder and
# darker than the two it trains on (twentieth session, measured).
LIGHT_COLOUR = dict(LIGHT, brightness=0.25, contrast=0.25, saturation=0.25, hue=0.04)

PRESETS = {"strong": STRONG, "medium": MEDIUM, "zoom": ZOOM, "upright": UPRIGHT,
           "light": LIGHT, "light_colour": LIGHT_COLOUR}


def _u(gen, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


# ---------------------------------------------------------------- geometry

def random_affine_theta(n, h, w, gen, p=STRONG):
    """Per-sample random 2x3 matrices for F.affine_grid: flips, rotation,
    log-uniform scale, shear, translation in the ranges of p."""
    ang = _u(gen, n, -p["rotate"], p["rotate"])
    lo, hi = math.log(p["scale"][0]), math.log(p["scale"][1])
    sc = torch.exp(_u(gen, n, lo, hi))
    shx = _u(gen, n, -p["shear"], p["shear"])
    shy = _u(gen, n, -p["shear"], p["shear"])
    tx = _u(gen, n, -p["translate"], p["translate"]) * w
    ty = _u(gen, n, -p["translate"], p["translate"]) * h
    fx = torch.where(torch.rand(n, generator=gen) < p["hflip"], -1.0, 1.0)
    fy = torch.where(torch.rand(n, generator=gen) < p["vflip"], -1.0, 1.0)
    return affine_theta(h, w, ang, sc, shx, shy, tx, ty, fx, fy)


def affine_theta(h, w, ang, sc, shx, shy, tx, ty, fx, fy):
    """2x3 matrices for F.affine_grid (output -> input, normalised
    coordinates) of the forward map out = sc * R(ang) Sh(shx, shy) Flip(fx, fy) in + t
    on centred pixel coordinates, so that rotation and shear stay rigid on
    non-square frames. Angles in degrees, t in pixels; all 1-D tensors."""
    n = ang.shape[0]
    ang = torch.deg2rad(ang)
    shx, shy = torch.tan(torch.deg2rad(shx)), torch.tan(torch.deg2rad(shy))
    cos, sin = torch.cos(ang), torch.sin(ang)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear = torch.stack([torch.stack([torch.ones(n), shx], -1),
                         torch.stack([shy, torch.ones(n)], -1)], -2)
    flip = torch.diag_embed(torch.stack([fx, fy], -1))
    m = sc.view(n, 1, 1) * rot @ shear @ flip
    minv = torch.linalg.inv(m)
    t = torch.stack([tx, ty], -1).unsqueeze(-1)
    nrm = torch.diag(torch.tensor([2.0 / w, 2.0 / h]))
    nrm_inv = torch.diag(torch.tensor([w / 2.0, h / 2.0]))
    a = nrm @ minv @ nrm_inv
    b = -(nrm @ minv @ t)
    return torch.cat([a, b], -1)


def warp(x, theta, mode="bilinear", padding="zeros"):
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def geometric(img, mask, gen, p=STRONG):
    """The same random flip/rotation/affine on an image batch and its masks;
    masks resampled bilinearly and thresholded at 0.5."""
    n, _, h, w = img.shape
    theta = random_affine_theta(n, h, w, gen, p)
    img = warp(img, theta)
    if mask is not None:
        mask = (warp(mask, theta) > 0.5).float()
    return img, mask


# ------------------------------------------------------------------ colour

def _grey(x):
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.596, -0.274, -0.322],
                         [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def hue_rotate(x, shift):
    """Hue rotation by shift (fraction of the circle, per sample) as a rotation
    of the chroma plane in YIQ space: linear, cheap, keeps luma."""
    n = x.shape[0]
    a = shift * 2 * math.pi
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = _YIQ2RGB @ rot @ _RGB2YIQ                       # n x 3 x 3
    return torch.einsum("nij,njhw->nihw", m.to(x.device, x.dtype), x)


def photometric(img, gen, p=STRONG):
    n = img.shape[0]
    dev = img.device
    v = lambda k: _u(gen, n, 1 - p[k], 1 + p[k]).view(n, 1, 1, 1).to(dev)
    x = img * v("brightness")
    x = x.clamp(0, 1)
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * v("contrast") + mean).clamp(0, 1)
    g = _grey(x)
    x = ((x - g) * v("saturation") + g).clamp(0, 1)
    x = hue_rotate(x, _u(gen, n, -p["hue"], p["hue"])).clamp(0, 1)
    grey = (torch.rand(n, generator=gen) < p["grey"]).view(n, 1, 1, 1).to(dev)
    x = torch.where(grey, _grey(x).expand_as(x), x)
    # 3x3 Gaussian blur with a per-sample sigma
    sig = _u(gen, n, *p["blur_sigma"])
    k1 = torch.exp(-torch.tensor([-1.0, 0.0, 1.0]).view(1, 3) ** 2 / (2 * sig.view(n, 1) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1.view(n, 3, 1) * k1.view(n, 1, 3))               # n x 3 x 3
    weight = k2.repeat_interleave(3, 0).unsqueeze(1).to(dev)  # (n*3) x 1 x 3 x 3
    xr = F.pad(x.reshape(1, n * 3, *x.shape[2:]), (1, 1, 1, 1), mode="replicate")
    x = F.conv2d(xr, weight, groups=n * 3).view_as(x)
    return x


# --------------------------------------------------------------- grid mask

def gridmask(img, gen, p=STRONG):
    """GridMask (Chen et al. 2020) in the official MMS setting (mode 1): with
    probability grid_prob, squares of side (1-ratio)*d on a grid of period d,
    rotated at random, are filled with the mean colour; masks are untouched."""
    n, _, h, w = img.shape
    dev = img.device
    scale = h / 288.0
    d_lo = max(4, int(round(p["grid_d"][0] * scale)))
    d_hi = max(d_lo + 1, int(round(p["grid_d"][1] * scale)))
    d = torch.randint(d_lo, d_hi, (n,), generator=gen).float()
    line = torch.ceil(d * p["grid_ratio"])  # width of the kept stripes
    off_y = torch.rand(n, generator=gen) * d
    off_x = torch.rand(n, generator=gen) * d
    ang = torch.deg2rad(torch.rand(n, generator=gen) * p["grid_rotate"])
    apply = torch.rand(n, generator=gen) < p["grid_prob"]
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) - h / 2
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) - w / 2
    c, s = torch.cos(ang).view(n, 1, 1), torch.sin(ang).view(n, 1, 1)
    u = c * xs - s * ys
    v = s * xs + c * ys
    dd, ll = d.view(n, 1, 1), line.view(n, 1, 1)
    on_stripe = (torch.remainder(u - off_x.view(n, 1, 1), dd) < ll) | \
                (torch.remainder(v - off_y.view(n, 1, 1), dd) < ll)
    erase = (~on_stripe) & apply.view(n, 1, 1)
    fill = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    return torch.where(erase.unsqueeze(1).to(dev), fill, img)


def strong(img, mask, gen, p=STRONG, grid=True):
    img, mask = geometric(img, mask, gen, p)
    img = photometric(img, gen, p)
    if grid:
        img = gridmask(img, gen, p)
    return img, mask


# ------------------------------------------------------------ compositing

def copy_paste(img, mask, gen, prob=0.5, allowed=None):
    """Copy-paste between labeled frames (Ghiasi et al., CVPR 2021): with
    probability prob per sample, the tool pixels of another frame of the
    batch are pasted over it. Both frames are labeled, so the new mask is
    exact - the union of the two - unlike composite(), whose unlabeled
    backgrounds may hide tools. The point is new pairs of tool and tissue:
    a dark shaft from one operation over another's bright, red tissue,
    which 113 labeled frames rarely show. Call it after the geometric
    augmentation (each tool where its own warp put it) and before the
    photometric one (the pasted tool takes its new frame's colour).

    allowed (bool, one per sample) keeps the others out of it, as donors
    and as receivers: a laparoscopic shaft pasted into a cataract frame
    taught the network that large bright shapes are tools there. allowed
    may instead hold a group number per sample (-1: out): a frame then
    takes tools only from frames of its own group, so cataract tools can
    be pasted among cataract frames while laparoscopic ones stay apart."""
    n = img.shape[0]
    if n < 2 or prob <= 0:
        return img, mask
    if allowed is None:
        pick = (torch.rand(n, generator=gen) < prob).view(n, 1, 1, 1).to(img.device, img.dtype)
        shift = int(torch.randint(1, n, (1,), generator=gen))
        paste = mask.roll(shift, 0) * pick
        img = paste * img.roll(shift, 0) + (1 - paste) * img
        return img, torch.maximum(mask, paste)
    group = allowed.flatten().long() if allowed.dtype != torch.bool else allowed.flatten().long() - 1
    donor = torch.arange(n)
    # one group draws exactly as the boolean form always has, so that
    # earlier runs reproduce
    for g in sorted(set(int(v) for v in group if v >= 0)):
        _pick_donors(donor, [int(i) for i in torch.nonzero(group == g).flatten()], gen, prob)
    paste = mask[donor] * (donor != torch.arange(n)).view(-1, 1, 1, 1).to(mask.device, mask.dtype)
    img = paste * img[donor] + (1 - paste) * img
    return img, torch.maximum(mask, paste)


def _pick_donors(donor, ok, gen, prob):
    """Each receiver in ok takes, with probability prob, a donor drawn among
    the other samples of ok (a roll of the whole batch would mostly pair a
    frame with one of another group)."""
    if len(ok) < 2:
        return
    pick = torch.rand(len(ok), generator=gen) < prob
    for k, i in enumerate(ok):
        j = int(torch.randint(len(ok) - 1, (1,), generator=gen))
        if pick[k]:
            donor[i] = ok[j + (j >= k)]   # any sample of the group but itself


def shadow(img, gen, prob=0.5, depth=(0.4, 0.85)):
    """Endoscope light falloff: with probability prob per sample, the frame
    darkens from a random radius outwards, around a centre moved off the
    middle, by up to depth (a fraction of the brightness at the far edge).
    The worst endovis15 misses are whole instrument shafts in the dark at
    the frame's edge, which the training operations seldom show; the mask
    is unchanged, since a tool in shadow is still a tool. Call it before
    the photometric augmentation, whose brightness jitter is global."""
    n, _, h, w = img.shape
    pick = torch.rand(n, generator=gen) < prob
    cy, cx = _u(gen, n, -0.3, 0.3).view(n, 1, 1), _u(gen, n, -0.3, 0.3).view(n, 1, 1)
    r0 = _u(gen, n, 0.3, 0.8).view(n, 1, 1)
    d = _u(gen, n, depth[0], depth[1]).view(n, 1, 1)
    ys = torch.linspace(-1, 1, h).view(1, h, 1)
    xs = torch.linspace(-1, 1, w).view(1, 1, w)
    r = torch.sqrt((ys - cy) ** 2 + (xs - cx) ** 2) / math.sqrt(2)
    fall = ((r - r0) / (1 - r0)).clamp(0, 1)
    f = torch.where(pick.view(n, 1, 1), 1 - d * fall, torch.ones(()))
    return img * f.unsqueeze(1).to(img.device, img.dtype)


def tool_colour(img, mask, gen, prob=0.25, sat=(0.0, 1.5), gain=(0.4, 2.0), tint=0.3):
    """Tool colour jitter: with probability prob per sample, the tool
    pixels alone change colour - saturation scaled by a factor from sat,
    brightness by one from gain, each channel by 1 +- tint - and the tissue
    is left as it is, so that a tool is told by its shape and edges more
    than by its paint. A broader form of metal(). The mask is unchanged.
    Call it after the geometric augmentation and before the photometric
    one."""
    n = img.shape[0]
    pick = (torch.rand(n, generator=gen) < prob).view(n, 1, 1, 1)
    s = _u(gen, n, sat[0], sat[1]).view(n, 1, 1, 1)
    g = _u(gen, n, gain[0], gain[1]).view(n, 1, 1, 1)
    t = _u(gen, 3 * n, 1 - tint, 1 + tint).view(n, 3, 1, 1)
    s, g, t = (v.to(img.device, img.dtype) for v in (s, g, t))
    y = _grey(img)
    out = ((y + s * (img - y)) * g * t).clamp(0, 1)
    w = mask * pick.to(img.device, img.dtype)
    return w * out + (1 - w) * img


def smoke(img, gen, prob=0.25, density=(0.3, 0.7), grid=(3, 5), allowed=None):
    """Surgical smoke: with probability prob per sample, the frame is mixed
    with a bright grey-white airlight (0.7-0.95, slightly warm) by a density
    drawn from density and varied smoothly over the frame (a coarse random
    grid, upsampled), as electrosurgery's smoke veils a laparoscopic view.
    Several endovis15 validation frames are washed out so; the training
    operations show little smoke. The mask is unchanged. Call it before the
    photometric augmentation. allowed (bool, one per sample) keeps the
    others clear of it."""
    n, _, h, w = img.shape
    pick = torch.rand(n, generator=gen) < prob
    if allowed is not None:
        pick = pick & allowed.to(pick.device)
    pick = pick.view(n, 1, 1, 1)
    d = _u(gen, n, density[0], density[1]).view(n, 1, 1, 1)
    field = torch.rand(n, 1, grid[0], grid[1], generator=gen)
    field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=True)
    # The veil lies inside the scope's field of view: the black outside it
    # (Cholec80's round view) stays black.
    k = max(1, 15 * h // 288) | 1
    lit = (F.avg_pool2d(_grey(img), k, stride=1, padding=k // 2, count_include_pad=False) / 0.1)
    a = d * (0.5 + 0.5 * field) * lit.clamp(0, 1).cpu()
    grey = _u(gen, n, 0.7, 0.95).view(n, 1, 1, 1)
    tint = torch.stack([torch.ones(n), _u(gen, n, 0.93, 1.0), _u(gen, n, 0.85, 1.0)], 1)
    air = grey * tint.view(n, 3, 1, 1)
    a = torch.where(pick, a, torch.zeros(()))
    a, air = a.to(img.device, img.dtype), air.to(img.device, img.dtype)
    return img * (1 - a) + a * air


def metal(img, mask, gen, prob=0.5, mix=(0.3, 0.7), gain=(1.0, 2.0), blur=15):
    """Mirror-like metal: with probability prob per sample, each tool pixel
    becomes its own luminance (the shaft's edges, print and glints),
    brightened by a factor drawn from gain (black paint to bare steel), mixed,
    by a fraction drawn from mix, with a blurred copy of the frame turned
    by 180 degrees (the tissue the shaft reflects, in its colours). The
    worst endovis15 misses are silver shafts that mirror red tissue, where
    the training operations' tools are mostly black. The mask is
    unchanged. Call it after the geometric augmentation (the mask must be
    where the tool is) and before the photometric one."""
    n = img.shape[0]
    pick = (torch.rand(n, generator=gen) < prob).view(n, 1, 1, 1).to(img.device, img.dtype)
    a = _u(gen, n, mix[0], mix[1]).view(n, 1, 1, 1).to(img.device, img.dtype)
    g = _u(gen, n, gain[0], gain[1]).view(n, 1, 1, 1).to(img.device, img.dtype)
    k = max(1, blur * img.shape[2] // 288) | 1
    refl = F.avg_pool2d(img.flip(2, 3), k, stride=1, padding=k // 2, count_include_pad=False)
    shiny = (1 - a) * (g * _grey(img)).clamp(0, 1) + a * refl
    w = mask * pick
    return w * shiny + (1 - w) * img


def tool_zoom(img, mask, gen, prob=0.25, scale=(1.5, 2.5)):
    """Tool-centred zoom-in: with probability prob per sample that holds a
    tool, a window 1/s of the frame (s log-uniform in scale) around a
    random tool pixel, placed so that the pixel falls anywhere in it and
    the window stays inside the frame, is resized back to the frame. The
    worst endovis15 frames are shafts close to the camera, several times
    the size of the training operations' tools; a random zoom (augment.ZOOM)
    mostly lands on tissue. Masks resampled bilinearly and thresholded at
    0.5, as in geometric()."""
    n, _, h, w = img.shape
    has = mask.flatten(1).sum(1) > 0
    pick = (torch.rand(n, generator=gen) < prob) & has
    lo, hi = math.log(scale[0]), math.log(scale[1])
    s = torch.exp(_u(gen, n, lo, hi))
    u = _u(gen, 2 * n, -1.0, 1.0).view(n, 2)
    if not bool(pick.any()):
        return img, mask
    # A tool pixel per sample (uniform over the tool), as normalised
    # coordinates of its centre; samples without a tool draw from a flat
    # weight and are not zoomed.
    wts = mask.flatten(1).cpu().clone()
    wts[~has] = 1.0
    idx = torch.multinomial(wts, 1, generator=gen).view(n)
    px = ((idx % w).float() + 0.5) * 2.0 / w - 1.0
    py = ((idx // w).float() + 0.5) * 2.0 / h - 1.0
    half = 1.0 / s
    cx = (px + u[:, 0] * half).clamp(-1.0 + half, 1.0 - half)
    cy = (py + u[:, 1] * half).clamp(-1.0 + half, 1.0 - half)
    one = torch.where(pick, half, torch.ones(n))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = one
    theta[:, 1, 1] = one
    theta[:, 0, 2] = torch.where(pick, cx, torch.zeros(n))
    theta[:, 1, 2] = torch.where(pick, cy, torch.zeros(n))
    # A window flush with the frame's edge samples half a pixel past the
    # outer pixel centres: the border, not black.
    out = warp(img, theta, padding="border")
    zm = (warp(mask, theta, padding="border") > 0.5).to(mask.dtype)
    keep = (~pick).view(n, 1, 1, 1).to(img.device)
    return torch.where(keep, img, out), torch.where(keep, mask, zm)


def composite(img, mask, backgrounds, gen, prob=0.5):
    """Tool compositing: with probability prob per sample, the labeled tool
    pixels (mask = 1) are pasted onto a tissue background frame (an unlabeled
    frame). Returns the images, and a per-sample bool telling which samples
    were composited (their background is unlabeled: the caller masks out
    background pixels that may hold unlabeled tools)."""
    n = img.shape[0]
    pick = torch.rand(n, generator=gen) < prob
    if backgrounds.shape[0] < n:
        reps = (n + backgrounds.shape[0] - 1) // backgrounds.shape[0]
        backgrounds = backgrounds.repeat(reps, 1, 1, 1)
    bg = backgrounds[:n]
    out = torch.where(pick.view(n, 1, 1, 1).to(img.device), mask * img + (1 - mask) * bg, img)
    return out, pick


# Where a speculum hook enters the frame: the wire speculum holds the upper
# and the lower lid, so most hooks come from the top and the bottom edge.
HOOK_EDGES = (("top", 0.5), ("bottom", 0.3), ("left", 0.1), ("right", 0.1))


def _hook_path(gen, h, w):
    """The centre line of one synthetic speculum hook, as pixel coordinates
    (x, y) every half pixel or less: a straight wire from a point of an edge
    into the frame, then a curl of 120-220 degrees (the hook's tip)."""
    r = float(torch.rand(1, generator=gen))
    acc = 0.0
    for edge, p in HOOK_EDGES:
        acc += p
        if r < acc:
            break
    t = float(_u(gen, 1, 0.1, 0.9))
    start, normal = {"top": ((t * w, 0.0), (0.0, 1.0)), "bottom": ((t * w, h - 1.0), (0.0, -1.0)),
                     "left": ((0.0, t * h), (1.0, 0.0)), "right": ((w - 1.0, t * h), (-1.0, 0.0))}[edge]
    a = math.atan2(normal[1], normal[0]) + math.radians(float(_u(gen, 1, -35.0, 35.0)))
    length = float(_u(gen, 1, 0.08, 0.3)) * h
    radius = float(_u(gen, 1, 0.02, 0.06)) * h
    turn = math.radians(float(_u(gen, 1, 120.0, 220.0)))
    side = 1.0 if float(torch.rand(1, generator=gen)) < 0.5 else -1.0
    step = 0.5
    s = torch.arange(0.0, length + step, step)
    xs = start[0] + s * math.cos(a)
    ys = start[1] + s * math.sin(a)
    # The curl: an arc around a centre beside the wire's end, turning to
    # the chosen side from the wire's direction.
    ex, ey = float(xs[-1]), float(ys[-1])
    cx, cy = ex - side * radius * math.sin(a), ey + side * radius * math.cos(a)
    phi0 = math.atan2(ey - cy, ex - cx)
    ph = phi0 + side * torch.arange(0.0, turn, step / radius)
    xs = torch.cat([xs, cx + radius * torch.cos(ph)])
    ys = torch.cat([ys, cy + radius * torch.sin(ph)])
    return xs, ys


def _draw_hook(img, tool, xs, ys, width, grey, shine, tint):
    """Draws one hook into img (3xHxW, in place) over the bounding box of
    its path: a metal wire of the given width, shaded as a cylinder with a
    highlight along its middle, kept behind the labeled tool pixels."""
    _, h, w = img.shape
    m = width / 2 + 1
    x0, x1 = max(0, int(xs.min() - m)), min(w, int(xs.max() + m) + 1)
    y0, y1 = max(0, int(ys.min() - m)), min(h, int(ys.max() + m) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    gy, gx = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32) + 0.5,
                            torch.arange(x0, x1, dtype=torch.float32) + 0.5, indexing="ij")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    d = torch.cdist(pts, torch.stack([xs, ys], 1)).min(1).values.view(y1 - y0, x1 - x0)
    alpha = (width / 2 + 0.5 - d).clamp(0, 1) * (1 - tool[0, y0:y1, x0:x1])
    v = (d / (width / 2)).clamp(max=1.0)
    shade = grey * (0.6 + 0.4 * (1 - v * v).clamp(min=0).sqrt()) + shine * torch.exp(-(v / 0.35) ** 2)
    colour = (shade.unsqueeze(0) * tint.view(3, 1, 1)).clamp(0, 1).to(img.dtype)
    a = alpha.unsqueeze(0).to(img.dtype)
    box = img[:, y0:y1, x0:x1]
    img[:, y0:y1, x0:x1] = (1 - a) * box + a * colour


def hooks(img, mask, gen, prob=0.5, count=(1, 3), allowed=None):
    """Synthetic speculum hooks: with probability prob per sample, 1-3 thin
    curled metal wires (1.5-4.5 pixels wide at 288 rows, dark grey to
    bright steel) come in from the frame's edges. The cataract labels leave
    the retractor hooks out, and the training frames show few of them, so
    the model paints the validation case's hooks as tools. The mask is
    unchanged: the hooks are background, drawn behind the labeled tools.
    Call it after the geometric augmentation (a hook enters at the view's
    edge) and before the photometric one. allowed (bool, one per sample)
    keeps the others free of hooks."""
    n, _, h, w = img.shape
    pick = torch.rand(n, generator=gen) < prob
    if allowed is not None:
        pick = pick & allowed.to(pick.device)
    if not bool(pick.any()):
        return img
    out = img.clone()
    tool = mask.to(torch.float32).cpu()
    scale = h / 288
    for i in torch.nonzero(pick).flatten().tolist():
        k = int(torch.randint(count[0], count[1] + 1, (1,), generator=gen))
        one = out[i].cpu()
        for _ in range(k):
            xs, ys = _hook_path(gen, h, w)
            width = float(_u(gen, 1, 1.5, 4.5)) * scale
            grey = float(_u(gen, 1, 0.1, 0.55))
            shine = float(_u(gen, 1, 0.0, 0.45))
            tint = _u(gen, 3, 0.85, 1.0)
            _draw_hook(one, tool[i], xs, ys, width, grey, shine, tint)
        out[i] = one.to(out.device)
    return out
