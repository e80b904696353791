"""Train one kmodel under --strategy mirrored over two logical CPU devices; print a JSON result.

Run in its own process: logical devices must be configured before TensorFlow
initialises its runtime. The reference model starts from the same weights and
trains without a strategy on the same data and global batch size; synchronous
data parallelism must give the same weights.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TEXT = """
input 6
dense 16 relu
dense 3 softmax
compile sgd(lr=0.2) scce metrics=[accuracy]
"""


def main() -> None:
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import kmagic
    from kmagic import devices
    from kmagic.buildinfo import info_of

    result: dict = {"auto": devices.resolve().describe()}
    try:
        devices.resolve(strategy="mirrored", jit="on")
        result["jit_on_error"] = None
    except kmagic.KmagicError as exc:
        result["jit_on_error"] = str(exc)

    model = kmagic.build(TEXT, strategy="mirrored", seed=0)
    setup = info_of(model).setup
    start = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)

    reference = kmagic.build(TEXT, strategy="none", seed=0)
    reference.set_weights(start)
    reference.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), reference.get_weights(), strict=True))

    result.update(
        describe=info_of(model).device,
        replicas=setup.replicas,
        strategy_replicas=model.distribute_strategy.num_replicas_in_sync,
        devices=[d.name for d in tf.config.list_logical_devices("CPU")],
        loss=[float(v) for v in history.history["loss"]],
        max_difference_to_reference=difference,
        moved=max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), start, strict=True)),
    )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
