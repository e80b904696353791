"""``kmagic.fit``: the whole ``%kfit`` workflow as one Python function.

Prepare the data (:mod:`kmagic.datafeed`), check it against the model
(:mod:`kmagic.datacheck`), adapt preprocessing layers, compile with inferred
defaults when the model is not compiled, train with progress (the live
dashboard or one text line per epoch) and a graceful first kernel interrupt,
and return Keras's ``History``. ``%kfit`` parses its line and calls :func:`fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmagic.errors import KmagicDataError, KmagicUsageError
from kmagic.model_check import require_model

PROGRESS_CHOICES = ("dashboard", "text", None)


def progress_callback(progress: str | None, *, show: bool = True, stop_on_nan: bool = True,
                      refresh_interval: float = 0.25, batch_size: int | None = None,
                      validation_data: Any = None, compare: Any = None, final_image: bool = True) -> Any:
    """The dashboard callback (its own text mode where no widget front end is attached), epoch-end
    text, or None.

    ``compare``: earlier runs drawn faded under the dashboard's curves (``Dashboard(compare=...)``)."""
    from kmagic import training

    if progress is None:
        return None
    if progress == "dashboard":
        from kmagic.widgets.dashboard import Dashboard

        return Dashboard(refresh_interval=refresh_interval, stop_on_nan=stop_on_nan, batch_size=batch_size,
                         validation_data=validation_data, show=show, compare=compare or None,
                         final_image=final_image)
    write = print if show else (lambda _text: None)
    return training.epoch_text_callback(write, stop_on_nan=stop_on_nan)


def _prepare(model: Any, x: Any, y: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    """Everyday data (text, pandas, lists) as Keras takes it, validation data and weights too."""
    from kmagic import datacheck, datafeed

    x = datafeed.prepare_dataset(model, x) if datacheck.is_streamed(x) else datafeed.prepare_inputs(model, x)
    y = datafeed.prepare_labels(model, y)
    if options.get("validation_data") is not None:
        options["validation_data"] = datafeed.prepare_validation(model, options["validation_data"])
    if options.get("sample_weight") is not None:
        options["sample_weight"] = datafeed.prepare_weights(options["sample_weight"])
    return x, y


def _build_if_needed(model: Any, x: Any) -> None:
    """A Sequential model not built yet gets its input shape from X (arrays only)."""
    try:
        model.outputs  # noqa: B018 - raises for a model without a graph
    except (AttributeError, ValueError):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) >= 1 and hasattr(model, "build"):
            model.build((None, *tuple(shape)[1:]))


def fit(model: Any, x: Any, y: Any = None, *, progress: str | None = "dashboard",
        steps_per_execution: int | None = None, stop_on_nan: bool = True, refresh_interval: float = 0.25,
        names: tuple[str, str] = ("X", "Y"), on_history: Callable[[Any], None] | None = None,
        compare: Any = None, final_image: bool = True, **fit_options: Any) -> Any:
    """Train ``model`` on ``x`` (and labels ``y``) the way ``%kfit`` does; Keras's ``History``.

    ``progress``: ``"dashboard"`` (the live widget; text where widgets are missing), ``"text"``
    (one line per epoch) or None. ``fit_options`` are ``model.fit``'s keywords (epochs,
    batch_size, validation_data, validation_split, callbacks, class_weight, sample_weight,
    steps_per_epoch, validation_steps, initial_epoch, shuffle, ...); they win over the
    ``fit`` line of the model's ``%%kmodel`` body, whose callbacks are kept and run first.
    ``steps_per_execution`` sets how many batches one compiled call runs. ``names`` are how
    X and Y are called in messages; ``on_history`` receives the History of this fit as soon
    as there is one (also when an error or a second interrupt ends training). ``compare``: earlier
    runs (``True`` for this model's, run ids, or a list of runs) drawn faded under the dashboard's
    curves; ``final_image=False`` leaves out the dashboard's final PNG (``%kfit --repeat`` draws one
    image of all its runs instead). Every fit with progress is recorded as a run in ``kmagic.runs``.

    A first kernel interrupt stops training at the end of the batch and raises
    :class:`~kmagic.callbacks.interrupt.TrainingInterrupted` (its ``history`` attribute holds
    the History); the model keeps the weights trained so far.
    """
    from kmagic import datacheck, training
    from kmagic.buildinfo import info_of
    from kmagic.callbacks.interrupt import TrainingInterrupted

    require_model(model)
    if progress not in PROGRESS_CHOICES:
        raise KmagicUsageError(f"expected progress to be 'dashboard', 'text' or None, received {progress!r}")
    if fit_options.get("validation_split") is not None and fit_options.get("validation_data") is not None:
        raise KmagicUsageError("expected validation_split or validation_data, received both")
    info = info_of(model)
    options = training.fit_arguments(info.fit_defaults, fit_options)
    x, y = _prepare(model, x, y, options)
    _build_if_needed(model, x)
    datacheck.check_steps(x, options, names[0])
    check: dict[str, Any] = {"names": names, "validation_data": options.get("validation_data"),
             "validation_split": options.get("validation_split")}
    samples = datacheck.check_fit_data(model, x, y, **check)  # before anything changes the model
    datacheck.check_sample_weight(x, options.get("sample_weight"), samples)
    adapted = training.adapt_preprocessing(model, x)
    if adapted and progress is not None:
        print(f"kmagic: adapted {', '.join(adapted)} from the training data")
    choice = training.ensure_compiled(model, y, x, steps_per_execution=steps_per_execution)
    if choice is not None:
        if progress is not None:
            print(f"kmagic: compiled {model.name} with {choice.describe()}")
        datacheck.check_loss_fit(model, y, **check)  # the labels against the inferred loss
    datacheck.check_metric_labels(model, y)
    options.setdefault("verbose", 0)
    if datacheck.is_streamed(x):
        options.setdefault("shuffle", False)  # Keras ignores it there, with a warning for the default True
    setup = info.setup
    batch_size = options.get("batch_size") or (None if datacheck.is_streamed(x) else 32)
    callback = progress_callback(progress, show=getattr(setup, "is_chief", True), stop_on_nan=stop_on_nan,
                                 refresh_interval=refresh_interval, batch_size=batch_size,
                                 validation_data=training.validation_part(x, y, options), compare=compare,
                                 final_image=final_image)
    if callback is None:  # nothing shown: still recorded as a run
        from kmagic.callbacks.run_recorder import RunRecorder

        callback = RunRecorder()
    recorders = [callback]
    options["callbacks"] = [*list(options.get("callbacks") or []), *recorders]
    from kmagic.widgets.frontend import test_mode

    if test_mode():
        from kmagic._keras import keras

        keras().utils.set_random_seed(0)  # shuffling and dropout repeat run after run
    adapt = getattr(setup, "adapt_callbacks", None) if setup is not None else None
    from kmagic import run_log

    recorded = {key: value for key, value in fit_options.items() if value is not None and key != "callbacks"}
    with run_log.recording(model=model.name, options=recorded, route="kmagic.fit"):  # %kfit's facts win
        outcome = training.run_fit(model, x, y, options, recorders=recorders, adapt_callbacks=adapt, bind=on_history)
    history = outcome.history  # the one place a fit's History comes from
    if outcome.interrupted and not outcome.batches_done:
        stopped = TrainingInterrupted(f"training of {model.name} stopped before the first batch (kernel "
                                      "interrupt); the weights are unchanged and the history has no epoch")
        stopped.history = history
        raise stopped
    if outcome.interrupted:
        where = callback.history.where_stopped() if hasattr(callback, "history") else ""
        stopped = TrainingInterrupted(f"training of {model.name} stopped at {where or outcome.where} (kernel "
                                      "interrupt); the model keeps the weights trained so far")
        stopped.history = history
        raise stopped
    return history


__all__ = ["KmagicDataError", "fit", "progress_callback"]
