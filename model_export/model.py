"""The on-node detector network: a tiny 1-D CNN over the conditioned, peak-scaled int8 window.

Input: the node's detector window, WINDOW x CHANNELS int8 values from
`firmware.detector_input.quantize` (time-major, x/y/z interleaved, oldest first), fed to Keras as
float `q / 127` so that the int8 TFLite input tensor is exactly the node's buffer (scale 1/127,
zero point 0; export.py checks this). Output: one sigmoid score, "earthquake"; the node's graph
stops at the logit (`build_model(logit=True)`, see firmware/detector.py).

The 1-D convolutions are written as Conv2D with (k, 1) kernels over a (WINDOW, 1, CHANNELS) view, so
the converted graph is one RESHAPE followed by plain CONV_2D kernels (ESP-NN accelerated on the
ESP32) instead of the EXPAND_DIMS / SQUEEZE pairs Keras' Conv1D lowers to. Training lays time along
the width instead ((1, k) kernels over (1, WINDOW, CHANNELS), `time_on="width"`): TensorFlow's CPU
kernels fit it in 0.88-0.94x the time with bit-identical weights (benchmarks/train_speed.py), and
`transfer_weights` moves them into the exported layout unchanged (only a 1 swaps places). Only TFLM
builtins that the ESP32 build of TFLite Micro provides are used; `ALLOWED_OPS` is checked against
the converted graph by the tests and by export.

    spec = ModelSpec()                    # the default architecture
    model = build_model(spec)             # Keras model, batch None (training)
    model1 = build_model(spec, batch=1)   # static shapes for conversion
    macs(spec)                            # multiply-accumulates per inference (analytic)
"""

from __future__ import annotations

import dataclasses
import math

from ..firmware.detector_input import CHANNELS, WINDOW

# Builtin operators the TFLM ESP32 build provides that this network may lower to.
ALLOWED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MEAN",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "RELU",
        "LOGISTIC",
        "RESHAPE",
        "QUANTIZE",
        "DEQUANTIZE",
    }
)
INPUT_SCALE = 1.0 / 127.0  # float input = int8 window / 127


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Architecture: conv layers (filters, kernel, stride[, "sep"]), then a head.

    A layer marked "sep" is depthwise-separable: a (k, 1) depthwise convolution (DEPTHWISE_CONV_2D)
    then a 1x1 convolution to `filters` channels (CONV_2D), for about 1/k of the MACs.

    head "gap": global average over time (MEAN) -> dense; "flatten": the last feature map,
    flattened, keeps where in the window things happen (a P onset near the end of the window).
    """

    convs: tuple[tuple, ...] = ((12, 5, 2), (24, 5, 2, "sep"), (32, 5, 2, "sep"), (32, 5, 2, "sep"), (32, 3, 2, "sep"))
    head: str = "flatten"
    dense: int = 16  # hidden units before the output (0 = none)
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return {"convs": [list(c) for c in self.convs], "head": self.head, "dense": self.dense, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(convs=tuple(tuple(int(v) if i < 3 else str(v) for i, v in enumerate(c)) for c in d["convs"]), head=d["head"], dense=int(d["dense"]),
                   dropout=float(d.get("dropout", 0.0)))


def _out_len(n: int, stride: int) -> int:
    return int(math.ceil(n / stride))  # padding="same"


def macs(spec: ModelSpec) -> int:
    """Multiply-accumulates per inference, from the architecture (tflm.count_macs reads the graph)."""
    n, cin, total = WINDOW, CHANNELS, 0
    for filters, k, s, *kind in spec.convs:
        n = _out_len(n, s)
        if kind and kind[0] == "sep":
            total += n * cin * k + n * cin * filters
        else:
            total += n * filters * k * cin
        cin = filters
    feat = cin if spec.head == "gap" else n * cin
    if spec.dense:
        total += feat * spec.dense
        feat = spec.dense
    return total + feat


def build_model(spec: ModelSpec = ModelSpec(), batch: int | None = None, logit: bool = False, conv_head: bool = False,
                time_on: str = "height"):
    """The Keras model: input (batch, WINDOW, CHANNELS) float (int8 / 127), output sigmoid (batch, 1).

    `logit`: the same network (same weights) without the final sigmoid, as exported for the node.
    `conv_head` (the "flatten" head, for export): the dense layers as convolutions, the first one
    spanning the whole feature map, the second 1 x 1; the same function as Flatten + Dense with the
    weights reshaped (`transfer_weights`), lowered to CONV_2D instead of FULLY_CONNECTED. TFLM's
    int8 FULLY_CONNECTED rounds differently from LiteRT's on about 1% of inputs (1 LSB); their CONV_2D
    agreed on all 3,000 test windows tried, on two models.
    `time_on`: the axis of the 2-D view time runs along, "height" (the exported graph) or "width"
    (training: the same function and weights, faster on TensorFlow's CPU kernels).
    """
    import keras

    if spec.head not in ("gap", "flatten"):
        raise ValueError("Invalid head: %r (gap or flatten)" % spec.head)
    if time_on not in ("width", "height"):
        raise ValueError("Invalid time_on: %r (width or height)" % time_on)
    along = (lambda n: (1, n)) if time_on == "width" else (lambda n: (n, 1))  # a 2-D size with n along time
    inp = keras.Input((WINDOW, CHANNELS), batch_size=batch, name="window")
    x = keras.layers.Reshape(along(WINDOW) + (CHANNELS,), name="as_2d")(inp)
    for i, (filters, k, s, *kind) in enumerate(spec.convs):
        if kind and kind[0] == "sep":
            # strides (s, s): TensorFlow's CPU depthwise kernel wants equal strides; the other axis has
            # size 1, so its stride changes nothing.
            x = keras.layers.SeparableConv2D(filters, along(k), strides=(s, s), padding="same", activation="relu", name="sep%d" % i)(x)
        elif kind:
            raise ValueError("Invalid layer kind: %r (sep or nothing)" % kind[0])
        else:
            x = keras.layers.Conv2D(filters, along(k), strides=along(s), padding="same", activation="relu", name="conv%d" % i)(x)
    if conv_head and spec.head == "flatten":
        if spec.dense:
            x = keras.layers.Conv2D(spec.dense, tuple(x.shape[1:3]), padding="valid", activation="relu", name="dense")(x)
        x = keras.layers.Conv2D(1, (1, 1), name="score")(x)
        out = keras.layers.Reshape((1,), name="logit")(x if logit else keras.layers.Activation("sigmoid")(x))
        return keras.Model(inp, out, name="seismote_detector")
    if spec.head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
    if spec.dense:
        x = keras.layers.Dense(spec.dense, activation="relu", name="dense")(x)
    out = keras.layers.Dense(1, activation=None if logit else "sigmoid", name="score")(x)
    return keras.Model(inp, out, name="seismote_detector")


def transfer_weights(src, dst) -> None:
    """Copy the weights of `src` into `dst`, a build_model of the same spec with another head: a
    Dense kernel after Flatten of (H, 1, C) or (1, W, C) is, reshaped, the kernel of the Conv2D spanning
    the feature map; the kernels of a model laid out with time on the other axis (`time_on`) likewise."""
    dst.set_weights([w.reshape(t.shape) for w, t in zip(src.get_weights(), dst.get_weights())])


def to_input(x_int8):
    """int8 windows (N, WINDOW, CHANNELS) -> the float model input."""
    import numpy as np

    return np.asarray(x_int8, dtype=np.float32) * np.float32(INPUT_SCALE)
