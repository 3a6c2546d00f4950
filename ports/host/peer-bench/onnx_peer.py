#!/usr/bin/env python3
"""Lichen's inference path side by side with ONNX Runtime, on the same frames, single-threaded.

Usage (from the repository root, after `swift build -c release`):

    python3 ports/host/peer-bench/onnx_peer.py --model models/fmnist-cnn/fmnist-cnn-f32.gguf \
        --worker-binary .build/release/lichen-infer-worker [--lichen .build/release/lichen] \
        [--frames 256] [--rounds 20] [--block 16] [--json]

What it does, in one run:

1. Reads the f32 GGUF (the `gguf` package): the layer list from the `lichen.layer.<i>.*` keys
   and the weights, and builds the same network as an ONNX graph (opset 17; batch norm as
   BatchNormalization with the running statistics, i.e. inference mode). ONNX Runtime's dynamic
   int8 variant is `onnxruntime.quantization.quantize_dynamic` of that graph (weights int8,
   activations quantized per call).
2. Takes the first N Fashion-MNIST test images (Debian's dataset-fashion-mnist, scaled to
   [0, 1]; random frames if the files are missing) as one f32 frame file.
3. Starts one worker process per contender, so each has its own peak RSS: ONNX Runtime F32 and
   int8 (this script with --worker; it imports only numpy and onnxruntime, one intra-op and one
   inter-op thread, sequential execution, all graph optimisations), and Lichen F32, Q8_0 and
   Q4_0, one variant per process: it loads the model, writes its logits for every frame, then
   times frames on request. The Lichen worker is `lichen-infer-worker` (--worker-binary: an
   executable over the core alone, as a robot's control binary links it) and / or the CLI's
   `lichen bench infer --serve` (--lichen; rows marked "(CLI)"); both run the same
   `InferenceModel` at batch 1 and speak the same protocol. Each worker first writes its logits
   for all frames; the script compares them (maximum absolute difference against ONNX Runtime
   F32, next to the range of ONNX Runtime's logits).
4. Times the contenders alternately: in each round every worker, in an order rotated per round,
   runs the next `--block` frames one at a time (batch 1) and reports each frame's latency,
   measured inside the worker around the inference call only (Lichen: `forward` on a frame
   already in memory; ONNX Runtime: `InferenceSession.run` on a numpy frame, which includes the
   Python binding's call overhead, as any Python caller of ONNX Runtime pays it). Process
   start-up and model loading are not timed.
5. Reads each worker's peak RSS (VmHWM in /proc/PID/status) after the timing and prints the
   ratio table (p50 and p99 per frame, ratios against ONNX Runtime F32 and int8, peak RSS and
   its ratio against ONNX Runtime F32's process).

Requires numpy, gguf, onnx, onnxruntime (ports/host/setup installs them).
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

FMNIST_IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


# ---------------------------------------------------------------- worker (ONNX Runtime)

def ort_worker(model_path, frames_path, outputs_path):
    """Loads one ONNX model single-threaded, writes its logits for every frame, then serves
    `run START COUNT` (replies with the per-frame latencies in nanoseconds) until `quit`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    shape = [d for d in sess.get_inputs()[0].shape[1:]]
    frames = np.fromfile(frames_path, dtype="<f4").reshape([-1] + shape)
    outs = [sess.run(None, {name: frames[i:i + 1]})[0] for i in range(len(frames))]
    np.concatenate(outs).astype("<f4").tofile(outputs_path)
    print("ready", flush=True)
    clock = time.perf_counter_ns
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        start, count = int(words[1]), int(words[2])
        lat = []
        for j in range(count):
            x = frames[(start + j) % len(frames)][None]
            t0 = clock()
            sess.run(None, {name: x})
            lat.append(clock() - t0)
        print(" ".join(map(str, lat)), flush=True)


# ---------------------------------------------------------------- GGUF -> ONNX

def read_model(path):
    """The layer list and f32 weights of a Lichen GGUF model file."""
    import gguf

    r = gguf.GGUFReader(path)

    def field(key):
        f = r.fields.get(key)
        if f is None:
            return None
        if f.types and f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode()
        vals = [f.parts[i].tolist() for i in f.data]
        vals = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in vals]
        return vals

    input_shape = [int(v) for v in field("lichen.input_shape")]
    layers = []
    i = 0
    while field(f"lichen.layer.{i}.kind") is not None:
        layer = {"kind": field(f"lichen.layer.{i}.kind"), "name": field(f"lichen.layer.{i}.name")}
        for key in ("inputs", "outputs", "kernel", "stride", "padding", "dilation", "groups", "bias", "epsilon"):
            v = field(f"lichen.layer.{i}.{key}")
            if v is not None:
                layer[key] = v
        layers.append(layer)
        i += 1
    weights = {}
    for t in r.tensors:
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise SystemExit(f"{path}: tensor {t.name} is {t.tensor_type.name}; give the f32 model")
        weights[t.name] = np.array(t.data, dtype=np.float32).reshape(t.data.shape)
    return input_shape, layers, weights


def scalar(v):
    return v[0] if isinstance(v, list) else v


def pair(v, default):
    if v is None:
        return [default, default]
    v = list(v) if isinstance(v, list) else [v]
    return v * 2 if len(v) == 1 else v[:2]


def build_onnx(input_shape, layers, weights):
    """The same network as an ONNX graph (opset 17), input "x" [batch, *input_shape]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def out_name(index):
        return "x" if index < 0 else f"y{index}"

    for i, L in enumerate(layers):
        kind, name = L["kind"], L["name"]
        ins = [out_name(int(j)) for j in (L["inputs"] if isinstance(L["inputs"], list) else [L["inputs"]])]
        y = out_name(i)
        if kind in ("conv2d", "conv1d"):
            w = weights[name + ".weight"]
            conv_inputs = [ins[0], init(name + ".weight", w)]
            if name + ".bias" in weights:
                conv_inputs.append(init(name + ".bias", weights[name + ".bias"]))
            if kind == "conv2d":
                k, s, p, d = pair(L.get("kernel"), 1), pair(L.get("stride"), 1), pair(L.get("padding"), 0), pair(L.get("dilation"), 1)
            else:
                k, s, p, d = [pair(L.get(a), dv)[0:1] for a, dv in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1))]
            nodes.append(helper.make_node("Conv", conv_inputs, [y], kernel_shape=k, strides=s, pads=p + p, dilations=d,
                                          group=int(scalar(L.get("groups", 1)))))
        elif kind == "batch_norm":
            args = [init(f"{name}.{s}", weights[f"{name}.{s}"]) for s in ("weight", "bias", "running_mean", "running_var")]
            nodes.append(helper.make_node("BatchNormalization", [ins[0]] + args, [y], epsilon=float(scalar(L.get("epsilon", 1e-5)))))
        elif kind in ("relu", "tanh"):
            nodes.append(helper.make_node({"relu": "Relu", "tanh": "Tanh"}[kind], ins, [y]))
        elif kind in ("max_pool2d", "avg_pool2d"):
            k, s, p = pair(L.get("kernel"), 1), pair(L.get("stride"), 1), pair(L.get("padding"), 0)
            op = "MaxPool" if kind == "max_pool2d" else "AveragePool"
            extra = {} if op == "MaxPool" else {"count_include_pad": 1}
            nodes.append(helper.make_node(op, ins, [y], kernel_shape=k, strides=s, pads=p + p, **extra))
        elif kind == "global_avg_pool":
            g = y + "_g"
            nodes.append(helper.make_node("GlobalAveragePool", ins, [g]))
            nodes.append(helper.make_node("Flatten", [g], [y], axis=1))
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", ins, [y], axis=1))
        elif kind == "linear":
            args = [ins[0], init(name + ".weight", weights[name + ".weight"])]
            if name + ".bias" in weights:
                args.append(init(name + ".bias", weights[name + ".bias"]))
            nodes.append(helper.make_node("Gemm", args, [y], transB=1))
        elif kind == "add":
            nodes.append(helper.make_node("Add", ins, [y]))
        elif kind == "softmax":
            nodes.append(helper.make_node("Softmax", ins, [y], axis=-1))
        else:
            raise SystemExit(f"layer {name}: kind {kind} has no ONNX translation here")
    graph = helper.make_graph(nodes, "lichen", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + input_shape)],
                              [helper.make_tensor_value_info(out_name(len(layers) - 1), TensorProto.FLOAT, ["N", None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def fmnist_frames(n, shape, seed):
    count = int(np.prod(shape))
    if os.path.exists(FMNIST_IMAGES) and count == 784:
        with gzip.open(FMNIST_IMAGES, "rb") as f:
            magic, total, rows, cols = struct.unpack(">IIII", f.read(16))
            data = np.frombuffer(f.read(min(n, total) * rows * cols), dtype=np.uint8)
        frames = data.astype(np.float32) / 255.0
        return frames.reshape([-1] + shape), "Fashion-MNIST test images"
    rng = np.random.default_rng(seed)
    return rng.random([n] + shape, dtype=np.float32), "uniform random frames"


# ---------------------------------------------------------------- driver

class Worker:
    def __init__(self, label, argv):
        self.label = label
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.latencies = []

    def wait_ready(self):
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"{self.label}: worker did not start (said {line!r})")

    def run(self, start, count):
        self.proc.stdin.write(f"run {start} {count}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        values = [int(v) for v in line.split()]
        if len(values) != count:
            raise SystemExit(f"{self.label}: expected {count} latencies, got {line!r}")
        self.latencies.extend(values)

    def peak_rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


def percentile(values, q):
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(v[min(len(v) - 1, int(np.ceil(q * len(v))) - 1)])


def sibling(path, suffix):
    base = os.path.basename(path)
    for tag in ("-f32.gguf", "-q8_0.gguf", "-q4_0.gguf"):
        if base.endswith(tag):
            candidate = os.path.join(os.path.dirname(path), base[: -len(tag)] + suffix)
            return candidate if os.path.exists(candidate) else None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="the f32 GGUF (its -q8_0 / -q4_0 siblings are found by name)")
    ap.add_argument("--worker-binary", help="lichen-infer-worker (a release build): the lean Lichen worker")
    ap.add_argument("--lichen", help="the lichen CLI (a release build): its `bench infer --serve` as a worker too")
    ap.add_argument("--frames", type=int, default=256, help="frames (Fashion-MNIST test images)")
    ap.add_argument("--rounds", type=int, default=20, help="rounds of alternation")
    ap.add_argument("--block", type=int, default=16, help="frames each contender runs per turn")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--worker", nargs=3, metavar=("ONNX", "FRAMES", "OUTPUTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        ort_worker(*args.worker)
        return
    if not args.model:
        ap.error("--model is required")
    if not args.worker_binary and not args.lichen:
        ap.error("give --worker-binary, --lichen or both")

    from onnxruntime.quantization import QuantType, quantize_dynamic
    import onnx

    log = lambda m: print("peer-bench: " + m, file=sys.stderr, flush=True)
    input_shape, layers, weights = read_model(args.model)
    tmp = tempfile.mkdtemp(prefix="lichen-peer-")
    f32_path, int8_path = os.path.join(tmp, "model-f32.onnx"), os.path.join(tmp, "model-int8.onnx")
    onnx.save(build_onnx(input_shape, layers, weights), f32_path)
    quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8)
    frames, source = fmnist_frames(args.frames, input_shape, args.seed)
    frames_path = os.path.join(tmp, "frames.f32")
    frames.astype("<f4").tofile(frames_path)
    n = len(frames)
    log(f"{n} {source}; ONNX graphs in {tmp}")

    # (label, argv before the outputs path, the outputs path's flag or None for a trailing argument)
    contenders = [("ORT F32", [sys.executable, __file__, "--worker", f32_path, frames_path], None),
                  ("ORT int8", [sys.executable, __file__, "--worker", int8_path, frames_path], None)]
    for label, suffix in (("Lichen F32", "-f32.gguf"), ("Lichen Q8_0", "-q8_0.gguf"), ("Lichen Q4_0", "-q4_0.gguf")):
        path = sibling(args.model, suffix) or (args.model if suffix == "-f32.gguf" else None)
        if path and args.worker_binary:
            contenders.append((label, [args.worker_binary, path, frames_path], None))
        if path and args.lichen:
            contenders.append((label + " (CLI)" if args.worker_binary else label,
                               [args.lichen, "bench", "infer", "--model", path, "--serve", "--frames", frames_path],
                               "--outputs"))
    workers = []
    for idx, (label, argv, flag) in enumerate(contenders):
        out = os.path.join(tmp, f"out{idx}.f32")
        argv = argv + ([flag, out] if flag else [out])
        w = Worker(label, argv)
        w.outputs_path = out
        workers.append(w)
    for w in workers:
        w.wait_ready()
        w.logits = np.fromfile(w.outputs_path, dtype="<f4").reshape(n, -1)

    reference = workers[0].logits
    logit_range = float(reference.max() - reference.min())
    agreement = {}
    for w in workers[1:]:
        diff = float(np.abs(w.logits - reference).max())
        same = float(np.mean(w.logits.argmax(1) == reference.argmax(1)))
        agreement[w.label] = (diff, same)

    for r in range(args.rounds):
        order = workers[r % len(workers):] + workers[: r % len(workers)]
        for w in order:
            w.run((r * args.block) % n, args.block)
    rows = []
    for w in workers:
        rows.append({"contender": w.label, "p50_us": percentile(w.latencies, 0.5) / 1e3,
                     "p99_us": percentile(w.latencies, 0.99) / 1e3, "frames_timed": len(w.latencies),
                     "peak_rss_bytes": w.peak_rss()})
    for w in workers:
        w.stop()
    f32, int8 = rows[0], rows[1]
    for row in rows:
        row["p50_vs_ort_f32"] = row["p50_us"] / f32["p50_us"]
        row["p50_vs_ort_int8"] = row["p50_us"] / int8["p50_us"]
        row["p99_vs_ort_f32"] = row["p99_us"] / f32["p99_us"]
        row["rss_vs_ort_f32"] = row["peak_rss_bytes"] / f32["peak_rss_bytes"]
        diff = agreement.get(row["contender"])
        row["max_abs_diff_vs_ort_f32"] = diff[0] if diff else 0.0
        row["argmax_agreement_vs_ort_f32"] = diff[1] if diff else 1.0

    if args.json:
        print(json.dumps({"benchmark": "peer-onnxruntime", "model": args.model, "frames": n, "frame_source": source,
                          "rounds": args.rounds, "block": args.block, "threads": 1,
                          "ort_f32_logit_range": logit_range, "results": rows}, indent=1))
        return
    print(f"model {args.model}; {n} {source}; batch 1, one thread; {args.rounds} rounds x {args.block} frames "
          f"per contender, alternating")
    print(f"ONNX Runtime F32 logit range {logit_range:.4f}; Lichen F32 max |diff| "
          f"{agreement.get('Lichen F32', (float('nan'),))[0]:.3g} "
          f"({agreement.get('Lichen F32', (float('nan'),))[0] / logit_range:.3g} of the range)")
    head = f"{'contender':<18} {'p50 (us)':>9} {'p99 (us)':>9} {'p50/ORT F32':>11} {'p50/ORT int8':>12} " \
           f"{'p99/ORT F32':>11} {'peak RSS (MiB)':>14} {'RSS/ORT F32':>11} {'max|diff|':>10} {'argmax agree':>12}"
    print(head)
    for row in rows:
        print(f"{row['contender']:<18} {row['p50_us']:9.1f} {row['p99_us']:9.1f} {row['p50_vs_ort_f32']:11.3f} "
              f"{row['p50_vs_ort_int8']:12.3f} {row['p99_vs_ort_f32']:11.3f} {row['peak_rss_bytes'] / 2**20:14.1f} "
              f"{row['rss_vs_ort_f32']:11.3f} {row['max_abs_diff_vs_ort_f32']:10.3g} "
              f"{row['argmax_agreement_vs_ort_f32']:12.3f}")


if __name__ == "__main__":
    main()
