"""kmagic.devices in this process: choices, precision policies, errors, the tf_keras route, %kdevice.

Nothing here changes process-wide TensorFlow state that other tests see: no
logical devices, no strategies (those run in subprocesses in
test_devices_strategies.py), and the global dtype policy is checked to come back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import kmagic
from kmagic import devices
from kmagic.buildinfo import info_of
from kmagic.devices import Devices, DeviceSetup, Gpu, plan
from kmagic.errors import KmagicDeviceError

H100 = Gpu("NVIDIA H100 80GB HBM3", 80 * 2**30, (9, 0))
A100 = Gpu("NVIDIA A100-SXM4-40GB", 40 * 2**30, (8, 0))
V100 = Gpu("Tesla V100-SXM2-16GB", 16 * 2**30, (7, 0))
K80 = Gpu("Tesla K80", 12 * 2**30, (3, 7))

MLP = """
input 8
dense 16 relu
dense 16 relu
dense 3 softmax
compile adam scce
"""


# --------------------------------------------------------------------------- #
# auto choices (pure decisions over described devices)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("gpus", "strategy", "replicas", "precision", "jit"),
    [
        ((), "default", 1, "float32", False),
        ((H100,), "default", 1, "mixed_bfloat16", True),
        ((A100,), "default", 1, "mixed_bfloat16", True),
        ((V100,), "default", 1, "mixed_float16", True),
        ((K80,), "default", 1, "float32", True),
        ((H100, H100), "mirrored", 2, "mixed_bfloat16", False),
        ((A100, V100), "mirrored", 2, "mixed_float16", False),  # the slowest GPU decides
    ],
)
def test_auto_choices_follow_the_devices(gpus, strategy, replicas, precision, jit) -> None:
    chosen = plan(None, None, None, Devices(gpus=gpus))
    assert (chosen.strategy, chosen.replicas, chosen.precision, chosen.jit) == (strategy, replicas, precision, jit)


def test_auto_on_a_tpu_uses_bfloat16_and_lets_the_tpu_compile() -> None:
    chosen = plan("tpu", "auto", "auto", Devices(tpus=tuple(f"TPU:{i}" for i in range(8))))
    assert (chosen.strategy, chosen.replicas, chosen.precision, chosen.jit) == ("tpu", 8, "mixed_bfloat16", False)
    assert chosen.device == "TPU (8 cores)"


def test_explicit_choices_win_over_auto() -> None:
    chosen = plan("none", "float32", "off", Devices(gpus=(H100, H100)))
    assert (chosen.strategy, chosen.replicas, chosen.precision, chosen.jit) == ("none", 1, "float32", False)
    chosen = plan("auto", "mixed_float16", True, Devices())
    assert (chosen.precision, chosen.jit) == ("mixed_float16", True)


def test_mirrored_without_gpus_mirrors_the_logical_cpus() -> None:
    chosen = plan("mirrored", None, None, Devices(cpus=2))
    assert (chosen.strategy, chosen.replicas, chosen.jit) == ("mirrored", 2, False)
    assert chosen.device == "CPU (2 logical devices)"


def test_multiworker_counts_every_workers_gpus() -> None:
    chosen = plan("multiworker", None, None, Devices(gpus=(A100, A100)), workers=3)
    assert (chosen.replicas, chosen.precision, chosen.jit) == (6, "mixed_bfloat16", False)
    assert chosen.device.startswith("3 workers x 2 x GPU")


# --------------------------------------------------------------------------- #
# bad names and combinations
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("kwargs", "message", "hint"),
    [
        ({"strategy": "mirorred"}, "unknown strategy 'mirorred'", "Did you mean 'mirrored'?"),
        ({"strategy": "multi-worker"}, "unknown strategy", "Did you mean 'multiworker'?"),
        ({"precision": "bf16"}, "unknown precision 'bf16'", "Did you mean 'mixed_bfloat16'?"),
        ({"precision": "float16"}, "unknown precision 'float16'", "Did you mean 'mixed_float16'?"),
        ({"precision": "mixed_flaot16"}, "unknown precision", "Did you mean 'mixed_float16'?"),
        ({"jit": "of"}, "unknown jit setting 'of'", "Did you mean 'off'?"),
    ],
)
def test_unknown_names_raise_with_did_you_mean(kwargs, message, hint) -> None:
    with pytest.raises(KmagicDeviceError) as info:
        devices.resolve(**kwargs)
    assert message in info.value.message
    assert info.value.hint == hint
    assert (info.value.line, info.value.column) == (None, None)  # no fake position
    assert not str(info.value).startswith("line ")


def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch) -> None:
    for name in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KmagicDeviceError, match="--strategy tpu needs a TPU, and none was found"):
        devices.resolve(strategy="tpu")
    with pytest.raises(KmagicDeviceError, match="--strategy tpu needs a TPU"):
        kmagic.build(MLP, strategy="tpu")


def test_float16_on_a_tpu_is_refused() -> None:
    with pytest.raises(KmagicDeviceError, match="TPUs do not compute in float16") as info:
        plan("tpu", "mixed_float16", None, Devices(tpus=("TPU:0",)))
    assert info.value.hint == "Did you mean 'mixed_bfloat16'?"


def test_xla_with_a_multi_device_strategy_is_refused() -> None:
    with pytest.raises(KmagicDeviceError, match="--jit on cannot run under --strategy mirrored with 2 replicas"):
        plan("mirrored", None, "on", Devices(gpus=(H100, H100)))
    with pytest.raises(KmagicDeviceError, match="--strategy multiworker with 4 replicas"):
        plan("multiworker", None, True, Devices(gpus=(H100, H100)), workers=2)


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "reads the cluster from the TF_CONFIG environment variable, which is not set"),
        ("{cluster: 1", "TF_CONFIG is not valid JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster' with a 'worker'"),
        (json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}}), "no 'task' with 'type' and 'index'"),
        (json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}),
         "task worker:3 is not in its cluster"),
    ],
)
def test_multiworker_checks_tf_config_before_starting_anything(monkeypatch, tf_config, message) -> None:
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(KmagicDeviceError, match=message):
        devices.resolve(strategy="multiworker")
    assert "multiworker" not in devices._STRATEGY_CACHE


def test_multiworker_after_tensorflow_started_says_to_restart(monkeypatch) -> None:
    from kmagic._keras import tf

    tf().constant(1.0) + 1  # this test process's TensorFlow runtime is running
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(KmagicDeviceError, match="has to start before TensorFlow runs anything") as info:
        devices.resolve(strategy="multiworker")
    assert "Restart the kernel" in info.value.hint


# --------------------------------------------------------------------------- #
# precision policies on real models
# --------------------------------------------------------------------------- #


def _policies(model) -> dict[str, str]:
    return {layer.name: layer.dtype_policy.name for layer in model.layers if layer.weights}


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize(("precision", "loss_scale"), [("mixed_float16", True), ("mixed_bfloat16", False)])
def test_mixed_precision_reaches_every_layer_and_the_output_stays_float32(precision, loss_scale) -> None:
    from kmagic._keras import keras

    before = keras().mixed_precision.global_policy().name
    model = kmagic.build(MLP, precision=precision, seed=0)
    policies = _policies(model)
    output_layer = model.layers[-1].name
    assert policies.pop(output_layer) == "float32"
    assert set(policies.values()) == {precision}
    assert model.layers[1].compute_dtype == precision.split("_")[1]
    assert model.layers[1].variable_dtype == "float32"
    assert model.output.dtype == "float32"
    assert (type(model.optimizer).__name__ == "LossScaleOptimizer") is loss_scale
    assert info_of(model).device["precision"] == precision
    assert ("loss_scaling" in info_of(model).device) is loss_scale
    assert keras().mixed_precision.global_policy().name == before  # the build left no global policy behind
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = np.arange(32) % 3
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:4], verbose=0).dtype == np.float32


def test_auto_on_this_cpu_keeps_float32_and_no_xla() -> None:
    model = kmagic.build(MLP, seed=0)
    assert set(_policies(model).values()) == {"float32"}
    assert info_of(model).device == {"device": "CPU", "strategy": "default", "replicas": 1,
                                     "precision": "float32", "jit": "off"}
    assert model.jit_compile is False


def test_explicit_jit_on_reaches_compile() -> None:
    model = kmagic.build(MLP, jit="on", seed=0)
    assert model.jit_compile is True
    assert info_of(model).device["jit"] == "on"


def test_layers_whose_dtype_is_their_data_get_no_policy() -> None:
    setup = DeviceSetup(precision="mixed_bfloat16")
    assert setup.layer_dtype(False, "StringLookup") is None
    assert setup.layer_dtype(False, "TextVectorization") is None
    assert setup.layer_dtype(False, "Dense") == "mixed_bfloat16"
    assert setup.layer_dtype(True, "Dense") == "float32"
    assert DeviceSetup(precision="float32").layer_dtype(True, "Dense") is None


# --------------------------------------------------------------------------- #
# the tf_keras route's translations (no strategy needed for these)
# --------------------------------------------------------------------------- #


def test_keras2_namespace_takes_keras3_keywords() -> None:
    import inspect

    ns = DeviceSetup(keras_route="tf_keras").keras_module()
    import tf_keras

    layer = ns.layers.LeakyReLU(negative_slope=0.25)
    assert isinstance(layer, tf_keras.layers.LeakyReLU)
    assert layer.get_config()["alpha"] == pytest.approx(0.25)
    assert "negative_slope" in inspect.signature(ns.layers.LeakyReLU.__init__).parameters
    lstm = ns.layers.LSTM(4, seed=3, use_cudnn="auto")
    assert isinstance(lstm, tf_keras.layers.LSTM)
    assert ns.layers.Dense is tf_keras.layers.Dense
    assert ns.Model is tf_keras.Model and ns.optimizers is tf_keras.optimizers


def test_keras2_namespace_names_keras3_only_layers() -> None:
    ns = DeviceSetup(keras_route="tf_keras").keras_module()
    with pytest.raises(KmagicDeviceError, match="layer 'RMSNormalization' exists only in Keras 3") as info:
        _ = ns.layers.RMSNormalization
    assert info.value.hint == "Did you mean 'LayerNormalization'?"


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_keras3_callbacks_run_inside_a_tf_keras_fit() -> None:
    import tf_keras

    from kmagic._keras import keras

    calls: list[str] = []

    class Probe(keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(f"begin:{type(self.model).__module__.split('.')[0]}")

        def on_train_batch_end(self, batch, logs=None):
            calls.append("batch")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch{epoch}:{sorted(logs)}")
            if epoch == 1:
                self.model.stop_training = True

    setup = DeviceSetup(keras_route="tf_keras")
    adapted = setup.adapt_callbacks([Probe(), tf_keras.callbacks.History()])
    assert isinstance(adapted[0], tf_keras.callbacks.Callback) and adapted[0]._implements_train_batch_hooks()
    assert isinstance(adapted[1], tf_keras.callbacks.History)
    inputs = tf_keras.Input((3,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=5, batch_size=4, verbose=0, callbacks=adapted)
    assert calls == ["begin:tf_keras", "batch", "batch", "epoch0:['loss']", "batch", "batch", "epoch1:['loss']"]
    assert DeviceSetup().adapt_callbacks([calls]) == [calls]  # Keras 3 route: unchanged


# --------------------------------------------------------------------------- #
# memory growth and %kdevice
# --------------------------------------------------------------------------- #


def test_memory_growth_respects_the_users_setting(monkeypatch) -> None:
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    assert devices.enable_memory_growth() == "off (TF_FORCE_GPU_ALLOW_GROWTH=false)"
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH")
    assert devices.enable_memory_growth() == "no GPU"  # this machine has none
    import os

    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_device_report_text_and_html(monkeypatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    report = devices.device_report()
    text = str(report)
    assert "GPU                     none" in text or "GPU  " in text
    assert "auto: strategy          default (1 replica)" in text
    assert "auto: precision         float32" in text
    assert "auto: XLA (jit)         off" in text
    html = report._repr_html_()
    assert html.startswith("<table class='kmagic-device'>") and "<th style='text-align:left'>auto: precision</th>" in html
    data = report.as_dict()
    assert data["gpus"] == [] and data["auto"]["precision"] == "float32" and data["cpus"] >= 1
    assert data["versions"]["TensorFlow"].startswith("2.")


def test_device_report_shows_the_cluster_of_tf_config(monkeypatch) -> None:
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1", "c:1"]},
                                                "task": {"type": "worker", "index": 2}}))
    assert "3 workers; this is worker 2" in str(devices.device_report())
    monkeypatch.setenv("TF_CONFIG", "not json")
    assert "invalid: TF_CONFIG is not valid JSON" in str(devices.device_report())


def test_gpu_labels_and_summaries() -> None:
    assert H100.label() == "NVIDIA H100 80GB HBM3, 80.0 GiB, compute capability 9.0"
    assert Devices(gpus=(V100, V100)).summary() == "2 x GPU: Tesla V100-SXM2-16GB"
    assert Devices().summary() == "CPU"


def test_kmagics_training_recorder_records_a_tf_keras_fit() -> None:
    import tf_keras

    from kmagic.callbacks.recorder import TrainingRecorder

    recorder = TrainingRecorder(refresh_interval=0)
    inputs = tf_keras.Input((3,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    callbacks = DeviceSetup(keras_route="tf_keras").adapt_callbacks([recorder])
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=3, batch_size=4, verbose=0, callbacks=callbacks)
    history = recorder.history.as_dict()
    assert len(history["loss"]) == 3 and all(np.isfinite(history["loss"]))
    assert recorder.history.finished and not recorder.running
