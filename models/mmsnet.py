"""PyTorch definitions of the networks mmsd runs: the reference for the C engine.

Two architectures, both U-Nets of the MMS family (Lou et al., IEEE TMI 2023):

* ``res2net-unet`` -- the paper's network: a Res2Net-v1b encoder (stem and
  layers 1-3) and a six-block decoder. Module and parameter names are exactly
  those of the official code's ``preUnet`` (``resnet.conv1.0.weight``,
  ``conv_up_1.conv1.weight``, ``final.bias``...), so an official checkpoint's
  state_dict loads unchanged. ``mms-res2net101`` is the paper's configuration.
* ``mms-rt`` -- the real-time network: a small ResNet-D style encoder with
  basic residual blocks, skip concatenations and conv3x3+BN+LeakyReLU decoder
  blocks, bilinear align_corners=True upsampling, one logit channel.

The architecture parameters travel in the safetensors ``__metadata__`` as
strings (see ``card_metadata``); the C side (core/arch) reads the same keys.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PAPER = dict(layers=[3, 4, 23], base_width=26, scale=4,
             decoder=[1024, 512, 256, 64], leaky_slope=0.01)
RT_DEFAULT = dict(widths=[16, 32, 64, 128, 256], blocks=[1, 1, 2, 1],
                  decoder=[96, 48, 32, 16], leaky_slope=0.01)


def up2(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- paper network

class Bottle2neck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None,
                 base_width=26, scale=4, stype="normal"):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64.0)))
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.nums = 1 if scale == 1 else scale - 1
        if stype == "stage":
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1)
        self.convs = nn.ModuleList(
            [nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(self.nums)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(self.nums)])
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stype = stype
        self.scale = scale
        self.width = width

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        for i in range(self.nums):
            sp = spx[i] if i == 0 or self.stype == "stage" else sp + spx[i]
            sp = self.relu(self.bns[i](self.convs[i](sp)))
            out = sp if i == 0 else torch.cat((out, sp), 1)
        if self.scale != 1 and self.stype == "normal":
            out = torch.cat((out, spx[self.nums]), 1)
        elif self.scale != 1 and self.stype == "stage":
            out = torch.cat((out, self.pool(spx[self.nums])), 1)
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class Res2NetEncoder(nn.Module):
    """Res2Net-v1b without layer4/fc: the part of the backbone preUnet runs."""

    def __init__(self, layers, base_width, scale):
        super().__init__()
        self.inplanes = 64
        self.base_width, self.scale = base_width, scale
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(self.inplanes, planes * 4, 1, bias=False),
                nn.BatchNorm2d(planes * 4))
        layers = [Bottle2neck(self.inplanes, planes, stride, downsample, self.base_width,
                              self.scale, "stage")]
        self.inplanes = planes * 4
        layers += [Bottle2neck(self.inplanes, planes, base_width=self.base_width,
                               scale=self.scale) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


class ConvBlock(nn.Module):
    """conv3x3+BN+LeakyReLU, twice (the official CONV_Block)."""

    def __init__(self, cin, cmid, cout, slope=0.01):
        super().__init__()
        self.relu = nn.LeakyReLU(slope)
        self.conv1 = nn.Conv2d(cin, cmid, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cmid)
        self.conv2 = nn.Conv2d(cmid, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class Res2NetUNet(nn.Module):
    """The paper's preUnet, parameterised; PAPER is the published configuration."""

    def __init__(self, layers=PAPER["layers"], base_width=26, scale=4,
                 decoder=PAPER["decoder"], leaky_slope=0.01):
        super().__init__()
        self.resnet = Res2NetEncoder(layers, base_width, scale)
        d0, d1, d2, d3 = decoder
        c0, c1, c2, c3 = 64, 256, 512, 1024
        self.conv_up_1 = ConvBlock(c3, d0, d1, leaky_slope)
        self.conv_up_2 = ConvBlock(c2 + d1, d1, d1, leaky_slope)
        self.conv_up_3 = ConvBlock(d1, d1, d2, leaky_slope)
        self.conv_up_4 = ConvBlock(c1 + d2, d2, d2, leaky_slope)
        self.conv_up_5 = ConvBlock(d2, d2, d3, leaky_slope)
        self.conv_up_6 = ConvBlock(c0 + d3, d3, d3, leaky_slope)
        self.final = nn.Conv2d(d3, 1, 1)

    def forward(self, x):
        r = self.resnet
        x = r.relu(r.bn1(r.conv1(x)))
        x1 = r.layer1(r.maxpool(x))
        x2 = r.layer2(x1)
        x3 = r.layer3(x2)
        y = self.conv_up_2(torch.cat([x2, self.conv_up_1(up2(x3))], 1))
        y = self.conv_up_4(torch.cat([x1, self.conv_up_3(up2(y))], 1))
        y = self.conv_up_6(torch.cat([x, self.conv_up_5(up2(y))], 1))
        return self.final(up2(y))


# ------------------------------------------------------------ real-time network

class BasicBlock(nn.Module):
    """ResNet basic block; the shortcut averages before its 1x1 conv (ResNet-D),
    as Res2Net-v1b does, so striding never drops three quarters of the input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class GlobalContext(nn.Module):
    """The image's mean feature, through a small MLP, added to every position
    of the bottleneck: a large shaft seen in patches gets a say from the
    whole frame (PSPNet's global bin). The last conv starts at zero, so a
    network grown with it computes what it computed before."""

    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        g = x.mean((2, 3), keepdim=True)
        return x + self.fc2(F.relu(self.fc1(g)))


class MMSRT(nn.Module):
    def __init__(self, widths=RT_DEFAULT["widths"], blocks=RT_DEFAULT["blocks"],
                 decoder=RT_DEFAULT["decoder"], leaky_slope=0.01, context="none"):
        super().__init__()
        if context not in ("none", "gap"):
            raise ValueError(f"mms-rt: unknown context {context!r} (none or gap)")
        c0 = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
            nn.Conv2d(c0, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], c0
        for i, (c, n) in enumerate(zip(widths[1:], blocks)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(cin, c, stride)] + [BasicBlock(c, c, 1) for _ in range(1, n)]
            stages.append(nn.Sequential(*stage))
            cin = c
        self.layers = nn.ModuleList(stages)
        self.ctx = GlobalContext(cin) if context == "gap" else None
        dec, y = [], cin
        for skip, d in zip(reversed(widths[:-1]), decoder):
            dec.append(ConvBlock(skip + y, d, d, leaky_slope))
            y = d
        self.dec = nn.ModuleList(dec)
        self.final = nn.Conv2d(y, 1, 1)

    def forward(self, x):
        x = self.stem(x)
        skips = [x]
        x = self.pool(x)
        for stage in self.layers:
            x = stage(x)
            skips.append(x)
        y = skips.pop()
        if self.ctx is not None:
            y = self.ctx(y)
        for block in self.dec:
            y = block(torch.cat([skips.pop(), up2(y)], 1))
        # A 1x1 conv commutes with bilinear upsampling (both linear, the
        # interpolation weights sum to one), so the last x2 runs on one channel.
        return up2(self.final(y))


# ------------------------------------------------------------------- model card

def _ints(s):
    return [int(v) for v in s.split(",")]


def _csv(v):
    return ",".join(str(x) for x in v)


def build(arch, meta=None):
    """Network for an architecture name and its card metadata (strings)."""
    meta = meta or {}
    if arch == "mms-res2net101":
        return Res2NetUNet(**PAPER)
    if arch == "res2net-unet":
        return Res2NetUNet(layers=_ints(meta.get("mms.layers", _csv(PAPER["layers"]))),
                           base_width=int(meta.get("mms.base_width", 26)),
                           scale=int(meta.get("mms.scale", 4)),
                           decoder=_ints(meta.get("mms.decoder", _csv(PAPER["decoder"]))),
                           leaky_slope=float(meta.get("mms.leaky_slope", 0.01)))
    if arch == "mms-rt":
        return MMSRT(widths=_ints(meta.get("mms.widths", _csv(RT_DEFAULT["widths"]))),
                     blocks=_ints(meta.get("mms.blocks", _csv(RT_DEFAULT["blocks"]))),
                     decoder=_ints(meta.get("mms.decoder", _csv(RT_DEFAULT["decoder"]))),
                     leaky_slope=float(meta.get("mms.leaky_slope", 0.01)),
                     context=meta.get("mms.context", "none"))
    raise ValueError(f"unknown architecture {arch!r}")


def card_metadata(arch, params=None, input_hw=(288, 512), mean=(0.485, 0.456, 0.406),
                  std=(0.229, 0.224, 0.225), threshold=0.5, extra=None):
    """The __metadata__ the C engine requires, every value a string."""
    meta = {"mms.arch": arch, "mms.input": f"{input_hw[0]}x{input_hw[1]}",
            "mms.mean": _csv(mean), "mms.std": _csv(std), "mms.threshold": str(threshold)}
    for k, v in (params or {}).items():
        meta["mms." + k] = _csv(v) if isinstance(v, (list, tuple)) else str(v)
    meta.update(extra or {})
    return meta


# -------------------------------------------------------- pre/post-processing

def preprocess(rgb_u8, hw, mean, std):
    """HxWx3 uint8 tensor -> 1x3xhxw float, the convention of core/prepost.h."""
    x = rgb_u8.permute(2, 0, 1).unsqueeze(0).float()
    if tuple(x.shape[2:]) != tuple(hw):
        x = F.interpolate(x, size=tuple(hw), mode="bilinear", align_corners=False)
    x = x / 255.0
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def postprocess(logits, hw, threshold):
    """1x1xhxw logits -> HxW bool mask at the frame size."""
    if tuple(logits.shape[2:]) != tuple(hw):
        logits = F.interpolate(logits, size=tuple(hw), mode="bilinear", align_corners=False)
    return torch.sigmoid(logits)[0, 0] > threshold


def segment(model, meta, rgb_u8, flip=False):
    """HxWx3 uint8 tensor -> HxW bool mask, by the model file's card
    (input size, mean, std, threshold): the engine's whole path. flip: the
    engine's --tta flip, the mean of the frame's logits and its mirror's."""
    hw = tuple(int(v) for v in meta["mms.input"].lower().split("x"))
    mean = [float(v) for v in meta["mms.mean"].split(",")]
    std = [float(v) for v in meta["mms.std"].split(",")]
    with torch.no_grad():
        x = preprocess(rgb_u8, hw, mean, std)
        logits = model(x)
        if flip:
            logits = (logits + model(x.flip(3)).flip(3)) / 2
    return postprocess(logits, tuple(rgb_u8.shape[:2]), float(meta["mms.threshold"]))


def macs(model, hw):
    """Multiply-accumulates of every convolution for one frame."""
    total = [0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += out.numel() * (mod.in_channels // mod.groups) * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *hw))
    for h in hs:
        h.remove()
    return total[0]
