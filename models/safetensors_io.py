"""Reading and writing safetensors files without the safetensors package
(Debian 12 does not ship it). The layout is the published one: u64
little-endian header length, JSON header, raw little-endian data; the header
is padded with spaces to a multiple of 8 so every tensor stays aligned."""

import json
import struct

import numpy as np
import torch

_DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16),
       torch.float64: ("F64", np.float64), torch.int64: ("I64", np.int64),
       torch.int32: ("I32", np.int32), torch.uint8: ("U8", np.uint8),
       torch.int8: ("I8", np.int8), torch.bool: ("BOOL", np.bool_)}
_NP = {name: npt for name, npt in _DT.values()}


def save_file(tensors, path, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        dt, npt = _DT[t.dtype]
        raw = t.numpy().astype(npt, copy=False).astype(np.dtype(npt).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_file(path):
    """-> (dict name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=np.dtype(_NP[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(_NP[info["dtype"]]).reshape(info["shape"]).copy())
    return out, meta
