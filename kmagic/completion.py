"""Tab completion of the kmodel language inside ``%%kmodel`` and ``%%kblock`` cells, in the kernel.

A context matcher (IPython's matcher API v2) sees the whole cell, so it works
in every front end that asks the kernel to complete. It offers:

- at the start of a statement: layer aliases, Keras layer classes, blocks and
  the language's keywords;
- after a layer word: activation, padding and flag words, ``as``, and the
  layer's constructor keywords (``kernel_size=``), read from the Keras class
  signature (this imports Keras on first use);
- after ``key=``: the words that fit that keyword (paddings, activations,
  initializers, optimizers, losses, metrics, callbacks);
- after ``@``: the names the cell gave with ``as`` (and input names);
- on the ``%%kmodel`` line: its options and their choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from kmagic.devices import JIT_CHOICES, PRECISIONS, STRATEGIES  # stdlib-only module

IDENTIFIER = "kmagic.kmodel_completer"
_WORD_AT_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$|$")
_CELL_MAGICS = ("%%kmodel", "%%kblock")

#: Values offered after a %%kmodel option (the choices the magic itself checks against).
_OPTION_CHOICES = {"--precision": PRECISIONS, "--jit": JIT_CHOICES, "--strategy": STRATEGIES}


@cache
def kmodel_options() -> dict[str, tuple[str, ...]]:
    """The %%kmodel line's options, read from the magic's own argument parser, with their choices."""
    from kmagic.magics import KMagic

    parser = KMagic.kmodel.build_parser()
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--") and o != "--help"]
    return {option: tuple(_OPTION_CHOICES.get(option, ())) for option in options}


def _value_words(key: str) -> tuple[str, ...]:
    """Words that fit after ``key=``."""
    from kmagic import registry

    if key == "padding":
        return registry.PADDING_WORDS
    if key.endswith("activation"):
        return registry.ACTIVATION_WORDS
    if key.endswith("initializer"):
        return tuple(registry.INITIALIZERS)
    if key.endswith("regularizer"):
        return tuple(registry.REGULARIZERS)
    if key.endswith("constraint"):
        return tuple(registry.CONSTRAINTS)
    table: dict[str, Iterable[str]] = {
        "optimizer": registry.OPTIMIZERS, "loss": registry.LOSSES, "metrics": registry.METRICS,
        "weighted_metrics": registry.METRICS, "callbacks": registry.CALLBACKS, "merge": ("concat", "sum", "mul", "ave"),
        "dtype": ("float32", "float16", "bfloat16", "int32", "int64", "string", "bool"),
    }
    return tuple(table.get(key, registry.CONSTANTS))


def _keras_class(word: str) -> str | None:
    from kmagic import registry

    spec = registry.LAYER_ALIASES.get(word.lower())
    if spec is not None:
        keras_name = spec.keras
        return keras_name if isinstance(keras_name, str) else keras_name.get(2, next(iter(keras_name.values())))
    return registry.keras_class_for(word)


@cache
def constructor_keywords(class_name: str) -> tuple[str, ...]:
    """The keyword arguments of a Keras layer class's constructor (imports Keras if needed)."""
    import inspect

    from kmagic._keras import keras

    if class_name == "Input":
        return ("dtype", "sparse", "name", "batch_size", "ragged")
    cls = getattr(keras().layers, class_name, None)
    if cls is None:
        return ()
    names = [p.name for p in inspect.signature(cls.__init__).parameters.values()
             if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return tuple(dict.fromkeys([*names, "name", "dtype", "trainable"]))


def _flags(word: str, class_name: str | None) -> tuple[str, ...]:
    from kmagic import registry

    spec = registry.LAYER_ALIASES.get(word.lower())
    flags = dict(spec.flags) if spec is not None else {}
    flags.update(registry.CLASS_FLAGS.get(class_name or "", {}))
    return tuple(flags)


def _cell_kind(full_text: str) -> str | None:
    first = full_text.lstrip("\n").split("\n", 1)[0].strip()
    for magic in _CELL_MAGICS:
        if first == magic or first.startswith(magic + " "):
            return magic
    return None


def _statement_words(before: str) -> tuple[list[str], str]:
    """The words of the statement the cursor is in (before the cursor), and the current word."""
    word = _WORD_AT_END.search(before).group(0)  # type: ignore[union-attr]
    head = before[: len(before) - len(word)]
    depth = 0
    start = 0
    for index, char in enumerate(head):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and char in "|:":
            start = index + 1
    return head[start:].split(), word


def _open_bracket_key(before: str) -> str | None:
    """``metrics`` when the cursor is inside ``metrics=[...``, else None."""
    depth = 0
    for index in range(len(before) - 1, -1, -1):
        char = before[index]
        if char in ")]":
            depth += 1
        elif char in "([":
            if depth == 0:
                match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)=\s*$", before[:index])
                return match.group(1) if match else None
            depth -= 1
    return None


def _names_in_cell(full_text: str) -> list[str]:
    return re.findall(r"\bas\s+([A-Za-z_][A-Za-z0-9_]*)", full_text)


def _statement_candidates(words: list[str], before: str, blocks: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Completions after the head word of a statement."""
    from kmagic import registry

    head = words[0]
    lowered = head.lower()
    wrapper = lowered == "bi"
    key_match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)=\s*$", before)
    if key_match:
        return [(w, "value") for w in _value_words(key_match.group(1))]
    bracket_key = _open_bracket_key(before)
    if bracket_key:
        return [(w, "value") for w in _value_words(bracket_key)]
    if lowered == "compile":
        return ([(w, "optimizer") for w in registry.OPTIMIZERS] + [(w, "loss") for w in registry.LOSSES]
                + [(f"{k}=", "keyword") for k in registry.COMPILE_SETTINGS])
    if lowered == "fit":
        return [(f"{k}=", "keyword") for k in registry.FIT_SETTINGS]
    if lowered in registry.BLOCK_WORDS or lowered in ("output", "input"):
        return [("project", "flag")] if lowered == "residual" else []
    if head in blocks:
        return [(f"{name}=", "keyword") for name, _ in blocks[head].params]
    if wrapper and len(words) > 1:
        head, lowered = words[1], words[1].lower()
    class_name = _keras_class(head)
    if class_name is None:
        return []
    found = [(w, "activation") for w in registry.ACTIVATION_WORDS]
    keywords = constructor_keywords(class_name)
    if "padding" in keywords:
        found += [(w, "padding") for w in registry.PADDING_WORDS]
    found += [(w, "flag") for w in _flags(lowered, class_name)]
    if wrapper:
        found += [("merge=", "keyword")]
    found += [("as", "keyword")] + [(f"{k}=", "keyword") for k in keywords]
    return found


def _first_line_candidates(before: str) -> list[tuple[str, str]]:
    words = before.split()
    if before and not before[-1].isspace() and words:
        words = words[:-1]
    options = kmodel_options()
    if words and words[-1] in options:
        return [(w, "value") for w in options[words[-1]]]
    return [(option, "option") for option in options]


def complete(full_text: str, cursor_line: int, cursor_position: int,
             blocks: Mapping[str, Any] | None = None) -> tuple[str, list[tuple[str, str]]] | None:
    """Completions at a cursor in a cell: (the fragment they replace, [(text, type)]), or None outside kmodel cells."""
    kind = _cell_kind(full_text)
    if kind is None:
        return None
    from kmagic import registry

    blocks = blocks or {}
    lines = full_text.split("\n")
    before = lines[cursor_line][:cursor_position]
    first_line = next(i for i, text in enumerate(lines) if text.strip())
    if cursor_line == first_line:
        if kind != "%%kmodel" or len(before.split()) < 2:
            return None
        fragment = re.search(r"-{0,2}[A-Za-z0-9_]*$", before).group(0)  # type: ignore[union-attr]
        found = _first_line_candidates(before)
        return fragment, [(t, k) for t, k in found if t.startswith(fragment)]
    if "#" in before:
        return "", []
    if before.count("{") > before.count("}"):
        return None  # inside {python}: IPython's own completion
    words, fragment = _statement_words(before)
    before = before[: len(before) - len(fragment)]
    if before.endswith("@"):
        found = [(n, "name") for n in dict.fromkeys(_names_in_cell(full_text))]
    elif not words:
        found = ([(w, "layer") for w in registry.LAYER_ALIASES] + [(w, "keyword") for w in registry.STRUCTURE_WORDS]
                 + [(w, "block") for w in blocks] + [(w, "class") for w in registry.KERAS_LAYER_CLASSES])
    else:
        found = _statement_candidates(words, before, blocks)
    prefix = fragment.lower()
    matches = [(text, kind_) for text, kind_ in dict.fromkeys(found) if text.lower().startswith(prefix)]
    return fragment, matches


def _matcher(shell: Any) -> Any:
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher(identifier=IDENTIFIER, priority=100)
    def kmodel_matcher(context: Any) -> dict[str, Any]:
        magics = shell.magics_manager.registry.get("KMagic")
        blocks = magics.blocks if magics is not None else {}
        result = complete(context.full_text, context.cursor_line, context.cursor_position, blocks)
        if result is None:
            return {"completions": [], "suppress": False}
        fragment, found = result
        if not context.token.endswith(fragment):
            return {"completions": [], "suppress": False}
        return {
            "completions": [SimpleCompletion(text, type=kind) for text, kind in found],
            "matched_fragment": fragment,
            "suppress": True,
            "ordered": True,
        }

    return kmodel_matcher


def install(shell: Any) -> None:
    """Add the kmodel matcher to a shell's completer (once)."""
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    uninstall(shell)
    completer.custom_matchers.append(_matcher(shell))


def uninstall(shell: Any) -> None:
    """Remove the kmodel matcher again."""
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    completer.custom_matchers[:] = [m for m in completer.custom_matchers
                                    if getattr(m, "matcher_identifier", None) != IDENTIFIER]
