"""The IPython magics: parse the magic line, call plain functions, bind results, display.

``%load_ext kmagic`` calls :func:`register`; nothing here imports TensorFlow,
Keras, numpy or widgets at load time: each magic imports what it needs.
Settings are traitlets of :class:`KMagic`, so ``%config KMagic.<name> = value``
works.
"""

from __future__ import annotations

import weakref
from argparse import Namespace
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Enum, Float, Int, observe

from kmagic import magic_args
from kmagic.devices import JIT_CHOICES, PRECISIONS, STRATEGIES  # stdlib-only module: loading stays fast
from kmagic.errors import KmagicError, KmagicUsageError
from kmagic.model_check import is_model, require_model

LINE_MAGICS = ("kfit", "kcompile", "ksummary", "kactivations", "kweights", "ksave", "kload", "kexport", "kmodels",
               "kdevice")
CELL_MAGICS = ("kmodel", "kblock")

#: Blocks defined per shell; kept across %reload_ext (this module is not reloaded).
_BLOCK_LIBRARIES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def lazy_magic_arguments(name: str | None = None) -> Any:
    """IPython's ``magic_arguments``, with the parser and the generated help built on first use.

    Building eleven argparse parsers (and their help text) at class creation
    was most of ``%load_ext``'s time. ``%magic?`` still shows the help made
    from the ``@argument`` lines: IPython's inspector asks ``getdoc()`` first.
    """

    def decorate(func: Any) -> Any:
        def build_parser() -> Any:
            if "parser" not in func.__dict__:
                magic_arguments(name)(func)  # appends itself, builds func.parser and func.__doc__
            return func.parser

        func.build_parser = build_parser
        func.getdoc = lambda: (build_parser(), func.__doc__)[1]
        return func

    return decorate


@magics_class
class KMagic(Magics):
    """kmagic's magics and their settings (``%config KMagic``)."""

    refresh_interval = Float(0.25, config=True, help="Seconds between dashboard redraws (wall time).")
    precision = Enum(PRECISIONS, "auto", config=True, help="Default --precision of %%kmodel.")
    strategy = Enum(STRATEGIES, "auto", config=True, help="Default --strategy of %%kmodel.")
    jit = Enum(JIT_CHOICES, "auto", config=True, help="Default --jit (XLA) setting of %%kmodel.")
    dashboard = Bool(True, config=True, help="Show the live dashboard in %kfit (False: one text line per epoch).")
    stop_on_nan = Bool(True, config=True, help="Stop training when the loss becomes NaN or infinite.")
    widgets = Enum(("auto", "on", "off"), "auto", config=True,
                   help="Model card as a widget: auto (when a kernel front end is attached), on, off.")
    max_weight_bytes = Int(0, config=True, help="Most bytes a model's weights may take; 0: a quarter of the "
                                                "machine's memory. Checked before any weight is allocated.")

    @observe("max_weight_bytes")
    def _max_weight_bytes_changed(self, change: dict[str, Any]) -> None:
        from kmagic import limits

        limits.set_max_weight_bytes(change["new"])

    @property
    def blocks(self) -> dict[str, Any]:
        """The blocks this shell has defined (``%%kblock`` and ``block`` lines)."""
        return _BLOCK_LIBRARIES.setdefault(self.shell, {})

    # ---------------------------------------------------------------- helpers
    def _parse(self, magic: Any, line: str) -> Namespace:
        return magic_args.parse(magic, line, magic_args.user_ns(self.shell))

    def _model(self, word: Any, args: Namespace | None) -> Any:
        return require_model(magic_args.lookup(word, magic_args.user_ns(self.shell), "model", args), word)

    def _data(self, word: Any, args: Namespace, what: str) -> Any:
        return None if word is None else magic_args.lookup(word, magic_args.user_ns(self.shell), what, args)

    def _card(self, model: Any, plot: bool = False, batch_size: int | None = None, profile: Any = None) -> Any:
        from kmagic.widgets.model_card import ModelCard

        widget = {"on": True, "off": False}.get(self.widgets)
        memory = times = None
        if batch_size is not None:
            from kmagic.cost import training_memory

            memory = training_memory(model, batch_size)
        if profile is not None:
            from kmagic.cost import layer_times

            times = layer_times(model, profile)
        return ModelCard(model, plot=plot, widget=widget, memory=memory, times=times)

    # ---------------------------------------------------------------- %%kmodel
    @lazy_magic_arguments(name="%kmodel")
    @argument("name", metavar="NAME", help="the variable the model is bound to")
    @argument("--input", dest="input_shape", metavar="SHAPE",
              help="input shape when the body has no input line: 28x28x1, ?x16, 100, (None, 16)")
    @argument("--precision", metavar="P", help=f"precision policy: {', '.join(PRECISIONS)}")
    @argument("--jit", metavar="J", help=f"XLA compilation: {', '.join(JIT_CHOICES)}")
    @argument("--strategy", metavar="S", help=f"distribution strategy: {', '.join(STRATEGIES)}")
    @argument("--seed", metavar="N", help="random seed for the initial weights")
    @argument("--quiet", action="store_true", help="show nothing")
    @argument("--plot", action="store_true", help="show the architecture diagram large")
    @argument("--batch-size", metavar="B", help="add the memory of one training step at this batch size to the card")
    @no_var_expand
    @cell_magic
    def kmodel(self, line: str, cell: str) -> None:
        """Compile the cell body (the kmodel language) into a Keras model bound to NAME; show its card."""
        from kmagic.compile import build_program
        from kmagic.dsl.check import parse

        args = self._parse(self.kmodel, line)
        name = magic_args.identifier(args.name, args=args)
        input_shape = magic_args.to_shape(args.input_shape, args=args)
        precision = magic_args.to_choice(args.precision or self.precision, "--precision", PRECISIONS, args)
        jit = magic_args.to_choice(args.jit or self.jit, "--jit", JIT_CHOICES, args)
        strategy = magic_args.to_choice(args.strategy or self.strategy, "--strategy", STRATEGIES, args)
        seed = magic_args.to_int(args.seed, "--seed", minimum=0, args=args)
        if seed is None and _test_mode():
            seed = 0  # KMAGIC_TEST_MODE: the same initial weights run after run
        program = parse(cell, input_shape=input_shape, blocks=self.blocks)  # no Keras yet
        model, _ = build_program(program, name=name, namespace=magic_args.user_ns(self.shell), precision=precision,
                                 jit=jit, strategy=strategy, seed=seed)
        self.blocks.update(program.blocks)
        magic_args.user_ns(self.shell)[name] = model
        if not args.quiet:
            _display(self._card(model, plot=args.plot, batch_size=magic_args.to_int(args.batch_size, "--batch-size")))

    @lazy_magic_arguments(name="%kblock")
    @argument("header", metavar="NAME(params)", help="the block's name and parameters, e.g. down(f, k=3)")
    @no_var_expand
    @cell_magic
    def kblock(self, line: str, cell: str) -> None:
        """Define a reusable block NAME(params) for later %%kmodel cells."""
        from kmagic.dsl.check import parse_block

        self._parse(self.kblock, line)  # usage errors only; the header is DSL text
        block = parse_block(line, cell, blocks=self.blocks)
        self.blocks[block.name] = block

    # ---------------------------------------------------------------- %kfit
    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("x", metavar="X", help="training inputs: a variable name or {expression}")
    @argument("y", nargs="?", metavar="Y", help="training labels: a variable name or {expression}")
    @argument("--epochs", metavar="N", help="number of epochs")
    @argument("--batch-size", metavar="N", help="samples per batch")
    @argument("--validation-split", metavar="F", help="fraction of the data held out for validation")
    @argument("--validation-data", nargs="+", metavar=("XV", "YV"),
              help="validation data: one dataset, or inputs and labels (XV YV)")
    @argument("--callbacks", metavar="{list}", help="Keras callbacks, added after the body's fit callbacks")
    @argument("--class-weight", metavar="{dict}", help="weight of each class in the loss: {{0: 1, 1: 5}}")
    @argument("--sample-weight", metavar="W", help="one weight per training sample (an array)")
    @argument("--steps-per-epoch", metavar="N", help="batches per epoch (needed for endless data)")
    @argument("--validation-steps", metavar="N", help="validation batches per epoch")
    @argument("--initial-epoch", metavar="N", help="the epoch to start at (to resume training)")
    @argument("--shuffle", dest="shuffle", action="store_true", default=None, help="shuffle the samples each epoch")
    @argument("--no-shuffle", dest="shuffle", action="store_false", help="keep the samples in order")
    @argument("--no-dashboard", action="store_true", help="one text line per epoch instead of the dashboard")
    @argument("--steps-per-execution", metavar="N", help="batches per compiled call")
    @argument("--compare", action="store_true", help="draw the earlier runs of this model faded under the curves")
    @argument("--repeat", metavar="N", help="train N times from fresh weights, seeds 0..N-1; keep the best run")
    @no_var_expand
    @line_magic
    def kfit(self, line: str) -> None:
        """Adapt preprocessing layers, compile with inferred defaults if needed, train with the live
        dashboard, and bind the history to NAME_history. Options win over the body's fit line."""
        from kmagic.callbacks.interrupt import TrainingInterrupted
        from kmagic.fitting import fit

        args = self._parse(self.kfit, line)
        model = self._model(args.name, args)
        x, y = self._data(args.x, args, "training inputs"), self._data(args.y, args, "training labels")
        label = args.name if isinstance(args.name, str) else model.name
        history_name = f"{label}_history"
        options = magic_args.fit_options(args, lambda word, what: self._data(word, args, what))

        def bind(history: Any) -> None:
            magic_args.user_ns(self.shell)[history_name] = history

        from kmagic.fit_runs import FitRuns  # runs (kmagic.runs), --repeat and --compare

        progress = "text" if args.no_dashboard or not self.dashboard else "dashboard"
        runs = FitRuns(model, label, options, repeat=magic_args.to_int(args.repeat, "--repeat"),
                       compare=args.compare, seed=0 if _test_mode() else None)
        for seed in runs.seeds():
            with runs.recording(seed):
                try:
                    fit(model, x, y, progress=progress, stop_on_nan=self.stop_on_nan,
                        refresh_interval=self.refresh_interval, names=(_word_of(args, args.x, "x"), _word_of(args, args.y, "y")),
                        on_history=bind, compare=runs.faded(), final_image=not runs.repeat, **options)
                except TrainingInterrupted as stopped:
                    raise TrainingInterrupted(f"{stopped}; {history_name} holds every finished epoch") from None
        runs.finish()

    # ---------------------------------------------------------------- %kcompile
    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("words", nargs="*", metavar="WORDS",
              help="the words of a body's compile line: adam(lr=1e-5) scce metrics=[accuracy]")
    @no_var_expand
    @line_magic
    def kcompile(self, line: str) -> None:
        """Compile a model again with the words of a body's compile line, keeping its weights
        (fine-tuning: unfreeze, then a lower learning rate). Settings left out are kept."""
        from kmagic.recompile import compile_model, describe_compile

        name, words = self._split_name(self.kcompile, line)
        model = self._model(name, None)
        compile_model(model, words, namespace=magic_args.user_ns(self.shell))
        shown = name if isinstance(name, str) else model.name
        print(f"kmagic: compiled {shown} with {describe_compile(model)}; weights kept")

    def _split_name(self, magic: Any, line: str) -> tuple[Any, str]:
        """The first word of a line (a name or ``{expr}``) and the rest as written (DSL text)."""
        tokens = magic_args.tokenize(line)
        if not tokens:
            build = getattr(magic, "build_parser", None)
            usage = " ".join(build().format_usage().split()).removeprefix("usage: ") if build else ""
            raise KmagicUsageError("expected a model name and compile words, received nothing",
                                   hint=f"Usage: {usage}" if usage else None)
        first = tokens[0]
        if first.quoted:
            raise KmagicUsageError("expected a model name or {expression}, received a quoted word",
                                   1, first.column, source=line)
        rest = line[first.column - 1 + len(first.text):]
        if first.text.startswith("{") and first.text.endswith("}"):
            return magic_args.evaluate(first.text[1:-1], magic_args.user_ns(self.shell), column=first.column, source=line), rest
        return first.text, rest

    # ---------------------------------------------------------------- views
    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("--plot", action="store_true", help="show the architecture diagram large")
    @argument("--batch-size", metavar="B", help="add the memory of one training step at this batch size")
    @argument("--profile", metavar="X", help="add each layer's forward time on the batch X")
    @no_var_expand
    @line_magic
    def ksummary(self, line: str) -> None:
        """Show the model card of a model again (with --batch-size: training memory; --profile: layer times)."""
        args = self._parse(self.ksummary, line)
        model = self._model(args.name, args)
        profile = self._data(args.profile, args, "profiling batch")
        _display(self._card(model, plot=args.plot, batch_size=magic_args.to_int(args.batch_size, "--batch-size"),
                            profile=profile))

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("x", metavar="X", help="input samples: a variable name or {expression}")
    @argument("--layer", metavar="NAME", help="the layer shown first")
    @argument("--sample", metavar="N", help="the sample shown first (index into X)")
    @argument("--explain", action="store_true",
              help="why the model decided: saliency, Grad-CAM, token attributions per sample")
    @argument("--target", metavar="K", help="with --explain: the class to explain (default: the predicted one)")
    @no_var_expand
    @line_magic
    def kactivations(self, line: str) -> None:
        """The activation explorer: every layer's output for the samples in X (--explain: attributions)."""
        from kmagic.inspection import activations

        args = self._parse(self.kactivations, line)
        model = self._model(args.name, args)
        x = self._data(args.x, args, "input samples")
        if args.explain or args.target is not None:
            from kmagic import datafeed
            from kmagic.attribution import explain
            from kmagic.widgets.explain_view import ExplainView

            x = datafeed.prepare_inputs(model, x, "the input samples")
            _display(ExplainView(explain(model, x, target=magic_args.to_int(args.target, "--target", minimum=0))))
            return
        shown = activations(model, x, layer=args.layer,
                            sample=magic_args.to_int(args.sample, "--sample", minimum=0, args=args) or 0)
        if shown is not None:
            _display(shown)

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("x", nargs="?", metavar="X", help="inputs for gradient histograms (optional)")
    @argument("y", nargs="?", metavar="Y", help="labels for gradient histograms (optional)")
    @no_var_expand
    @line_magic
    def kweights(self, line: str) -> None:
        """Per-layer weight histograms (and gradient histograms with X and Y)."""
        from kmagic.inspection import weights

        args = self._parse(self.kweights, line)
        model = self._model(args.name, args)
        shown = weights(model, x=self._data(args.x, args, "inputs"), y=self._data(args.y, args, "labels"))
        if shown is not None:
            _display(shown)

    # ---------------------------------------------------------------- files
    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("path", metavar="PATH", help="file: .keras, .h5, or .json (+ .weights.h5 beside it)")
    @no_var_expand
    @line_magic
    def ksave(self, line: str) -> None:
        """Save a model; the format follows the file extension."""
        import kmagic

        args = self._parse(self.ksave, line)
        model = self._model(args.name, args)
        path = str(args.path)
        kmagic.save(model, path)
        print(f"kmagic: saved {model.name} to {path}")

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the variable the loaded model is bound to")
    @argument("path", metavar="PATH", help="a .keras, .h5 or .json file")
    @argument("--summary", action="store_true", help="show the model card")
    @argument("--custom-objects", dest="custom_objects", metavar="{dict}",
              help="classes and functions the file names that are not registered: {'Name': Name, ...}")
    @no_var_expand
    @line_magic
    def kload(self, line: str) -> None:
        """Load a model saved by %ksave (safely: no code from the file runs) and bind it to NAME."""
        import kmagic

        args = self._parse(self.kload, line)
        name = magic_args.identifier(args.name, args=args)
        custom = self._data(args.custom_objects, args, "custom objects")
        if custom is not None and not (isinstance(custom, dict) and all(isinstance(k, str) for k in custom)):
            raise KmagicUsageError("expected --custom-objects to be a dict of names to classes or functions, "
                                   "such as {'Scale': Scale}, received " + type(custom).__name__)
        model = kmagic.load(str(args.path), custom_objects=custom)
        magic_args.user_ns(self.shell)[name] = model
        print(f"kmagic: loaded {name} from {args.path} ({model.count_params():,} parameters)")
        if args.summary:
            _display(self._card(model))

    @lazy_magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @argument("--to", dest="target", metavar="FILE", help="write the code to this .py file instead of printing it")
    @no_var_expand
    @line_magic
    def kexport(self, line: str) -> None:
        """Print (or write) readable Keras Python code that builds the same model.

        Notebook objects the model uses become imports or code that rebuilds them;
        an object that can be neither (a class defined in the notebook) is named in
        an error, and nothing is written.
        """
        from kmagic.exporting import export

        args = self._parse(self.kexport, line)
        model = self._model(args.name, args)
        source = export(model, None if args.target is None else str(args.target))
        if args.target is None:
            print(source)
            return
        print(f"kmagic: wrote {args.target}")

    # ---------------------------------------------------------------- listings
    @lazy_magic_arguments()
    @no_var_expand
    @line_magic
    def kmodels(self, line: str) -> None:
        """The models and blocks defined in this kernel, one line each."""
        self._parse(self.kmodels, line)
        print(list_models(magic_args.user_ns(self.shell), self.blocks))

    @lazy_magic_arguments()
    @no_var_expand
    @line_magic
    def kdevice(self, line: str) -> None:
        """Devices seen, and the strategy and precision %%kmodel would use."""
        from kmagic import devices

        self._parse(self.kdevice, line)
        _display(devices.device_report())
        setup = devices.resolve(self.strategy, self.precision, self.jit).describe()
        print("%%kmodel would use: " + ", ".join(f"{k} {v}" for k, v in setup.items()))


def list_models(namespace: dict[str, Any], blocks: dict[str, Any]) -> str:
    """One line per model in the namespace and per block defined, for ``%kmodels``."""
    from kmagic.buildinfo import info_of

    lines = []
    for name, value in namespace.items():
        if name.startswith("_") or not is_model(value):
            continue
        try:
            shapes = f"{_shapes(value.inputs)} -> {_shapes(value.outputs)}"
        except (AttributeError, ValueError):
            shapes = "not built"
        origin = "kmodel" if info_of(value).source else "keras"
        compiled = "compiled" if getattr(value, "compiled", False) else "not compiled"
        lines.append(f"{name}: {type(value).__name__} '{value.name}', {value.count_params():,} parameters, "
                     f"{shapes}, {compiled} ({origin})")
    for block in blocks.values():
        lines.append(f"block {block_signature(block)}")
    return "\n".join(lines) if lines else "no models or blocks defined yet"


def _shapes(tensors: Any) -> str:
    shapes = [str(tuple(t.shape)).replace(",)", ")") for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def block_signature(block: Any) -> str:
    """``down(f, k=3)`` for a block definition."""
    params = []
    for name, default in block.params:
        if default is None:
            params.append(name)
        else:
            text = getattr(default, "text", None)
            for attr in ("value", "name", "dims"):
                if text is None and hasattr(default, attr):
                    text = repr(getattr(default, attr)) if attr == "value" else str(getattr(default, attr))
            params.append(f"{name}={text if text is not None else '...'}")
    return f"{block.name}({', '.join(params)})"


def _test_mode() -> bool:
    from kmagic.widgets.frontend import test_mode

    return test_mode()


def _word_of(args: Namespace, value: Any, dest: str | None = None) -> str:
    """How the user wrote an argument: the name, or the ``{expression}`` that gave the value."""
    if isinstance(value, str):
        return value
    expanded = getattr(args, "_line", None)
    word = getattr(args, "_words", {}).get(dest) if dest is not None else None
    if expanded is not None and isinstance(word, str) and word in expanded.argv:
        return expanded.tokens[expanded.argv.index(word)].text  # also for a {expression} whose value is None
    if value is None:
        return ""
    if expanded is not None:
        for index, word in enumerate(expanded.argv):
            if expanded.values.get(word) is value:
                return expanded.tokens[index].text
    return "{...}"


# ---------------------------------------------------------------- loading


def _magic_classes() -> tuple[type[Magics], ...]:
    """Every Magics class of kmagic: this module's, the inspection ones, the runs ones."""
    from kmagic.magics_insight import InsightMagics
    from kmagic.magics_runs import RunsMagics

    return (KMagic, InsightMagics, RunsMagics)


def all_line_magics() -> tuple[str, ...]:
    """The names of every line magic ``%load_ext kmagic`` registers."""
    from kmagic import magics_insight, magics_runs

    return LINE_MAGICS + magics_insight.LINE_MAGICS + magics_runs.LINE_MAGICS


def register(ipython: Any) -> None:
    """Register the magics, the settings and the completer on a shell (``%load_ext kmagic``)."""
    from kmagic import completion

    if "KMagic" in ipython.magics_manager.registry:
        return
    for magics_class_ in _magic_classes():
        ipython.register_magics(magics_class_(shell=ipython))
    completion.install(ipython)


def unregister(ipython: Any) -> None:
    """Remove what :func:`register` added (``%unload_ext kmagic``)."""
    from kmagic import completion

    manager = ipython.magics_manager
    for magics_class_ in _magic_classes():
        instance = manager.registry.pop(magics_class_.__name__, None)
        if instance is not None and instance in getattr(ipython, "configurables", []):
            ipython.configurables.remove(instance)
    for kind, names in (("line", all_line_magics()), ("cell", CELL_MAGICS)):
        for name in names:
            manager.magics[kind].pop(name, None)
    completion.uninstall(ipython)


__all__ = ["KMagic", "KmagicError", "register", "unregister"]
