"""The exported model in the real TFLite Micro kernels, checked against LiteRT, measured.

- `run_tflm(model, x)`: int8 windows through the `tflite-micro` package's interpreter (the TFLM
  C++ kernels the node runs; on the ESP32 the same kernels with ESP-NN's optimised versions of
  CONV_2D / DEPTHWISE_CONV_2D, meant to give the same int8 results: the node checks the golden
  vectors on its own kernels at boot).
- `run_litert(model, x)`: the same windows through LiteRT (ai-edge-litert), for the cross-check:
  outputs must be bit-identical (`cross_check`). Their int8 CONV_2D and DEPTHWISE_CONV_2D agree;
  their FULLY_CONNECTED does not always (1 LSB on ~1% of windows), so the export has none.
- `probe_arena(model)`: the smallest arena (bytes) TFLM can allocate and invoke the model in,
  found by binary search with each try in its own subprocess (an arena far too small can crash the
  interpreter process, and TFLM has no getter for its use); the allocation report that
  `print_allocations()` writes to C stderr is parsed from the run at the found size.
- `graph_ops(model)`, `count_macs(model)`: read from the flatbuffer graph itself.
- `MicroliteHost`: the board's `microlite` module API (`interpreter(model, arena_size, input_cb,
  output_cb)`, `getInputTensor(i).setValue(j, v)`, `getOutputTensor(i).getValue(j)`) over the
  tflite-micro interpreter, so that firmware/detector.py drives TFLM on the host exactly as it
  drives the native module on the board.

The host interpreter is a 64-bit build: its arena use includes pointer-sized structures that are
smaller on the 32-bit ESP32, so the host figure is an upper bound for the board.
"""

from __future__ import annotations

import re
import subprocess
import struct
import sys
from pathlib import Path

import numpy as np

_ARENA_PROBE = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
it = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
it.invoke()
it.get_output(0)
sys.stderr.flush()
it.print_allocations()
print("OK")
"""


class TflmError(RuntimeError):
    """The model could not be loaded, allocated or run in TFLite Micro."""


# --- the flatbuffer graph -----------------------------------------------------------------------


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def _op_names() -> dict[int, str]:
    fb = _schema()
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _model_obj(model: bytes):
    fb = _schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model), 0))


def graph_ops(model: bytes) -> list[str]:
    """Builtin operator names of the main subgraph, in execution order."""
    m = _model_obj(model)
    names = _op_names()
    out = []
    for op in m.subgraphs[0].operators:
        code = m.operatorCodes[op.opcodeIndex]
        out.append(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM"))
    return out


def count_macs(model: bytes) -> dict:
    """Multiply-accumulates per inference, from the tensor shapes in the graph.

    CONV_2D: out_h*out_w*out_c*kh*kw*in_c; DEPTHWISE_CONV_2D: out_h*out_w*out_c*kh*kw;
    FULLY_CONNECTED: rows*units*in. MEAN and pooling are adds, counted apart (`adds`).
    """
    m = _model_obj(model)
    sg = m.subgraphs[0]
    names = _op_names()
    shape = lambda i: [int(v) for v in sg.tensors[i].shape]  # noqa: E731
    per_op, adds = [], 0
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        n = 0
        if name == "CONV_2D":
            out, w = shape(op.outputs[0]), shape(op.inputs[1])
            n = int(np.prod(out)) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":
            out, w = shape(op.outputs[0]), shape(op.inputs[1])
            n = int(np.prod(out)) * w[1] * w[2]
        elif name == "FULLY_CONNECTED":
            out, w = shape(op.outputs[0]), shape(op.inputs[1])
            n = int(np.prod(out)) * w[1]
        elif name in ("MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SUM"):
            adds += int(np.prod(shape(op.inputs[0])))
        per_op.append((name, n))
    return {"macs": sum(n for _, n in per_op), "adds": adds, "per_op": per_op}


def io_quantization(model: bytes) -> dict:
    """Scale and zero point of the input and output tensors, and their shapes and types."""
    m = _model_obj(model)
    sg = m.subgraphs[0]
    fb = _schema()
    types = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_") and isinstance(v, int)}

    def one(i):
        t = sg.tensors[i]
        q = t.quantization
        return {
            "shape": [int(v) for v in t.shape],
            "dtype": types[t.type].lower(),
            "scale": float(q.scale[0]) if q is not None and q.scale is not None else None,
            "zero_point": int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None else None,
        }

    return {"input": one(sg.inputs[0]), "output": one(sg.outputs[0])}


# --- running ------------------------------------------------------------------------------------


def run_tflm(model: bytes, x: np.ndarray, arena_size: int = 64 * 1024) -> np.ndarray:
    """int8 windows (N, WINDOW, CHANNELS) -> int8 scores (N,) from the TFLM kernels."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        it = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena_size)
    except RuntimeError as e:
        raise TflmError("TFLite Micro could not load the model: %s" % e) from e
    shape = it.get_input_details(0)["shape"]
    x = np.asarray(x, dtype=np.int8)
    out = np.empty(len(x), dtype=np.int8)
    for i in range(len(x)):
        it.set_input(x[i].reshape(shape), 0)
        it.invoke()
        out[i] = it.get_output(0).reshape(-1)[0]
    return out


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """The same through LiteRT (reference kernels, no XNNPACK delegate: int8 semantics as TFLM)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=bytes(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    din, dout = it.get_input_details()[0], it.get_output_details()[0]
    x = np.asarray(x, dtype=np.int8)
    out = np.empty(len(x), dtype=np.int8)
    for i in range(len(x)):
        it.set_tensor(din["index"], x[i].reshape(din["shape"]))
        it.invoke()
        out[i] = it.get_tensor(dout["index"]).reshape(-1)[0]
    return out


def cross_check(model: bytes, x: np.ndarray, expected: np.ndarray | None = None) -> dict:
    """Run `x` in TFLM and LiteRT; report whether both agree bit for bit (and with `expected`)."""
    a = run_tflm(model, x)
    b = run_litert(model, x)
    res = {"n": int(len(x)), "tflm_vs_litert_identical": bool(np.array_equal(a, b)), "max_abs_diff": int(np.abs(a.astype(int) - b).max(initial=0))}
    if expected is not None:
        res["tflm_vs_golden_identical"] = bool(np.array_equal(a, np.asarray(expected, dtype=np.int8)))
    return res


# --- arena --------------------------------------------------------------------------------------


def _try_arena(model_path: Path, size: int, timeout: float = 60) -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-c", _ARENA_PROBE, str(model_path), str(size)], capture_output=True, text=True, timeout=timeout)
    return proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr


def parse_allocations(text: str) -> dict:
    """The figures of TFLM's RecordingMicroAllocator report (print_allocations)."""
    out = {}
    for key in ("total", "head", "tail"):
        m = re.search(r"Arena allocation %s (\d+) bytes" % key, text)
        if m:
            out[key] = int(m.group(1))
    return out


def probe_arena(model: bytes | Path, lo: int = 256, hi: int = 256 * 1024, step: int = 16, tmp_dir: Path | None = None) -> dict:
    """Smallest working arena (bytes, a multiple of `step`) and TFLM's own allocation report."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        if isinstance(model, (str, Path)):
            path = Path(model)
        else:
            path = Path(d) / "model.tflite"
            path.write_bytes(model)
        ok, _ = _try_arena(path, hi)
        if not ok:
            raise TflmError("the model does not run in TFLite Micro even with a %d-byte arena" % hi)
        lo_fail = lo - step  # assumed to fail
        good = hi
        while good - lo_fail > step:
            mid = (lo_fail + good) // 2 // step * step
            if mid <= lo_fail:
                mid = lo_fail + step
            ok, _ = _try_arena(path, mid)
            if ok:
                good = mid
            else:
                lo_fail = mid
        ok, report = _try_arena(path, good)
    return {"arena_bytes": good, "recorded": parse_allocations(report)}


# --- the microlite API on the host --------------------------------------------------------------


class _Tensor:
    """microlite.tensor: element access to an interpreter's input or output tensor."""

    def __init__(self, data: np.ndarray):
        self._data = data  # flat int8 view

    def getValue(self, index):  # noqa: N802 (microlite's names)
        return int(self._data[index])

    def setValue(self, index, value):  # noqa: N802
        self._data[index] = value
        return self

    def getType(self):  # noqa: N802
        return "INT8"


class _Interpreter:
    """microlite.interpreter(model, arena_size, input_callback, output_callback)."""

    def __init__(self, model, arena_size, input_callback, output_callback):
        from tflite_micro.python.tflite_micro import runtime

        if input_callback is not None and not callable(input_callback):
            raise ValueError("Invalid Input Callback Handler")
        if output_callback is not None and not callable(output_callback):
            raise ValueError("Invalid Output Callback Handler")
        try:
            # microlite allocates arena_size + 16 bytes (alignment): give TFLM the same.
            self._it = runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena_size) + 16)
        except RuntimeError as e:
            raise TflmError("AllocateTensors() failed: %s" % e) from e
        except (ValueError, IndexError, struct.error) as e:  # the package's flatbuffer reader on a malformed model
            raise TflmError("malformed model: %s" % e) from e
        self._in_shape = self._it.get_input_details(0)["shape"]
        self._in = np.zeros(int(np.prod(self._in_shape)), dtype=np.int8)
        self._out = np.zeros(1, dtype=np.int8)
        self._input_callback = input_callback
        self._output_callback = output_callback
        self.inference_count = 0

    def getInputTensor(self, index):  # noqa: N802
        if index != 0:
            raise IndexError("input tensor %d" % index)
        return _Tensor(self._in)

    def getOutputTensor(self, index):  # noqa: N802
        if index != 0:
            raise IndexError("output tensor %d" % index)
        return _Tensor(self._out)

    def invoke(self):
        """Input callback, TFLM Invoke, output callback; 0 on success, 1 on failure (as microlite)."""
        if self._input_callback is not None:
            self._input_callback(self)
        self._it.set_input(self._in.reshape(self._in_shape), 0)
        try:
            self._it.invoke()
        except RuntimeError:
            return 1
        self._out = np.ascontiguousarray(self._it.get_output(0).reshape(-1), dtype=np.int8)
        if self._output_callback is not None:
            self._output_callback(self)
        self.inference_count += 1
        return 0


class MicroliteHost:
    """Stands in for the board's `microlite` module: `MicroliteHost().interpreter(...)`."""

    interpreter = _Interpreter
    __version__ = "tflite-micro (host)"


microlite = MicroliteHost()
