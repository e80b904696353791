"""The learning-rate finder: exact restore, suggestion in the swept range, explosion stop, schedules, %klr."""

from __future__ import annotations

import math

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicValueError
from kmagic.lr_finder import LRFinding, _valley, optimizer_variables


def _data(n: int = 256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (x[:, :1] * 2.0 - x[:, 1:2] + 0.1 * rng.normal(size=(n, 1))).astype("float32")


def _model(optimizer="adam"):
    from kmagic._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((8,)), k.layers.Dense(16, activation="relu"), k.layers.BatchNormalization(),
                          k.layers.Dropout(0.2), k.layers.Dense(1)], name="reg")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _state(model):
    variables = [*model.variables, *optimizer_variables(model.optimizer)]
    return {v.path: np.array(v.numpy(), copy=True) for v in variables}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weights_and_optimizer_state_are_restored_bit_for_bit(optimizer: str) -> None:
    model = _model(optimizer)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # moments, iterations and BatchNorm statistics are set
    before = _state(model)
    finding = kmagic.lr_find(model, x, y, steps=40, end=1.0)
    after = _state(model)
    assert len(finding.lrs) > 5
    assert before.keys() == after.keys() and len(before) >= len(model.variables) + 2
    for path, value in before.items():
        assert value.dtype == after[path].dtype and np.array_equal(value, after[path]), path
    assert int(model.optimizer.iterations.numpy()) == 256 // 32


def test_suggestion_lies_in_the_swept_range_and_names_its_rule() -> None:
    model = _model()
    x, y = _data()
    finding = kmagic.lr_find(model, x, y, start=1e-6, end=1.0, steps=80)
    assert finding.suggestion is not None
    assert finding.lrs[0] <= finding.suggestion <= finding.lrs[-1]
    assert 1e-6 <= finding.suggestion <= 1.0
    assert finding.rule.startswith(("valley", "steepest descent"))
    assert set(finding.suggestions) <= {"valley", "steepest descent"} and finding.suggestions
    assert all(finding.lrs[i] < finding.lrs[i + 1] for i in range(len(finding.lrs) - 1))
    assert finding.lrs[0] == pytest.approx(1e-6)
    text = finding.text()
    assert f"suggested learning rate {finding.suggestion:.2e}" in text and "restored" in text
    assert finding.png().startswith(b"\x89PNG")


def test_sweep_stops_when_the_loss_explodes() -> None:
    model = _model("sgd")
    x, y = _data()
    finding = kmagic.lr_find(model, x, y, start=1e-4, end=100.0, steps=100)
    assert finding.stopped and len(finding.lrs) < 100
    last = finding.smoothed[-1]
    assert not math.isfinite(last) or last > 4 * min(v for v in finding.smoothed if math.isfinite(v))


def test_apply_sets_the_optimizer_learning_rate() -> None:
    model = _model()
    x, y = _data()
    finding = kmagic.lr_find(model, x, y, steps=40, end=1.0, apply=True)
    assert finding.applied
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(finding.suggestion, rel=1e-6)


def test_a_schedule_is_refused_with_a_clear_message() -> None:
    from kmagic._keras import keras

    schedule = keras().optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.9)
    model = _model(keras().optimizers.Adam(schedule))
    x, y = _data()
    with pytest.raises(KmagicValueError, match=r"expected an optimizer with a fixed learning rate, received a "
                                               r"learning-rate schedule \(ExponentialDecay\) on Adam"):
        kmagic.lr_find(model, x, y)


def test_an_uncompiled_model_and_bad_ranges_are_refused() -> None:
    from kmagic._keras import keras

    k = keras()
    model = k.Sequential([k.Input((8,)), k.layers.Dense(1)])
    x, y = _data()
    with pytest.raises(KmagicValueError, match="expected a compiled model"):
        kmagic.lr_find(model, x, y)
    with pytest.raises(KmagicValueError, match=r"expected 0 < start < end"):
        kmagic.lr_find(_model(), x, y, start=1.0, end=1e-3)


def test_valley_rule_matches_fastai_on_a_known_curve() -> None:
    lrs = [10 ** (-6 + i * 0.1) for i in range(40)]
    losses = [2.0] * 10 + [2.0 - 0.1 * i for i in range(1, 16)] + [0.5 + 0.3 * i for i in range(15)]
    # the longest decreasing run ends at 24 and is 16 long: fastai's max_start = 24 - 16 = 8, sections = 16/3,
    # index = 8 + int(16/3) + int(16/3/2) = 15
    assert _valley(lrs, losses) == lrs[15]
    assert _valley(lrs, [1.0, 2.0, 3.0, 4.0]) is None  # no stretch of three falling points


def test_klr_magic_compiles_shows_and_binds_the_finding(shell) -> None:
    x, y = _data()
    shell.user_ns.update(X=x, Y=y)
    shell.run_cell("%%kmodel reg --quiet\ninput 8\ndense 16 relu\ndense 1\n")
    with capture_output() as captured:
        shell.run_line_magic("klr", "reg X Y --start 1e-5 --end 1 --steps 50 --apply")
    assert "compiled reg with optimizer=adam" in captured.stdout
    view = captured.outputs[-1].data
    assert "suggested learning rate" in view["text/plain"] and "applied:" in view["text/plain"]
    assert "image/png" in view
    finding = shell.user_ns["reg_lr"]
    assert isinstance(finding, LRFinding) and len(finding.lrs) <= 50
    lr = float(shell.user_ns["reg"].optimizer.learning_rate.numpy())
    assert lr == pytest.approx(finding.suggestion, rel=1e-6)


def test_loss_scale_optimizer_state_is_restored_too() -> None:
    """Mixed float16: the loss scale and its step counter are optimizer state like the moments."""
    from kmagic._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((8,)), k.layers.Dense(16, activation="relu", dtype="mixed_float16"),
                          k.layers.Dense(1, dtype="float32")])
    model.compile(optimizer=k.optimizers.LossScaleOptimizer(k.optimizers.Adam()), loss="mse")
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    before = _state(model)
    assert any("scale" in path for path in before)  # the wrapper's own variables are in the copy
    finding = kmagic.lr_find(model, x, y, steps=30, end=1.0, apply=True)
    after = _state(model)
    changed = [p for p in before if not np.array_equal(before[p], after[p])]
    inner_rate = model.optimizer.inner_optimizer._learning_rate.path
    assert changed == [inner_rate]  # only the applied rate, on the inner optimizer that uses it
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(finding.suggestion, rel=1e-3)
