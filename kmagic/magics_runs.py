"""``%kruns``, ``%kcompare`` and ``%klr``: the magics over runs and the learning-rate finder.

Registered by ``%load_ext kmagic`` beside :class:`kmagic.magics.KMagic`;
nothing here imports TensorFlow at load time.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument

from kmagic import magic_args
from kmagic.magics import lazy_magic_arguments

LINE_MAGICS = ("kruns", "kcompare", "klr")


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


class RunsTable:
    """``%kruns``'s output: HTML (best value per column marked) in a notebook, aligned text elsewhere."""

    def __init__(self, runs: list[Any]) -> None:
        self.runs = runs

    def __repr__(self) -> str:
        from kmagic.run_log import RUNS

        return RUNS.text(self.runs)

    def _repr_html_(self) -> str:
        from kmagic.run_log import RUNS

        return RUNS.html(self.runs)


@magics_class
class RunsMagics(Magics):
    """Runs and the learning-rate finder."""

    def _parse(self, magic: Any, line: str) -> Any:
        return magic_args.parse(magic, line, magic_args.user_ns(self.shell))

    @lazy_magic_arguments()
    @argument("model", nargs="?", metavar="NAME", help="only the runs of this model")
    @argument("--last", metavar="N", help="only the last N runs")
    @no_var_expand
    @line_magic
    def kruns(self, line: str) -> None:
        """The runs recorded in this kernel (kmagic.runs) as a table; the best value per column marked."""
        from kmagic.run_log import RUNS, unknown_model

        args = self._parse(self.kruns, line)
        runs = list(RUNS)
        if args.model is not None:
            runs = RUNS.of(str(args.model))
            if not runs:
                raise unknown_model(str(args.model))
        last = magic_args.to_int(args.last, "--last")
        if last:
            runs = runs[-last:]
        _display(RunsTable(runs))

    @lazy_magic_arguments()
    @argument("runs", nargs="+", metavar="RUN", help="run ids (as %%kruns shows them), or a model name for all its runs")
    @no_var_expand
    @line_magic
    def kcompare(self, line: str) -> None:
        """Draw runs together, metric by metric, with a legend saying what differs between them."""
        from kmagic.run_log import RUNS, unknown_model
        from kmagic.widgets.runs_view import CompareView

        args = self._parse(self.kcompare, line)
        runs = []
        for word in args.runs:
            text = str(word)
            if text.strip().lower().removeprefix("run").removeprefix("r").strip().lstrip("#").isdigit():
                runs.append(RUNS.get(text))
            elif RUNS.of(text):
                runs.extend(RUNS.of(text))
            else:
                raise unknown_model(text)
        _display(CompareView(runs))

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("x", metavar="X", help="training inputs: a variable name or {expression}")
    @argument("y", nargs="?", metavar="Y", help="training labels: a variable name or {expression}")
    @argument("--start", metavar="LR", help="first learning rate (default 1e-7)")
    @argument("--end", metavar="LR", help="last learning rate (default 10)")
    @argument("--steps", metavar="N", help="batches in the sweep (default 100)")
    @argument("--batch-size", metavar="N", help="samples per batch (default: the model's fit default, else 32)")
    @argument("--apply", action="store_true", help="set the optimizer's learning rate to the suggestion")
    @no_var_expand
    @line_magic
    def klr(self, line: str) -> None:
        """Learning-rate finder: sweep the rate over a few batches (the model is restored), plot, suggest."""
        from kmagic import training
        from kmagic.buildinfo import info_of
        from kmagic.lr_finder import lr_find

        args = self._parse(self.klr, line)
        from kmagic.model_check import require_model

        model = require_model(magic_args.lookup(args.name, magic_args.user_ns(self.shell), "model", args), args.name)
        x = magic_args.lookup(args.x, magic_args.user_ns(self.shell), "training inputs", args)
        y = None if args.y is None else magic_args.lookup(args.y, magic_args.user_ns(self.shell), "training labels", args)
        options: dict[str, Any] = {
            "start": magic_args.to_float(args.start, "--start", low=0) or 1e-7,
            "end": magic_args.to_float(args.end, "--end", low=0) or 10.0,
            "steps": magic_args.to_int(args.steps, "--steps", minimum=5) or 100,
            "batch_size": (magic_args.to_int(args.batch_size, "--batch-size")
                           or info_of(model).fit_defaults.get("batch_size") or 32),
        }
        adapted = training.adapt_preprocessing(model, x)
        if adapted:
            print(f"kmagic: adapted {', '.join(adapted)} from the training data")
        choice = training.ensure_compiled(model, y, x)
        if choice is not None:
            print(f"kmagic: compiled {args.name} with {choice.describe()}")
        finding = lr_find(model, x, y, apply=args.apply, **options)
        finding.model = str(args.name) if isinstance(args.name, str) else finding.model
        from kmagic.widgets.runs_view import FinderView

        _display(FinderView(finding))
        magic_args.user_ns(self.shell)[f"{finding.model}_lr"] = finding

