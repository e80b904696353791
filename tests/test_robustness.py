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
from kmagic.errors import KmagicDataError, KmagicError, KmagicSyntaxError

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
