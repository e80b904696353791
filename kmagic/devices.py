"""Devices, precision policy, XLA and distribution strategies for ``build``.

:func:`resolve` turns the ``strategy=``/``precision=``/``jit=`` choices of
``kmagic.build`` and ``%%kmodel`` into a :class:`DeviceSetup`; the compiler
builds and compiles the model inside :meth:`DeviceSetup.scope` with the layer
dtypes of :meth:`DeviceSetup.layer_dtype`. :func:`device_report` is what
``%kdevice`` shows. Choices made by ``auto`` (see docs/devices.md):

- strategy: ``MirroredStrategy`` with more than one GPU, else the default one;
- precision: ``mixed_bfloat16`` on TPUs and GPUs of compute capability 8.0 or
  more, ``mixed_float16`` (with loss scaling) on 7.x GPUs, ``float32`` on a
  CPU and on older GPUs (no tensor cores: mixed precision only slows them);
- XLA: on for one GPU, off on a CPU and under multi-device strategies
  (Keras's XLA step cannot reach variables mirrored on other devices).

``--strategy multiworker`` builds the model with ``tf_keras`` (Keras 2):
Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585); :mod:`kmagic.keras2` translates the Keras 3
keywords that differ, and :meth:`DeviceSetup.adapt_callbacks` wraps Keras 3
callbacks (the dashboard) for a Keras 2 ``fit``.

Nothing here imports TensorFlow at module import; every function that needs
it imports it on first use, after GPU memory growth is turned on.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmagic import registry  # data only: loading stays fast
from kmagic.errors import KmagicDeviceError, did_you_mean

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_CHOICES = ("auto", "on", "off")

#: Words people type for a precision, with the policy they mean.
_PRECISION_HINTS = {
    "float16": "mixed_float16", "fp16": "mixed_float16", "half": "mixed_float16",
    "mixed16": "mixed_float16", "bfloat16": "mixed_bfloat16", "bf16": "mixed_bfloat16",
    "mixed_bf16": "mixed_bfloat16", "fp32": "float32", "single": "float32",
    "float64": "float32", "mixed": "auto",
}
_JIT_WORDS = {"on": True, "true": True, "yes": True, "xla": True, "off": False, "false": False, "no": False}
_STRATEGY_HINTS = {
    "default": "none", "mirror": "mirrored", "multi_worker": "multiworker",
    "multi-worker": "multiworker", "worker": "multiworker", "tpustrategy": "tpu",
}

#: Layer classes whose ``dtype`` is the type of their data, not a float policy (from the registry).
DATA_DTYPE_CLASSES = registry.DATA_DTYPE_CLASSES

# --------------------------------------------------------------------------- #
# What this machine has
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Gpu:
    """One GPU as TensorFlow sees it."""

    name: str
    memory_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None

    def label(self) -> str:
        memory = f", {self.memory_bytes / 2**30:.1f} GiB" if self.memory_bytes else ""
        cc = f", compute capability {self.compute_capability[0]}.{self.compute_capability[1]}" if self.compute_capability else ""
        return f"{self.name}{memory}{cc}"


@dataclass(frozen=True)
class Devices:
    """The accelerators seen: GPUs, TPU cores, and how many (logical) CPU devices."""

    gpus: tuple[Gpu, ...] = ()
    tpus: tuple[str, ...] = ()
    cpus: int = 1
    memory_growth: str = "no GPU"

    def summary(self) -> str:
        """``CPU``, ``GPU: <name>``, ``2 x GPU: <name>``, ``TPU (8 cores)``."""
        if self.tpus:
            return f"TPU ({len(self.tpus)} cores)"
        if self.gpus:
            names = sorted({gpu.name for gpu in self.gpus})
            count = f"{len(self.gpus)} x " if len(self.gpus) > 1 else ""
            return f"{count}GPU: {', '.join(names)}"
        return "CPU" if self.cpus <= 1 else f"CPU ({self.cpus} logical devices)"


def _tf() -> Any:
    from kmagic._keras import tf

    return tf()


def prefer_memory_growth() -> None:
    """Ask TensorFlow for on-demand GPU memory; imports nothing.

    TensorFlow reads ``TF_FORCE_GPU_ALLOW_GROWTH`` when it initialises a GPU,
    so this works even after ``import tensorflow`` as long as no GPU is in use
    yet. A value the user set is kept.
    """
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def enable_memory_growth() -> str:
    """Turn on memory growth on every GPU before TensorFlow initialises them.

    Returns the state for reports: ``on``, ``off (...)``, ``no GPU`` or a note
    that TensorFlow had initialised the GPUs already (then nothing can change).
    """
    user_value = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
    if user_value is not None and user_value.lower() == "false":
        return "off (TF_FORCE_GPU_ALLOW_GROWTH=false)"
    prefer_memory_growth()
    tf = _tf()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "no GPU"
    for gpu in gpus:
        try:
            if not tf.config.experimental.get_memory_growth(gpu):
                tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):
            # RuntimeError: the GPUs are initialised already; ValueError: the
            # user configured virtual devices (a fixed memory limit) on them.
            if user_value is not None and user_value.lower() == "true":
                return "on (TF_FORCE_GPU_ALLOW_GROWTH)"
            message = ("not set: TensorFlow initialised the GPUs before kmagic could; restart the kernel "
                       "and build a model first, or set TF_FORCE_GPU_ALLOW_GROWTH=true")
            warnings.warn(f"kmagic: GPU memory growth {message}", stacklevel=2)
            return message
    return "on"


def _gpu_memory() -> list[int | None]:
    """Memory per GPU in bytes, in TensorFlow's order (None where unknown)."""
    from kmagic.keras_internals import gpu_memory_limits

    try:
        return list(gpu_memory_limits())
    except Exception:  # pragma: no cover - only with a broken GPU runtime
        return []


def detect(with_memory: bool = True) -> Devices:
    """The GPUs, TPUs and CPU devices of this process.

    Turns memory growth on first. Reads only physical-device information, so
    nothing here stops a later ``MultiWorkerMirroredStrategy`` from starting,
    except ``with_memory`` on a GPU machine (TensorFlow has to create the GPU
    devices to report their memory).
    """
    growth = enable_memory_growth()
    tf = _tf()
    gpus = []
    physical = tf.config.list_physical_devices("GPU")
    memory = _gpu_memory() if (physical and with_memory) else []
    for index, device in enumerate(physical):
        try:
            details = tf.config.experimental.get_device_details(device)
        except Exception:  # pragma: no cover - depends on the GPU runtime
            details = {}
        cc = details.get("compute_capability")
        gpus.append(Gpu(
            name=details.get("device_name", device.name),
            memory_bytes=memory[index] if index < len(memory) else None,
            compute_capability=tuple(cc) if cc else None,
        ))
    tpus = tuple(d.name for d in tf.config.list_physical_devices("TPU"))
    cpus = 0
    for cpu in tf.config.list_physical_devices("CPU"):
        cpus += len(tf.config.get_logical_device_configuration(cpu) or ()) or 1
    return Devices(gpus=tuple(gpus), tpus=tpus, cpus=max(cpus, 1), memory_growth=growth)


# --------------------------------------------------------------------------- #
# Choices: pure functions of the user's words and the devices
# --------------------------------------------------------------------------- #


def _hint(value: str, choices: Sequence[str], aliases: dict[str, str]) -> str | None:
    if value in aliases and aliases[value] in choices:
        return f"Did you mean '{aliases[value]}'?"
    return did_you_mean(value, choices)


def check_choice(kind: str, value: Any, choices: Sequence[str], aliases: dict[str, str] | None = None) -> str:
    """``value`` lower-cased if it is one of ``choices``; else a KmagicDeviceError with a hint."""
    word = str(value).strip().lower()
    if word not in choices:
        raise KmagicDeviceError(
            f"unknown {kind} '{value}': expected one of {', '.join(choices)}",
            hint=_hint(word, choices, aliases or {}),
        )
    return word


def parse_jit(jit: str | bool | None) -> bool | None:
    """``True``/``False`` for an explicit XLA choice, ``None`` for ``auto``."""
    if jit is None or isinstance(jit, bool):
        return jit
    word = str(jit).strip().lower()
    if word == "auto":
        return None
    if word in _JIT_WORDS:
        return _JIT_WORDS[word]
    raise KmagicDeviceError(
        f"unknown jit setting '{jit}': expected one of {', '.join(JIT_CHOICES)}",
        hint=did_you_mean(word, JIT_CHOICES + tuple(_JIT_WORDS)),
    )


def auto_precision(devices: Devices) -> str:
    """The precision policy ``auto`` picks for these devices."""
    if devices.tpus:
        return "mixed_bfloat16"
    if not devices.gpus:
        return "float32"
    capabilities = [gpu.compute_capability for gpu in devices.gpus]
    known = [cc for cc in capabilities if cc is not None]
    if len(known) != len(capabilities):
        return "float32"
    lowest = min(known)
    if lowest >= (8, 0):
        return "mixed_bfloat16"
    if lowest >= (7, 0):
        return "mixed_float16"
    return "float32"


@dataclass(frozen=True)
class Plan:
    """What a DeviceSetup will be, decided before any strategy object exists."""

    strategy: str  # default | none | mirrored | multiworker | tpu
    replicas: int
    precision: str
    jit: bool
    device: str


def plan(strategy: str | None, precision: str | None, jit: str | bool | None, devices: Devices,
         workers: int = 1) -> Plan:
    """Decide strategy, replicas, precision and XLA for ``devices``; raise on bad combinations.

    ``workers`` is the cluster size for ``multiworker`` (from ``TF_CONFIG``).
    """
    strategy_word = check_choice("strategy", strategy or "auto", STRATEGIES, _STRATEGY_HINTS)
    precision_word = check_choice("precision", precision or "auto", PRECISIONS, _PRECISION_HINTS)
    jit_choice = parse_jit(jit)
    local = len(devices.gpus) or 1
    if strategy_word == "auto":
        strategy_word = "mirrored" if len(devices.gpus) > 1 else "default"
    if strategy_word == "tpu" and not devices.tpus:
        raise KmagicDeviceError(
            "--strategy tpu needs a TPU, and none was found",
            hint="Use --strategy auto here, or run on a TPU machine (a TPU VM, or Colab with a TPU runtime).",
        )
    if strategy_word == "mirrored":
        replicas = len(devices.gpus) if devices.gpus else devices.cpus
    elif strategy_word == "multiworker":
        replicas = workers * local
    elif strategy_word == "tpu":
        replicas = len(devices.tpus)
    else:
        replicas = 1
    if precision_word == "auto":
        precision_word = auto_precision(devices)
    if strategy_word == "tpu" and precision_word == "mixed_float16":
        raise KmagicDeviceError("TPUs do not compute in float16: --precision mixed_float16 cannot run on a TPU",
                                hint="Did you mean 'mixed_bfloat16'?")
    if jit_choice and replicas > 1 and strategy_word in ("mirrored", "multiworker"):
        raise KmagicDeviceError(
            f"--jit on cannot run under --strategy {strategy_word} with {replicas} replicas: Keras's XLA "
            "train step cannot reach the variables mirrored on the other devices",
            hint="Use --jit auto (XLA off here) or --strategy none.",
        )
    if jit_choice is None:
        jit_choice = bool(devices.gpus) and not devices.tpus and replicas == 1 and strategy_word != "multiworker"
    if strategy_word == "tpu":
        jit_choice = False  # TPUStrategy compiles every step with XLA by itself
    device = devices.summary()
    if strategy_word == "multiworker":
        device = f"{workers} workers x {device}"
    return Plan(strategy_word, replicas, precision_word, bool(jit_choice), device)


# --------------------------------------------------------------------------- #
# Strategy objects (created once per process where TensorFlow requires it)
# --------------------------------------------------------------------------- #

_STRATEGY_CACHE: dict[Any, Any] = {}


def read_tf_config() -> dict[str, Any]:
    """The ``TF_CONFIG`` cluster description, checked; a KmagicDeviceError says what is wrong."""
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise KmagicDeviceError(
            "--strategy multiworker reads the cluster from the TF_CONFIG environment variable, which is not set",
            hint=f"Set it on every machine before starting Python, e.g. {example} (index 1 on the second).",
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KmagicDeviceError(f"TF_CONFIG is not valid JSON: {exc.msg} at character {exc.pos}",
                                hint=f"Expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise KmagicDeviceError("TF_CONFIG has no 'cluster' with a 'worker' (or 'chief') list",
                                hint=f"Expected e.g. {example}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise KmagicDeviceError("TF_CONFIG has no 'task' with 'type' and 'index' (which machine this is)",
                                hint=f"Expected e.g. {example}")
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
        raise KmagicDeviceError(
            f"TF_CONFIG's task {task['type']}:{task['index']} is not in its cluster {cluster}")
    return config


def _workers(config: dict[str, Any]) -> int:
    cluster = config["cluster"]
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _is_chief(config: dict[str, Any]) -> bool:
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


def _multiworker_strategy() -> Any:
    if "multiworker" in _STRATEGY_CACHE:
        return _STRATEGY_CACHE["multiworker"]
    tf = _tf()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        if "program startup" not in str(exc):
            raise
        raise KmagicDeviceError(
            "--strategy multiworker has to start before TensorFlow runs anything in this process, "
            "and TensorFlow is running already",
            hint="Restart the kernel and make the multiworker model the first thing it builds.",
        ) from None
    _STRATEGY_CACHE["multiworker"] = strategy
    return strategy


def _tpu_strategy() -> Any:
    if "tpu" in _STRATEGY_CACHE:
        return _STRATEGY_CACHE["tpu"]
    tf = _tf()
    local = bool(tf.config.list_physical_devices("TPU"))
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local" if local else "")
        if not local:
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        raise KmagicDeviceError("--strategy tpu could not start the TPU", detail=str(exc),
                                hint="Check TPU_NAME / the runtime type, or use --strategy auto.") from None
    _STRATEGY_CACHE["tpu"] = strategy
    return strategy


def _mirrored_strategy(use_gpus: bool) -> Any:
    tf = _tf()
    kind = "GPU" if use_gpus else "CPU"
    names = tuple(d.name for d in tf.config.list_logical_devices(kind))
    key = ("mirrored", names)
    if key not in _STRATEGY_CACHE:
        _STRATEGY_CACHE[key] = tf.distribute.MirroredStrategy(devices=list(names))
    return _STRATEGY_CACHE[key]


def _remote_tpu_named() -> bool:
    return any(os.environ.get(name) for name in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ADDRESS"))


# --------------------------------------------------------------------------- #
# DeviceSetup: what the compiler uses
# --------------------------------------------------------------------------- #

_STRATEGY_LABELS = {
    "default": "default", "none": "none", "mirrored": "MirroredStrategy",
    "multiworker": "MultiWorkerMirroredStrategy", "tpu": "TPUStrategy",
}


@dataclass
class DeviceSetup:
    """The device choices one model is built and compiled under."""

    strategy_name: str = "default"
    strategy: Any = None
    replicas: int = 1
    precision: str = "float32"
    jit: bool = False
    device: str = "CPU"
    keras_route: str = "keras"  # "keras" (Keras 3) or "tf_keras" (Keras 2, multiworker)
    is_chief: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss_scaling(self) -> bool:
        """Whether ``compile`` wraps the optimizer in a LossScaleOptimizer (float16 only)."""
        return self.precision == "mixed_float16"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build and compile inside this context.

        Enters the strategy's scope and makes the precision the global dtype
        policy while inside, so the model itself carries the policy (Keras
        adds loss scaling in ``compile`` for ``mixed_float16``); the previous
        global policy comes back on exit.
        """
        mixed = self._mixed_precision_module()
        previous = mixed.global_policy()
        strategy_scope = self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
        with strategy_scope:
            mixed.set_global_policy(self.precision)
            try:
                yield
            finally:
                mixed.set_global_policy(previous)

    def layer_dtype(self, is_output: bool, class_name: str | None = None) -> str | None:
        """The dtype policy for a layer: None keeps Keras's default.

        Output layers stay ``float32`` (stable losses and predictions). Layers
        whose ``dtype`` is the type of their data (``TextVectorization``,
        lookups, ``Input``) get None when ``class_name`` says so.
        """
        if self.precision == "float32" or class_name in DATA_DTYPE_CLASSES:
            return None
        return "float32" if is_output else self.precision

    def keras_module(self) -> Any:
        """The Keras namespace to build with: Keras 3, or tf_keras seen through Keras 3 names."""
        if self.keras_route == "tf_keras":
            from kmagic.keras2 import Keras2Namespace, tf_keras_module

            return Keras2Namespace(tf_keras_module())
        from kmagic._keras import keras

        return keras()

    def adapt_callbacks(self, callbacks: Sequence[Any] | None) -> list[Any]:
        """Callbacks ready for this setup's ``fit``: Keras 3 ones are wrapped for a tf_keras model."""
        callbacks = list(callbacks or [])
        if self.keras_route != "tf_keras":
            return callbacks
        from kmagic.keras2 import keras2_callback, tf_keras_module

        base = tf_keras_module().callbacks.Callback
        return [cb if isinstance(cb, base) else keras2_callback(cb) for cb in callbacks]

    def describe(self) -> dict[str, Any]:
        """What the model card and ``%kdevice`` show."""
        info: dict[str, Any] = {
            "device": self.device,
            "strategy": _STRATEGY_LABELS.get(self.strategy_name, self.strategy_name),
            "replicas": self.replicas,
            "precision": self.precision,
            "jit": "on" if self.jit else "off",
        }
        if self.strategy_name == "tpu":
            info["jit"] = "on (the TPU compiles every step)"
        if self.loss_scaling:
            info["loss_scaling"] = "dynamic"
        if self.keras_route == "tf_keras":
            info["keras"] = "tf_keras (Keras 2)"
        info.update(self.extra)
        return info

    def _mixed_precision_module(self) -> Any:
        if self.keras_route == "tf_keras":
            from kmagic.keras2 import tf_keras_module

            return tf_keras_module().mixed_precision
        from kmagic._keras import keras

        return keras().mixed_precision


def resolve(strategy: str | None = None, precision: str | None = None, jit: str | bool | None = None,
            seed: int | None = None) -> DeviceSetup:
    """Turn the user's ``strategy``/``precision``/``jit`` choices into a DeviceSetup.

    ``None`` means ``auto`` for each. Bad names and combinations raise
    :class:`~kmagic.errors.KmagicDeviceError`. Under ``multiworker`` every
    worker's TensorFlow seed is set to ``seed`` (0 if None): workers must
    shuffle their data the same way for the shards to stay disjoint.
    """
    # Names first: a typo must not wait for TensorFlow to start.
    strategy_word = check_choice("strategy", strategy or "auto", STRATEGIES, _STRATEGY_HINTS)
    check_choice("precision", precision or "auto", PRECISIONS, _PRECISION_HINTS)
    parse_jit(jit)
    workers, chief, multiworker = 1, True, None
    if strategy_word == "multiworker":
        config = read_tf_config()
        from kmagic.keras2 import tf_keras_module

        tf_keras_module()
        workers, chief = _workers(config), _is_chief(config)
        enable_memory_growth()
        multiworker = _multiworker_strategy()  # before anything initialises TensorFlow's runtime
    if strategy_word == "tpu" and _remote_tpu_named():
        _tpu_strategy()  # a remote TPU only shows up once connected
    devices = detect(with_memory=False)
    chosen = plan(strategy_word, precision, jit, devices, workers=workers)
    strategy_object = None
    extra: dict[str, Any] = {}
    if chosen.strategy == "mirrored":
        strategy_object = _mirrored_strategy(use_gpus=bool(devices.gpus))
    elif chosen.strategy == "multiworker":
        strategy_object = multiworker
        _tf().random.set_seed(0 if seed is None else seed)
        extra["workers"] = workers
    elif chosen.strategy == "tpu":
        strategy_object = _tpu_strategy()
    replicas = strategy_object.num_replicas_in_sync if strategy_object is not None else 1
    return DeviceSetup(
        strategy_name=chosen.strategy,
        strategy=strategy_object,
        replicas=replicas,
        precision=chosen.precision,
        jit=chosen.jit,
        device=chosen.device,
        keras_route="tf_keras" if chosen.strategy == "multiworker" else "keras",
        is_chief=chief,
        extra=extra,
    )


# --------------------------------------------------------------------------- #
# %kdevice
# --------------------------------------------------------------------------- #


@dataclass
class DeviceReport:
    """What ``%kdevice`` shows: the devices seen and what ``auto`` would pick."""

    devices: Devices
    auto: Plan
    versions: dict[str, str]
    cluster: str | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        gpus = [gpu.label() for gpu in self.devices.gpus] or ["none"]
        rows = [(f"GPU {i}" if len(gpus) > 1 else "GPU", text) for i, text in enumerate(gpus)]
        rows.append(("TPU", f"{len(self.devices.tpus)} cores" if self.devices.tpus else "none"))
        rows.append(("CPU devices", str(self.devices.cpus)))
        rows.append(("GPU memory growth", self.devices.memory_growth))
        if self.cluster:
            rows.append(("TF_CONFIG cluster", self.cluster))
        rows.append(("auto: strategy", f"{_STRATEGY_LABELS[self.auto.strategy]} ({self.auto.replicas} replica"
                                        f"{'s' if self.auto.replicas != 1 else ''})"))
        loss = " with loss scaling" if self.auto.precision == "mixed_float16" else ""
        rows.append(("auto: precision", self.auto.precision + loss))
        rows.append(("auto: XLA (jit)", "on" if self.auto.jit else "off"))
        rows.extend(self.versions.items())
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "gpus": [{"name": g.name, "memory_bytes": g.memory_bytes,
                      "compute_capability": g.compute_capability} for g in self.devices.gpus],
            "tpus": list(self.devices.tpus),
            "cpus": self.devices.cpus,
            "memory_growth": self.devices.memory_growth,
            "auto": {"strategy": _STRATEGY_LABELS[self.auto.strategy], "replicas": self.auto.replicas,
                     "precision": self.auto.precision, "jit": "on" if self.auto.jit else "off",
                     "device": self.auto.device},
            "versions": dict(self.versions),
            "cluster": self.cluster,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(key) for key, _ in rows)
        lines = [f"{key.ljust(width)}  {value}" for key, value in rows]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.rows())
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<table class='kmagic-device'><tbody>{body}</tbody></table>{notes}"


def device_report() -> DeviceReport:
    """The devices this kernel sees and the strategy, precision and XLA ``auto`` would pick."""
    cluster = None
    notes: list[str] = []
    raw = os.environ.get("TF_CONFIG")
    fresh_multiworker = bool(raw) and "multiworker" not in _STRATEGY_CACHE
    if raw:
        try:
            config = read_tf_config()
            cluster = f"{_workers(config)} workers; this is {config['task']['type']} {config['task']['index']}"
        except KmagicDeviceError as exc:
            cluster = f"invalid: {exc.message}"
    # Reporting GPU memory starts TensorFlow's GPU runtime, which would stop a
    # later --strategy multiworker from starting: skip it then.
    devices = detect(with_memory=not fresh_multiworker)
    if fresh_multiworker and devices.gpus:
        notes.append("GPU memory not shown: TF_CONFIG is set, and reading it would keep --strategy multiworker "
                     "from starting in this kernel.")
    versions = _versions()
    return DeviceReport(devices=devices, auto=plan(None, None, None, devices), versions=versions,
                        cluster=cluster, notes=notes)


def _versions() -> dict[str, str]:
    from kmagic._keras import keras

    versions = {"TensorFlow": _tf().__version__, "Keras": keras().__version__}
    try:
        import tf_keras

        versions["tf_keras (multiworker)"] = tf_keras.__version__
    except ImportError:
        versions["tf_keras (multiworker)"] = "not installed"
    return versions
