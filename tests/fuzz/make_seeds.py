#!/usr/bin/env python3
"""Regenerates the hand-made seeds of corpus/<target>/ (the fixture copies are
made by hand once: see README.md, "Fuzzing"). Standard library only."""
import io
import os
import struct
import sys
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "shared", "fixtures")


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(descr, shape, payload, fortran=False, version=1):
    shp = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shp)
    pre = 10 if version == 1 else 12
    total = (pre + len(h) + 1 + 63) // 64 * 64
    h = h + " " * (total - pre - len(h) - 1) + "\n"
    head = b"\x93NUMPY" + bytes([version, 0])
    head += struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return head + h.encode() + payload


def npz(members, deflate):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


def zipped(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return b.getvalue()


def u(s):  # BINUNICODE
    s = s.encode()
    return b"X" + struct.pack("<I", len(s)) + s


def tensor_pickle(numel, offset, shape, stride, cls="FloatStorage", key="0"):
    """What torch.save writes for one tensor (protocol 2)."""
    ints = lambda xs: b"(" + b"".join(b"J" + struct.pack("<i", x) for x in xs) + b"t"
    return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((" + u("storage") + b"ctorch\n" + cls.encode() +
            b"\nq\x01" + u(key) + u("cpu") + b"J" + struct.pack("<i", numel) + b"tq\x02Q" + b"J" +
            struct.pack("<i", offset) + ints(shape) + ints(stride) + b"\x89ccollections\nOrderedDict\nq\x03)Rq\x04tq\x05Rq\x06.")


def state_dict(items):
    out = b"\x80\x02ccollections\nOrderedDict\n)R(" if items else b"\x80\x02}("
    for k, pk in items:
        body = pk[2:-1]  # the tensor without PROTO and STOP
        out += u(k) + body
    return out + b"u."


f32 = lambda xs: struct.pack("<%df" % len(xs), *xs)

# npy: every dtype, Fortran order, big-endian, version 2, 0-d and empty arrays
npys = {
    "f4.npy": npy("<f4", (2, 3), f32([1, 2, 3, 4, 5, 6])),
    "f4-fortran.npy": npy("<f4", (2, 3), f32([1, 4, 2, 5, 3, 6]), fortran=True),
    "f8-big.npy": npy(">f8", (2,), struct.pack(">2d", 1.5, -2)),
    "f2.npy": npy("<f2", (3,), struct.pack("<3e", 1, 2, 3)),
    "i8-v2.npy": npy("<i8", (1, 1, 2), struct.pack("<2q", 7, -7), version=2),
    "u1.npy": npy("|u1", (4,), b"\x00\x01\xfe\xff"),
    "b1.npy": npy("|b1", (2,), b"\x00\x01"),
    "scalar.npy": npy("<i4", (), struct.pack("<i", 42)),
    "empty.npy": npy("<f4", (0, 5), b""),
}
for n, d in npys.items():
    put("npy", n, d)
put("npz", "small-stored.npz", npz([(n, d) for n, d in npys.items()], False))
put("npz", "small-deflated.npz", npz([(n, d) for n, d in list(npys.items())[:4]], True))

# pickles: one tensor, a view with an offset, a transpose, a 0-d tensor, a nested state dict
t = tensor_pickle(6, 0, (2, 3), (3, 1))
pickles = {
    "tensor.pkl": t,
    "offset.pkl": tensor_pickle(8, 2, (2, 3), (3, 1)),
    "transpose.pkl": tensor_pickle(6, 0, (3, 2), (1, 3)),
    "scalar.pkl": tensor_pickle(1, 0, (), ()),
    "half.pkl": tensor_pickle(4, 0, (4,), (1,), cls="HalfStorage"),
    "short-storage.pkl": tensor_pickle(4, 0, (4,), (1,), key="short"),
    "state-dict.pkl": state_dict([("a.weight", t), ("b.bias", tensor_pickle(3, 0, (3,), (1,), key="1"))]),
}
for n, d in pickles.items():
    put("pickle", n, d)

# a small checkpoint: <archive>/data.pkl, data/0, version
put("torch", "small.pt", zipped([("archive/data.pkl", t), ("archive/data/0", f32([1, 2, 3, 4, 5, 6])),
                                  ("archive/version", b"3\n")]))

# voices: one deflated npz voice (zeros compress well), plus the fixtures' .pt and raw .bin
put("voices", "one-voice.npz", npz([("af_zero.npy", npy("<f4", (510, 1, 256), bytes(510 * 256 * 4)))], True))

# config: the published one and small variants
cfg_path = os.path.join(fixtures, "kokoro-config.json")
if os.path.exists(cfg_path):
    cfg = open(cfg_path, "rb").read()
    put("config", "kokoro-config.json", cfg)
put("config", "minimal.json", b'{"n_token": 178, "vocab": {"a": 1, "\\u0251": 2}}')
put("config", "nested.json", b'{"plbert": {"hidden_size": 768}, "istftnet": {"upsample_rates": [10, 6]}}')
