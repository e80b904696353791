"""Why the model decided: gradient × input saliency, Grad-CAM and token attributions.

``explain(model, x)`` runs one forward and one backward pass per chunk of samples. The forward
pass goes layer by layer through the model's own graph under a gradient tape, so the tape can
watch the tensors an attribution needs: the inputs (saliency), the output of the last 2-D
convolution (Grad-CAM) and the output of every embedding (token attributions). The class
explained is the one the model predicts, or ``target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmagic import keras_internals
from kmagic.errors import KmagicDataError, KmagicUsageError

_CHUNK = 256


@dataclass
class Explanation:
    """Attributions for each sample of a batch (numpy arrays, first axis = sample)."""

    probabilities: Any
    targets: list[int]
    saliency: Any = None
    gradcam: Any = None
    gradcam_layer: str | None = None
    tokens: list[list[str]] = field(default_factory=list)
    token_scores: list[list[float]] = field(default_factory=list)
    inputs: Any = None

    def summary(self, sample: int) -> str:
        """``sample 0: class 3 (p=0.91)`` for one sample."""
        probs = self.probabilities[sample]
        target = self.targets[sample]
        score = float(probs[target]) if probs.shape[0] > 1 else float(probs[0])
        label = "p" if probs.shape[0] > 1 or 0.0 <= score <= 1.0 else "output"
        return f"sample {sample}: class {target} ({label}={score:.3g})"


def _last_conv(model: Any) -> str | None:
    from kmagic.model_stats import layer_calls

    name = None
    for layer, node in layer_calls(model):
        if node is None or "Conv" not in type(layer).__name__:
            continue
        if len(node.output_tensors[0].shape) == 4:
            name = layer.name
    return name


def _vocabulary(model: Any) -> list[str] | None:
    for layer in model.layers:
        getter = getattr(layer, "get_vocabulary", None)
        if getter is not None:
            try:
                return [str(token) for token in getter()]
            except (ValueError, RuntimeError):  # not adapted yet
                return None
    return None


def _score(outputs: Any, targets: Any, tf: Any) -> Any:
    """The value whose gradient is explained: the target class's output for each sample."""
    if outputs.shape[-1] == 1:
        sign = tf.where(tf.equal(targets, 0), -1.0, 1.0)
        return tf.cast(outputs[:, 0], "float32") * sign
    return tf.gather(tf.cast(outputs, "float32"), targets, axis=1, batch_dims=1)


def _targets_of(probabilities: Any, target: int | None) -> Any:
    import numpy as np

    n = probabilities.shape[0]
    classes = probabilities.shape[-1]
    if target is not None:
        if classes > 1 and not 0 <= target < classes:
            raise KmagicUsageError(f"expected --target between 0 and {classes - 1}, received {target}")
        return np.full(n, target, dtype="int32")
    if classes == 1:
        return (probabilities[:, 0] >= 0.5).astype("int32")
    return probabilities.argmax(axis=-1).astype("int32")


def explain(model: Any, x: Any, *, target: int | None = None) -> Explanation:
    """Saliency (gradient × input), Grad-CAM on the last 2-D convolution and token attributions
    for the samples in ``x`` (one input), explaining the predicted class or ``target``."""
    import numpy as np

    from kmagic.model_stats import graph_model

    graph = graph_model(model)
    if graph is None:
        raise KmagicUsageError(f"model '{model.name}' has no layer graph to explain",
                               hint="build it with an input shape (an Input layer, or %%kmodel --input)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise KmagicUsageError(f"expected a model with one input and one output to explain, received "
                               f"{len(graph.inputs)} input(s) and {len(graph.outputs)} output(s)")
    data = _as_array(x)
    parts = [_explain_chunk(graph, data[i:i + _CHUNK], target) for i in range(0, len(data), _CHUNK)]
    joined = Explanation(
        probabilities=np.concatenate([p.probabilities for p in parts]),
        targets=[t for p in parts for t in p.targets],
        saliency=None if parts[0].saliency is None else np.concatenate([p.saliency for p in parts]),
        gradcam=None if parts[0].gradcam is None else np.concatenate([p.gradcam for p in parts]),
        gradcam_layer=parts[0].gradcam_layer,
        tokens=[t for p in parts for t in p.tokens],
        token_scores=[s for p in parts for s in p.token_scores],
        inputs=data,
    )
    return joined


def _as_array(x: Any) -> Any:
    import numpy as np

    if hasattr(x, "to_numpy"):  # pandas
        x = x.to_numpy()
    data = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if data.ndim == 0 or len(data) == 0:
        raise KmagicDataError(f"expected a batch of samples to explain, received an array of shape {data.shape}")
    if data.dtype.kind in "US":
        data = data.astype(object)
    return data


def _explain_chunk(graph: Any, x: Any, target: int | None) -> Explanation:
    import numpy as np

    from kmagic._keras import tf

    t = tf()
    conv = _last_conv(graph)
    floating = x.dtype.kind == "f"
    inputs = t.convert_to_tensor(x.astype("float32") if floating else x)
    watched: dict[str, Any] = {}
    token_ids: list[Any] = []
    with t.GradientTape(persistent=True) as tape:
        if floating:
            tape.watch(inputs)

        def watching(operation: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                result = operation(*args, **kwargs)
                kind = type(operation).__name__
                if operation.name == conv or kind == "Embedding":
                    tape.watch(result)
                    watched[operation.name] = result
                    if kind == "Embedding":
                        token_ids.append(np.asarray(args[0]))
                return result

            return call

        outputs = keras_internals.run_through_graph(graph, [inputs], watching)
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        probabilities = np.asarray(outputs, dtype="float32").reshape(len(x), -1)
        targets = _targets_of(probabilities, target)
        score = _score(t.reshape(outputs, (len(x), -1)), t.constant(targets), t)
    result = Explanation(probabilities=probabilities, targets=[int(v) for v in targets])
    if floating:
        grad = tape.gradient(score, inputs)
        result.saliency = (grad * inputs).numpy()
    if conv is not None and conv in watched:
        result.gradcam = _gradcam(tape.gradient(score, watched[conv]), watched[conv], x.shape, t)
        result.gradcam_layer = conv
    embeddings = [name for name in watched if name != conv]
    if embeddings:
        first = watched[embeddings[0]]
        scores = t.reduce_sum(tape.gradient(score, first) * first, axis=-1).numpy()
        result.tokens, result.token_scores = _tokens(graph, token_ids[0], scores)
    return result


def _gradcam(grads: Any, maps: Any, input_shape: tuple[int, ...], t: Any) -> Any:
    """Grad-CAM heat maps in [0, 1], resized to the input's height and width."""
    weights = t.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = t.nn.relu(t.reduce_sum(weights * maps, axis=-1))[..., None]
    if len(input_shape) >= 3:
        cam = t.image.resize(cam, input_shape[1:3])
    cam = cam[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, *([1] * (cam.ndim - 1)))
    return cam / (peak + 1e-12)


def _tokens(graph: Any, ids: Any, scores: Any) -> tuple[list[list[str]], list[list[float]]]:
    """The tokens of each sample (padding left out) and their attribution scores."""
    vocabulary = _vocabulary(graph)
    tokens, values = [], []
    for row_ids, row_scores in zip(ids, scores, strict=False):
        keep = [i for i, token in enumerate(row_ids) if int(token) != 0]
        tokens.append([vocabulary[int(row_ids[i])] if vocabulary and int(row_ids[i]) < len(vocabulary)
                       else str(int(row_ids[i])) for i in keep])
        values.append([float(row_scores[i]) for i in keep])
    return tokens, values
