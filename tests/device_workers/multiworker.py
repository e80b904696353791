"""One worker of a --strategy multiworker run; TF_CONFIG says which. Prints a JSON result.

Every worker builds the same kmodel text with ``kmagic.build(...,
strategy="multiworker", seed=0)`` and trains it with a Keras 3 callback (the
kind kmagic's dashboard is) adapted for the tf_keras model. Worker 0 then
trains a reference copy without a strategy from the same starting weights on
the whole data with the same global batch: synchronous data parallelism must
end at the same weights. The final weights go to ``<out>/weights-<index>.npz``.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TEXT = """
input 6
dense 16
leaky_relu 0.1
dense 3 softmax
compile sgd(lr=0.2) scce metrics=[accuracy]
"""


def main(out_dir: str) -> None:
    import kmagic
    from kmagic.buildinfo import info_of

    model = kmagic.build(TEXT, strategy="multiworker", seed=0)

    import numpy as np

    from kmagic._keras import keras

    setup = info_of(model).setup
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    epochs_seen: list[int] = []

    class EpochCounter(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_seen.append(epoch)

    start = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0,
                        callbacks=setup.adapt_callbacks([EpochCounter()]))
    weights = model.get_weights()
    np.savez(os.path.join(out_dir, f"weights-{index}.npz"), *weights)
    result = {
        "index": index,
        "describe": info_of(model).device,
        "is_chief": setup.is_chief,
        "replicas": setup.replicas,
        "model_module": type(model).__module__,
        "leaky_alpha": float(model.layers[2].alpha),
        "loss": [float(v) for v in history.history["loss"]],
        "epochs_seen": epochs_seen,
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(weights, start, strict=True)),
    }
    if setup.is_chief:
        import tf_keras

        reference = tf_keras.models.clone_model(model)
        reference.set_weights(start)
        reference.compile(tf_keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
        reference.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
        result["max_difference_to_reference"] = max(
            float(np.abs(a - b).max()) for a, b in zip(weights, reference.get_weights(), strict=True))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
