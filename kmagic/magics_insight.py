"""The magics that look at a model from outside training: ``%kreport`` and ``%kdiff``.

Each parses its line, calls a plain function (:func:`kmagic.reporting.write_report`,
:func:`kmagic.diff`) and displays or prints the result. ``%ksummary --batch-size/--profile``
and ``%kactivations --explain`` live with their magics in :mod:`kmagic.magics`.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument

from kmagic import magic_args
from kmagic.magics import _display, lazy_magic_arguments
from kmagic.model_check import require_model

LINE_MAGICS = ("kreport", "kdiff")


@magics_class
class InsightMagics(Magics):
    """``%kreport`` and ``%kdiff``."""

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("--to", dest="target", metavar="FILE", help="the .html file to write (default: NAME_report.html)")
    @argument("--validation-data", nargs=2, metavar=("XV", "YV"),
              help="inputs and labels for the confusion matrix (classifiers)")
    @no_var_expand
    @line_magic
    def kreport(self, line: str) -> None:
        """Write one self-contained HTML report: card, diagram, kmodel text, curves, environment."""
        from kmagic.reporting import write_report

        args = magic_args.parse(self.kreport, line, magic_args.user_ns(self.shell))
        model = require_model(magic_args.lookup(args.name, magic_args.user_ns(self.shell), "model", args))
        label = args.name if isinstance(args.name, str) else model.name
        history = magic_args.user_ns(self.shell).get(f"{label}_history")
        validation = None
        if args.validation_data is not None:
            validation = tuple(magic_args.lookup(word, magic_args.user_ns(self.shell), "validation data", args)
                               for word in args.validation_data)
        path = write_report(model, str(args.target or f"{label}_report.html"), history=history,
                            validation_data=validation, title=label)
        print(f"kmagic: wrote the report of {label} to {path}")

    @lazy_magic_arguments()
    @argument("a", metavar="A", help="a model, or kmodel text (a variable name or {expression})")
    @argument("b", metavar="B", help="the model or kmodel text to compare it with")
    @no_var_expand
    @line_magic
    def kdiff(self, line: str) -> None:
        """Compare two models (or kmodel texts): layers added, removed, changed; totals; text diff."""
        from kmagic.model_diff import diff

        args = magic_args.parse(self.kdiff, line, magic_args.user_ns(self.shell))
        sides = [magic_args.lookup(word, magic_args.user_ns(self.shell), "a model or kmodel text", args)
                 for word in (args.a, args.b)]
        label_a, label_b = (word if isinstance(word, str) else _label(side)
                            for word, side in zip((args.a, args.b), sides, strict=True))
        _display(diff(sides[0], sides[1], namespace=magic_args.user_ns(self.shell), names=(label_a, label_b)))


def _label(side: Any) -> str:
    return getattr(side, "name", None) or "text"
