"""Issue 11, points 6, 10-13, 15 and 16: histories never stale, bounded resources, clear errors.

Magics run in the real IPython shell (``shell`` fixture); fits are real Keras
fits on tiny data; the big programs are real programs, refused or built.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from typing import Any

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicBuildError, KmagicDataError, KmagicError, KmagicSyntaxError, KmagicValueError

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.timeout(180)

MLP = "%%kmodel net --input 4 --quiet\ndense 8 relu\ndense 3 softmax\ncompile adam scce\n"


@pytest.fixture
def data(shell):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    shell.user_ns.update(X=x, y=y, np=np)
    shell.run_cell(MLP)
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard")
    return shell


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _iterations(model: Any) -> int:
    return int(model.optimizer.iterations.numpy())


# ---------------------------------------------------------------- 6: the history of this fit, whatever ended it

FAILING_GENERATOR = '''
def batches():
    for step in range(100):
        if step == 20:
            raise RuntimeError("sample 20 is corrupt")
        yield X[:8], y[:8]
'''


def test_a_validation_generator_error_names_the_users_line(data) -> None:
    shell = data
    shell.run_cell("def checks():\n    yield X[:8], y[:8]\n    raise ValueError('validation shard 2 is missing')\n")
    with capture_output(), pytest.raises(KmagicDataError) as caught:
        shell.run_cell("%kfit net X y --epochs 1 --batch-size 8 --validation-data {checks()} "
                       "--validation-steps 2 --no-dashboard")
    text = caught.value.render()
    assert "expected the validation data generator to yield batches, received ValueError: validation shard 2 " \
           "is missing" in text, text
    assert "in checks(), line 3" in text and "raise ValueError('validation shard 2 is missing')" in text, text
    assert "Graph execution error" not in text
    assert isinstance(caught.value.__cause__, ValueError)


class RaiseAtBatch(keras.callbacks.Callback):
    def __init__(self, batch: int, exc: BaseException) -> None:
        super().__init__()
        self.batch, self.exc = batch, exc

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch == self.batch:
            raise self.exc


def test_a_generator_error_mid_epoch_rebinds_the_history_and_names_the_users_line(data) -> None:
    shell = data
    earlier = shell.user_ns["net_history"]
    shell.run_cell(FAILING_GENERATOR)
    with capture_output(), pytest.raises(KmagicDataError) as caught:
        shell.run_cell("%kfit net {batches()} --epochs 1 --steps-per-epoch 30 --no-dashboard")
    text = caught.value.render()
    # 15: the user's exception, type and message, and the line of their generator; not TF's UnknownError.
    assert "RuntimeError: sample 20 is corrupt" in text, text
    assert "in batches()" in text and 'raise RuntimeError("sample 20 is corrupt")' in text, text
    assert "Graph execution error" not in text and "stack traces unavailable" not in text
    assert isinstance(caught.value.__cause__, RuntimeError)
    # 6: batches trained (TensorFlow reads ahead, so not exactly 20), so the history is this fit's.
    assert _iterations(shell.user_ns["net"]) > 2 + 10
    assert shell.user_ns["net_history"] is not earlier


@pytest.mark.parametrize("exc", [RuntimeError("callback broke"), ZeroDivisionError("division by zero"),
                                 OSError("disk full")], ids=type)
def test_a_callback_raising_mid_epoch_rebinds_the_history(data, exc: BaseException) -> None:
    from kmagic.buildinfo import info_of

    shell = data
    earlier = shell.user_ns["net_history"]
    info_of(shell.user_ns["net"]).fit_defaults["callbacks"] = [RaiseAtBatch(2, exc)]
    with capture_output(), pytest.raises(type(exc)):
        shell.run_cell("%kfit net X y --epochs 3 --batch-size 8 --no-dashboard")
    bound = shell.user_ns["net_history"]
    assert bound is not earlier and bound.history == {}  # this fit's record: no epoch finished


FAILING_PYDATASET = '''
import keras

class Batches(keras.utils.PyDataset):
    def __len__(self):
        return 30

    def __getitem__(self, index):
        if index == 12:
            raise LookupError(f"no file for batch {index}")
        return X[:8], y[:8]
'''


def test_a_pydataset_error_mid_epoch_is_shown_as_the_users_exception(data) -> None:
    shell = data
    earlier = shell.user_ns["net_history"]
    shell.run_cell(FAILING_PYDATASET)
    with capture_output(), pytest.raises(KmagicDataError) as caught:
        shell.run_cell("%kfit net {Batches()} --epochs 1 --no-dashboard")
    text = caught.value.render()
    assert "received LookupError: no file for batch 12" in text, text
    line = FAILING_PYDATASET.strip().splitlines().index('            raise LookupError(f"no file for batch {index}")') + 1
    assert f"in __getitem__(), line {line} of" in text and 'raise LookupError(f"no file for batch {index}")' in text
    assert "Graph execution error" not in text
    assert shell.user_ns["net_history"] is not earlier


def test_a_generator_failing_before_any_batch_is_named_and_binds_nothing_new(data) -> None:
    shell = data
    earlier = shell.user_ns["net_history"]
    shell.run_cell("def empty_handed():\n    raise KeyError('labels.csv')\n    yield X, y\n")
    with capture_output(), pytest.raises(KmagicDataError, match=r"received KeyError: 'labels.csv'"):
        shell.run_cell("%kfit net {empty_handed()} --epochs 1 --steps-per-epoch 3 --no-dashboard")
    assert shell.user_ns["net_history"] is earlier  # no batch ran: nothing to rebind


# ---------------------------------------------------------------- 16: an interrupt before the first batch


class SigintAtTrainBegin(keras.callbacks.Callback):
    """A kernel interrupt that lands after fit started but before the first batch."""

    def on_train_begin(self, logs: Any = None) -> None:
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("dashboard", [False, True], ids=["text", "dashboard"])
def test_an_interrupt_before_the_first_batch_trains_nothing(data, dashboard: bool) -> None:
    from kmagic.buildinfo import info_of
    from kmagic.callbacks.interrupt import TrainingInterrupted

    shell = data
    model = shell.user_ns["net"]
    before, steps = _weights(model), _iterations(model)
    handler = signal.getsignal(signal.SIGINT)
    info_of(model).fit_defaults["callbacks"] = [SigintAtTrainBegin()]
    flags = "" if dashboard else " --no-dashboard"
    with capture_output(), pytest.raises(TrainingInterrupted, match="stopped before the first batch"):
        shell.run_cell(f"%kfit net X y --epochs 5 --batch-size 8{flags}")
    assert _iterations(model) == steps
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model), strict=True))
    history = shell.user_ns["net_history"]
    assert history.history == {} and history.epoch == []
    assert signal.getsignal(signal.SIGINT) is handler
    info_of(model).fit_defaults["callbacks"] = []
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --batch-size 8 --no-dashboard")
    assert _iterations(model) == steps + 6


def test_an_interrupt_after_a_batch_began_never_counts_as_before_the_first_batch() -> None:
    """Keras may run batch ends later on a worker thread; batch starts are on the training thread."""
    from kmagic.callbacks.interrupt import GracefulInterrupt, StoppedBeforeFirstBatch

    guard = GracefulInterrupt()
    guard.on_train_batch_begin(0)
    guard.interrupted = True  # the interrupt lands while batch 0 runs; its end is not recorded yet
    guard.on_train_batch_begin(1)  # no StoppedBeforeFirstBatch: batch 0 trained
    assert guard.batches_ran == 1 and guard.where() != "before the first batch"
    fresh = GracefulInterrupt()
    fresh.interrupted = True
    with pytest.raises(StoppedBeforeFirstBatch):
        fresh.on_train_batch_begin(0)
    assert fresh.batches_ran == 0 and fresh.where() == "before the first batch"


# ---------------------------------------------------------------- 15: names in messages


@pytest.mark.parametrize(("line", "needle"), [
    ("net {None} y", "expected the training inputs {None}, received None"),
    ("net {X if False else None} y", "expected the training inputs {X if False else None}, received None"),
])
def test_kfit_names_an_expression_whose_value_is_none(data, line: str, needle: str) -> None:
    with pytest.raises(KmagicDataError) as caught:
        data.run_cell(f"%kfit {line} --no-dashboard")
    assert needle in caught.value.render()


@pytest.mark.parametrize(("char", "name"), [
    ("\u00a0", "U+00A0 (NO-BREAK SPACE)"), ("\ufeff", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
    ("\u200b", "U+200B (ZERO WIDTH SPACE)"), ("\x00", "U+0000 (a control character)"),
    ("\u2028", "U+2028 (LINE SEPARATOR)"), ("\u3000", "U+3000 (IDEOGRAPHIC SPACE)"),
])
def test_invisible_characters_are_named_by_code_point_where_they_are(shell, char: str, name: str) -> None:
    body = f"input 4\ndense 8 relu\ndense{char}3\n"
    with pytest.raises(KmagicSyntaxError) as caught:
        kmagic.parse(body)
    error = caught.value
    assert name in error.message and (error.line, error.column) == (3, 6), error.render()
    assert char not in error.render() and "dense\N{REPLACEMENT CHARACTER}3" in error.render()
    with pytest.raises(KmagicSyntaxError, match=re.escape(name)):
        shell.run_cell(f"%%kmodel net --quiet\n{body}")


def test_a_bom_at_the_start_of_a_body_is_named() -> None:
    with pytest.raises(KmagicSyntaxError, match=r"U\+FEFF") as caught:
        kmagic.parse("\ufeffinput 4\ndense 2")
    assert (caught.value.line, caught.value.column) == (1, 1)


# ---------------------------------------------------------------- 12: strings and escapes


@pytest.mark.parametrize(("written", "value"), [
    (r"'C:\Users\me\m.keras'", "C:\\Users\\me\\m.keras"),  # invalid escapes keep their backslash
    (r"'\N{nope}'", "\\N{nope}"),
    (r"'\x4'", "\\x4"),
    (r"'\U0001F600 \N{BULLET} \x41\101'", "\U0001F600 \N{BULLET} AA"),
    (r"'tab\tnew\nline'", "tab\tnew\nline"),
    (r"'it\'s' ", "it's"),
    (r'"say \"hi\""', 'say "hi"'),
    (r"'ends with \\'", "ends with \\"),
    (r"'C:\\data\\m.keras'", "C:\\data\\m.keras"),
])
def test_string_escapes_follow_the_documented_rule(written: str, value: str) -> None:
    program = kmagic.parse(f"input 4\ndense 2 name={written}")
    assert program.ops[-1].kwargs["name"].value == value


def test_a_string_escape_for_a_lone_surrogate_is_a_syntax_error_at_the_string() -> None:
    with pytest.raises(KmagicSyntaxError, match="lone surrogate") as caught:
        kmagic.parse("input 4\ndense 2 name='\\ud800'")
    assert (caught.value.line, caught.value.column) == (2, 14)


def test_a_raw_lone_surrogate_and_nul_are_syntax_errors() -> None:
    for char in ("\ud800", "\x00"):
        with pytest.raises(KmagicSyntaxError):
            kmagic.parse(f"input 4\ndense 2 name='a{char}b'")


@pytest.mark.parametrize("value", ["C:\\Users\\me\\m.keras", "tab\there", "quote ' and \"", "\U0001F600 é",
                                   "back\\slash\\n"])
def test_strings_written_by_codegen_read_back_to_the_same_value(value: str) -> None:
    from kmagic.codegen import _value_text

    program = kmagic.parse(f"input 4\ndense 2 name={_value_text(value)}")
    assert program.ops[-1].kwargs["name"].value == value


def test_a_checkpoint_path_with_backslashes_reaches_the_callback(tmp_path) -> None:
    model = kmagic.build("input 4\ndense 2\nfit callbacks=[checkpoint('C:\\Users\\me\\m.keras')]")
    from kmagic.buildinfo import info_of

    callback = info_of(model).fit_defaults["callbacks"][0]
    assert callback.filepath == "C:\\Users\\me\\m.keras"


def test_very_long_numbers_are_a_syntax_error() -> None:
    with pytest.raises(KmagicSyntaxError, match="at most 100 characters"):
        kmagic.parse("input 4\ndense " + "9" * 5000)


def test_only_kmagic_errors_leave_parse_for_hostile_strings() -> None:
    hostile = ["'\\", "'\\'", "'\\N{", "'\\N{LATIN SMALL LETTER A}'", "'\\777'", "'\\U00110000'", "'\\uD83D\\uDE00'",
               "'\\x'", "'a\\\nb'", "\"\\\"", "'\ud83d'"]
    for text in hostile:
        with contextlib.suppress(KmagicError):
            kmagic.parse(f"input 4\ndense 2 name={text}")


# ---------------------------------------------------------------- 10: weights that would not fit


@pytest.fixture
def weight_limit():
    from kmagic import limits

    yield limits
    limits.set_max_weight_bytes(None)


@pytest.mark.parametrize(("body", "word", "needs"), [
    ("input 100\ndense 150000000", "dense", "60.6 GB (15,150,000,000 parameters)"),
    ("input 8 dtype=int32\nembedding 150000000 64", "embedding", "38.4 GB (9,600,000,000 parameters)"),
    ("input 32x32x3\nconv 4 3\nconv 2000000 3", "conv", "296.0 MB (74,000,000 parameters)"),
], ids=["dense", "embedding", "conv"])
def test_weights_over_the_limit_are_refused_before_they_are_allocated(weight_limit, body, word, needs) -> None:
    import resource

    weight_limit.set_max_weight_bytes(100_000_000)  # 100 MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(KmagicBuildError) as caught:
        kmagic.build(body)
    text = caught.value.render()
    assert f"'{word}' could not be built: expected weights of at most 100.0 MB in all" in text, text
    assert f"weights need {needs}" in text, text
    assert caught.value.line == body.count("\n") + 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 250, grown_mb  # nothing near the size of the weights was allocated


def test_the_limit_counts_the_whole_model_and_a_model_under_it_builds(weight_limit) -> None:
    weight_limit.set_max_weight_bytes(10_000)
    model = kmagic.build("input 8\ndense 100\ndense 10")  # (8*100+100 + 100*10+10) * 4 = 7,640 bytes
    assert model.count_params() == 1910
    with pytest.raises(KmagicBuildError, match=r"on top of 7.6 KB before it") as caught:
        kmagic.build("input 8\ndense 100\ndense 10\ndense 100")
    assert caught.value.line == 4


def test_the_limit_is_a_kmagic_setting_and_defaults_to_a_quarter_of_memory(shell, weight_limit) -> None:
    assert weight_limit.max_weight_bytes() == weight_limit.physical_memory() // 4
    shell.run_line_magic("config", "KMagic.max_weight_bytes = 1000")
    assert weight_limit.max_weight_bytes() == 1000
    with pytest.raises(KmagicBuildError, match=r"at most 1.0 KB in all \(%config KMagic.max_weight_bytes\)"):
        shell.run_cell("%%kmodel big --input 8 --quiet\ndense 100\n")
    assert "big" not in shell.user_ns
    shell.run_line_magic("config", "KMagic.max_weight_bytes = 0")
    assert weight_limit.max_weight_bytes() == weight_limit.physical_memory() // 4
    with pytest.raises(KmagicError, match="whole number of bytes"):
        weight_limit.set_max_weight_bytes(-5)


# ---------------------------------------------------------------- 11: programs too big to build


@pytest.mark.parametrize("body", [
    "input 4\nrepeat 10000: dense 1",
    "input 4\n" + "dense 1\n" * 19_998,
    "block two:\n    dense 1\n    dense 1\ninput 4\nrepeat 1500: two",
], ids=["repeat", "lines", "blocks"])
def test_programs_over_the_layer_limit_are_refused_at_once(body: str) -> None:
    import time

    from kmagic.limits import MAX_LAYERS

    start = time.perf_counter()
    with pytest.raises(KmagicValueError, match=f"expected a model of at most {MAX_LAYERS:,} layers") as caught:
        kmagic.build(body)
    assert time.perf_counter() - start < 20  # was 68 s and 1.7 GB, or a crash
    assert caught.value.line >= 2


def test_deep_programs_build_without_hitting_the_recursion_limit() -> None:
    """Keras recurses once per layer to connect a model: a chain deeper than the recursion limit still builds."""
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(400)  # what 1,000 is to a 1,000-layer program, at a size a test can afford
    try:
        model = kmagic.build("input 4\nrepeat 450: dense 1")
    finally:
        sys.setrecursionlimit(before)
    assert len(model.layers) == 451
    assert sys.getrecursionlimit() == before


# ---------------------------------------------------------------- 13: from_keras with a Python function


def _sin_model() -> Any:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation=keras.ops.sin)(inputs))


def test_from_keras_refuses_a_python_function_naming_it() -> None:
    with pytest.raises(KmagicValueError) as caught:
        kmagic.from_keras(_sin_model())
    text = caught.value.render()
    assert "cannot write layer 'dense" in text and "the Python function 'sin'" in text and "'activation'" in text


def test_kexport_refuses_a_python_function_naming_it(shell) -> None:
    shell.user_ns["sin_model"] = _sin_model()
    with pytest.raises(KmagicValueError, match="the Python function 'sin'"):
        shell.run_cell("%kexport sin_model")


def test_from_keras_refuses_a_lambda_activation() -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation=lambda t: t * 2)(inputs))
    with pytest.raises(KmagicValueError, match="cannot write layer"):
        kmagic.from_keras(model)


def test_from_keras_still_writes_keras_activations() -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation=keras.activations.gelu)(inputs))
    assert "dense 3 gelu" in kmagic.from_keras(model)
