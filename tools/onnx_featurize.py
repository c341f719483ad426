#!/usr/bin/env python3
"""ONNX Runtime running appraise's photo network, the peer `cargo bench --bench featurize`
is compared with (issue 37, BENCHMARKS.md "The photo network against ONNX Runtime").

Builds the ONNX graph of EfficientNet-Lite0 from appraise's own weights
(crates/appraise/assets/efficientnet-lite0.safetensors: BatchNorm folded, float16, cast to
float32 here), checks it against appraise's reference logits, then times it:

  1. the network alone, one thread, one photo at a time;
  2. the network alone, two threads, batches of 4;
  3. with APPRAISE_DATASET set: all photos of the Houses dataset cold (Pillow decode with
     JPEG draft scaling to the nearest size above 256, resize, centre crop), decoded on two
     threads and run in batches of 4 on two threads.

Needs numpy, onnx and onnxruntime (and Pillow for 3), in a virtual environment outside the
repository:

  python3 -m venv /tmp/ort && /tmp/ort/bin/pip install numpy onnx onnxruntime pillow
  /tmp/ort/bin/python tools/onnx_featurize.py
"""

import json
import os
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "crates/appraise/assets/efficientnet-lite0.safetensors"
INPUT = 224
# (repeats, kernel, stride, expansion), as efficientnet.rs lists them.
STAGES = [(1, 3, 1, 1), (2, 3, 2, 6), (2, 5, 2, 6), (3, 3, 2, 6), (3, 5, 1, 6), (4, 5, 2, 6), (1, 3, 1, 6)]
# Logits of classes 0, 660 and 999 for the pattern below (efficientnet.rs's test).
REFERENCE = {0: -1.6711, 660: -0.4878, 999: 3.3449}


def read_safetensors(path):
    """The float16 tensors of a safetensors file as float32 arrays (the format is a
    length-prefixed JSON header and raw little-endian data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F16", name
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f2").astype(np.float32).reshape(meta["shape"])
    return out


def same_pads(size, kernel, stride):
    """TensorFlow's "same" padding (the weights were trained with it): the extra row or
    column goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def build_graph(w):
    nodes, inits = [], []
    for name, value in w.items():
        inits.append(numpy_helper.from_array(value, name))
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "six"))
    size = [INPUT]

    def conv(x, name, kernel, stride, group, relu6):
        out, before, after = same_pads(size[0], kernel, stride)
        size[0] = out
        y = f"{name}.out"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.weight", f"{name}.bias"],
                [y],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],
                group=group,
            )
        )
        if relu6:
            nodes.append(helper.make_node("Clip", [y, "zero", "six"], [f"{y}.relu6"]))
            y = f"{y}.relu6"
        return y

    x = conv("image", "stem", 3, 2, 1, True)
    block = 0
    for repeats, kernel, stride, expansion in STAGES:
        for r in range(repeats):
            name = f"blocks.{block}"
            h = conv(x, f"{name}.expand", 1, 1, 1, True) if expansion != 1 else x
            channels = w[f"{name}.depthwise.weight"].shape[0]
            h = conv(h, f"{name}.depthwise", kernel, stride if r == 0 else 1, channels, True)
            h = conv(h, f"{name}.project", 1, 1, 1, False)
            if r > 0:
                nodes.append(helper.make_node("Add", [h, x], [f"{name}.sum"]))
                h = f"{name}.sum"
            x = h
            block += 1
    x = conv(x, "head", 1, 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1))
    nodes.append(helper.make_node("Gemm", ["embedding", "classifier.weight", "classifier.bias"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "efficientnet-lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, INPUT, INPUT])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 1280]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1000]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def pattern():
    c, y, x = np.meshgrid(np.arange(3), np.arange(INPUT), np.arange(INPUT), indexing="ij")
    return (((c * 7 + y * 3 + x) % 17) / 8.0 - 1.0).astype(np.float32)[None]


def per_photo(sess, batch, seconds=8.0):
    """Milliseconds per photo running batches of `batch` random photos for ~`seconds`."""
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, INPUT, INPUT)).astype(np.float32)
    for _ in range(3):
        sess.run(["embedding"], {"image": x})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(["embedding"], {"image": x})
        runs += 1
    return 1e3 * (time.perf_counter() - start) / (runs * batch)


def network_input(path):
    """As appraise prepares a photo: JPEG draft scaling to the nearest size whose shorter
    side is at least 256, shorter side resized to 256 (bilinear), centre 224 crop, (v - 127) / 128."""
    from PIL import Image

    img = Image.open(path)
    w, h = img.size
    scale = 256 / min(w, h)
    img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
    img = img.convert("RGB")
    w, h = img.size
    scale = 256 / min(w, h)
    rw, rh = max(INPUT, round(w * scale)), max(INPUT, round(h * scale))
    img = img.resize((rw, rh), Image.BILINEAR)
    left, top = (rw - INPUT) // 2, (rh - INPUT) // 2
    a = np.asarray(img.crop((left, top, left + INPUT, top + INPUT)), dtype=np.float32)
    return ((a - 127.0) / 128.0).transpose(2, 0, 1)


def all_photos(sess, dataset):
    paths = sorted(str(p) for p in Path(dataset).glob("*.jpg"))
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        inputs = pool.map(network_input, paths)
        batch, count = [], 0
        for x in inputs:
            batch.append(x)
            if len(batch) == 4:
                sess.run(["embedding"], {"image": np.stack(batch)})
                count, batch = count + 4, []
        if batch:
            sess.run(["embedding"], {"image": np.stack(batch)})
            count += len(batch)
    return count, time.perf_counter() - start


def main():
    model = build_graph(read_safetensors(WEIGHTS))
    one = session(model, 1)
    logits = one.run(["logits"], {"image": pattern()})[0][0]
    worst = max(abs(logits[k] - v) for k, v in REFERENCE.items())
    print(f"onnxruntime {ort.__version__}: reference logits within {worst:.1e}")
    if worst > 2e-3:
        sys.exit("the ONNX graph does not match appraise's network")
    print(f"network alone, one thread, batch 1: {per_photo(one, 1):.2f} ms a photo")
    two = session(model, 2)
    print(f"network alone, two threads, batches of 4: {per_photo(two, 4):.2f} ms a photo")
    dataset = os.environ.get("APPRAISE_DATASET")
    if dataset:
        count, wall = all_photos(two, dataset)
        print(f"all {count} photos cold, decode on two threads, batches of 4 on two threads: {wall:.1f} s")


if __name__ == "__main__":
    main()
