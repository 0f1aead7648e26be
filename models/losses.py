"""The four losses of MMS (Lou et al., IEEE TMI 2023) and the small heads
they run on.

  (1) structure loss: boundary-weighted BCE + weighted IoU (the PraNet
      structure loss), weight 1 + 5|avgpool31(mask) - mask|;
  (2) unlabeled consistency: each network's prediction against the other's
      detached prediction, with the same structure loss on soft targets;
  (3) pixel-wise InfoNCE (temperature 0.07) between the projector features
      P1, P2 of the two unlabeled predictions: a pixel's positive is the same
      pixel in the other network's map, its negatives the other pixels of the
      same image (the "max similarity" on unlabeled data);
  (4) the all-negative contrastive loss between the classifier features C1, C2
      of the labeled predictions: the positive logit is replaced by 0, so
      every pixel pair across the two networks is pushed apart (the "min
      similarity" on labeled data, keeping the two networks different).

Differences from the official code, on purpose: the structure loss takes
logits for the BCE and probabilities for the IoU (the official loss.py feeds
probabilities to BCE-with-logits); the consistency loss carries gradients (the
official loss_diff returns a Python float, so it trains nothing); features are
L2-normalised (cosine similarity, the usual InfoNCE; the official code uses an
L1 norm); both contrastive losses are symmetric (q from P1 against detached P2,
and the reverse); pixels are subsampled (at most `pixels` per image) so that
the similarity matrices stay small on a CPU.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------- heads

class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Projector(nn.Module):
    """P: 1-channel logit map -> 16-d features at 1/4 resolution."""

    def __init__(self, ndf=8):
        super().__init__()
        self.c1, self.c2 = _ConvBNReLU(1, ndf), _ConvBNReLU(ndf, 2 * ndf)
        self.out = nn.Conv2d(2 * ndf, 2 * ndf, 1)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2)
        x = F.max_pool2d(self.c2(x), 2)
        return self.out(x)


class Classifier(nn.Module):
    """C: 1-channel logit map -> 32-d features at 1/8 resolution."""

    def __init__(self, ndf=8):
        super().__init__()
        self.c1, self.c2 = _ConvBNReLU(1, ndf), _ConvBNReLU(ndf, 2 * ndf)
        self.c3 = _ConvBNReLU(2 * ndf, 4 * ndf)
        self.out = nn.Conv2d(4 * ndf, 4 * ndf, 1)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2)
        x = F.max_pool2d(self.c2(x), 2)
        x = F.max_pool2d(self.c3(x), 2)
        return self.out(x)


# ------------------------------------------------------------------ losses

def boundary_kernel(h):
    """The 31-pixel window of the structure loss is defined at 288 rows; keep
    the same fraction of the frame at other sizes (odd, >= 3)."""
    k = int(round(31 * h / 288.0))
    return max(3, k | 1)


def structure_loss(logits, target, valid=None, kernel=None, fp_weight=None):
    """Weighted BCE + weighted IoU, averaged over the batch. target may be soft
    (0-1). valid (same shape, 0/1) excludes pixels from both terms.
    fp_weight (one value A per image, or None) turns the IoU term into a
    Tversky term, TP / (TP + A FP + (2 - A) FN): A = 1 is the IoU, A > 1
    costs false tool more than missed tool (Salehi et al., MLMI 2017)."""
    k = kernel or boundary_kernel(logits.shape[2])
    weit = 1 + 5 * torch.abs(F.avg_pool2d(target, k, stride=1, padding=k // 2) - target)
    if valid is not None:
        weit = weit * valid
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    wbce = (weit * bce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3)).clamp_min(1e-6)
    pred = torch.sigmoid(logits)
    inter = (pred * target * weit).sum(dim=(2, 3))
    union = ((pred + target) * weit).sum(dim=(2, 3))
    if fp_weight is None:
        wiou = 1 - (inter + 1) / (union - inter + 1)
    else:
        a = fp_weight.to(device=logits.device, dtype=logits.dtype).view(-1, 1)
        fp = (pred * (1 - target) * weit).sum(dim=(2, 3))
        fn = ((1 - pred) * target * weit).sum(dim=(2, 3))
        wiou = 1 - (inter + 1) / (inter + a * fp + (2 - a) * fn + 1)
    return (wbce + wiou).mean()


def lovasz_hinge(logits, target, valid=None):
    """The Lovasz hinge (Berman et al., CVPR 2018), per image, averaged: the
    hinge errors sorted worst first, weighted by the gradient of the Jaccard
    loss's Lovasz extension. Its minimum is the image's IoU, not a pixel
    average, so a frame whose few tool pixels are wrong costs as much as one
    with many. target is thresholded at 0.5; pixels with valid == 0 never
    count."""
    out = []
    for i in range(logits.shape[0]):
        z, t = logits[i].flatten(), (target[i].flatten() > 0.5).to(logits.dtype)
        if valid is not None:
            keep = valid[i].flatten() > 0
            z, t = z[keep], t[keep]
        if z.numel() == 0:
            out.append(logits.sum() * 0)
            continue
        err = 1 - z * (2 * t - 1)
        err, order = torch.sort(err, descending=True)
        ts = t[order]
        gts = ts.sum()
        inter = gts - ts.cumsum(0)
        union = gts + (1 - ts).cumsum(0)
        jac = 1 - inter / union
        jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
        out.append(torch.dot(F.relu(err), jac))
    return torch.stack(out).mean()


def hard_pixel_bce(logits, target, frac, valid=None):
    """BCE over each image's `frac` highest-loss pixels (online hard example
    mining, Shrivastava et al., CVPR 2016). The structure loss averages over
    every pixel, where a painted hook or a missed instrument tip is a few
    hundred pixels among a hundred thousand easy ones; this term is those
    pixels' alone. Pixels with valid == 0 never count."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if valid is not None:
        bce = bce * valid
    flat = bce.flatten(1)
    k = max(1, int(round(frac * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean()


def _soft_erode(x):
    return torch.min(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def _soft_open(x):
    return F.max_pool2d(_soft_erode(x), 3, 1, 1)


def soft_skeleton(x, iters=10):
    """Differentiable skeleton of a 0-1 map (Shit et al., clDice, CVPR 2021):
    what each erosion step removes that an opening would not put back. iters
    bounds the half-width it thins, in pixels."""
    skel = F.relu(x - _soft_open(x))
    for _ in range(iters):
        x = _soft_erode(x)
        delta = F.relu(x - _soft_open(x))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def cldice_loss(logits, target, valid=None, iters=10):
    """1 - clDice: how much of each skeleton lies inside the other mask. A
    thin instrument end that the prediction leaves out costs its whole length
    here, where Dice and IoU count only its few pixels."""
    pred = torch.sigmoid(logits)
    if valid is not None:
        pred, target = pred * valid, target * valid
    sp, st = soft_skeleton(pred, iters), soft_skeleton(target, iters)
    tprec = ((sp * target).sum(dim=(2, 3)) + 1) / (sp.sum(dim=(2, 3)) + 1)
    tsens = ((st * pred).sum(dim=(2, 3)) + 1) / (st.sum(dim=(2, 3)) + 1)
    return (1 - 2 * tprec * tsens / (tprec + tsens)).mean()


def consistency_loss(z1, z2, kernel=None):
    """Each network's unlabeled prediction against the other's, detached."""
    p1, p2 = torch.sigmoid(z1).detach(), torch.sigmoid(z2).detach()
    return structure_loss(z1, p2, kernel=kernel) + structure_loss(z2, p1, kernel=kernel)


def _sample(f, idx):
    """BxCxhxw -> BxSxC at the flat pixel indices idx (S,), L2-normalised."""
    b, c = f.shape[:2]
    f = f.reshape(b, c, -1)
    if idx is not None:
        f = f[:, :, idx]
    return F.normalize(f.transpose(1, 2), dim=-1)


def _pixel_idx(f, pixels, gen):
    n = f.shape[2] * f.shape[3]
    if pixels is None or n <= pixels:
        return None
    return torch.randperm(n, generator=gen)[:pixels].to(f.device)


def _nce(q, k, tau, positive):
    """q, k: BxSxC normalised; k is a target (detached). Row i's candidates are
    k_j for all j; with positive, j = i is the positive; without, the
    positive logit is a constant 0 and j = i is left out."""
    b, s, _ = q.shape
    sim = torch.bmm(q, k.transpose(1, 2)) / tau                    # B x S x S
    if positive:
        target = torch.arange(s, device=q.device).repeat(b)
        return F.cross_entropy(sim.reshape(b * s, s), target)
    eye = torch.eye(s, dtype=torch.bool, device=q.device).unsqueeze(0)
    sim = sim.masked_fill(eye, float("-inf"))
    logits = torch.cat([torch.zeros(b, s, 1, device=q.device), sim], 2).reshape(b * s, s + 1)
    return F.cross_entropy(logits, torch.zeros(b * s, dtype=torch.long, device=q.device))


def pixel_infonce(f1, f2, tau=0.07, pixels=1024, gen=None):
    """(3): same pixel in the other network's map = positive, the image's
    other pixels = negatives. Symmetric, each side against a detached target."""
    idx = _pixel_idx(f1, pixels, gen)
    q1, q2 = _sample(f1, idx), _sample(f2, idx)
    return 0.5 * (_nce(q1, q2.detach(), tau, True) + _nce(q2, q1.detach(), tau, True))


def all_negative(f1, f2, tau=0.07, pixels=1024, gen=None):
    """(4): the positive logit replaced by 0, every other pixel of the other
    network's map a negative. Symmetric, each side against a detached target."""
    idx = _pixel_idx(f1, pixels, gen)
    q1, q2 = _sample(f1, idx), _sample(f2, idx)
    return 0.5 * (_nce(q1, q2.detach(), tau, False) + _nce(q2, q1.detach(), tau, False))


def dice(pred_bool, gt_bool):
    """Dice of two bool masks; 1 when both are empty."""
    inter = (pred_bool & gt_bool).sum().item()
    s = pred_bool.sum().item() + gt_bool.sum().item()
    return 1.0 if s == 0 else 2.0 * inter / s
