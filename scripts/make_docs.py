"""Write the word tables of docs/language.md from kmagic.registry (the one vocabulary).

    python scripts/make_docs.py           # rewrite the generated parts of docs/language.md
    python scripts/make_docs.py --check   # exit 1 if they differ from the registry (run by `make lint`)

Only the text between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
markers is replaced; everything else in the page is written by hand.
Needs no Keras.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kmagic import registry  # noqa: E402
from kmagic.registry import LayerSpec  # noqa: E402

PAGE = ROOT / "docs" / "language.md"
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _code(words: object) -> str:
    return ", ".join(f"`{w}`" for w in words)  # type: ignore[union-attr]


def _keras(spec: LayerSpec) -> str:
    if isinstance(spec.keras, str):
        fixed = ", ".join(f"{k}={v!r}" for k, v in spec.fixed.items() if k != "activation")
        return f"`{spec.keras}`" + (f" ({fixed})" if fixed else "")
    return " / ".join(f"`{name}`" for name in spec.keras.values()) + " by input rank"


def _notes(spec: LayerSpec) -> str:
    notes = [f"`{flag}` ({key}={value!r})" for flag, (key, value) in spec.flags.items()]
    notes += [f"`{short}=` ({long})" for short, long in spec.keywords.items()]
    notes += {"merge": ["inputs: the cursor and `@a`, or `@a @b ...`"],
              "attention": ["self-attention on the cursor; `@q @v [@k]` for query, value, key"],
              "list-attention": ["inputs: `@query @value`"]}.get(spec.role, [])
    if spec.adapt:
        notes.append("adapted from the training data by `%kfit`")
    if spec.data_dtype:
        notes.append(f"reads {spec.data_dtype} data")
    if spec.alias == "bi":
        notes.append("wraps the rest of the statement: `bi lstm 32 seq`; `merge=` (merge_mode)")
    return "; ".join(notes)


def layer_table() -> str:
    rows: dict[tuple, list[str]] = {}
    for alias, spec in registry.LAYER_ALIASES.items():
        if "activation" in spec.fixed:
            continue
        key = (_keras(spec), ", ".join(spec.positional), _notes(spec))
        rows.setdefault(key, []).append(alias)
    lines = ["| word | Keras class | positional order | flags and notes |", "|---|---|---|---|"]
    lines += [f"| {_code(aliases)} | {keras} | {order} | {notes} |" for (keras, order, notes), aliases in rows.items()]
    return "\n".join(lines)


def class_table() -> str:
    lines = ["| Keras class | wiring | data it reads | Keras 2 substitute (`--strategy multiworker`) |",
             "|---|---|---|---|"]
    for name, spec in sorted(registry.CLASS_SPECS.items()):
        lines.append(f"| `{name}` | {spec.role} | {spec.data_dtype or ''} | {f'`{spec.keras2}`' if spec.keras2 else ''} |")
    return "\n".join(lines)


def vocabulary() -> str:
    activation_statements = [a for a, s in registry.LAYER_ALIASES.items() if "activation" in s.fixed]
    optimizers = [f"`{w}`" + (f" ({cls}, {', '.join(f'{k}={v}' for k, v in fixed.items())})" if fixed else
                              f" ({cls})") for w, (cls, fixed) in registry.OPTIMIZERS.items()]
    losses = [f"`{w}`" + (f" ({name})" if name != w else "") for w, name in registry.LOSSES.items()]
    metrics = [f"`{w}` ({target})" for w, (target, _) in registry.METRICS.items()]
    callbacks = [f"`{w}`" + (f"({', '.join(order)})" if order else "") + f" ({cls})"
                 for w, (cls, order) in registry.CALLBACKS.items()]
    rows = [
        ("activation statements (`Activation(word)`)", _code(activation_statements)),
        ("activation words (bare words set `activation=`)", _code(registry.ACTIVATION_WORDS)),
        ("padding words (set `padding=`)", _code(registry.PADDING_WORDS)),
        ("statement words", _code(registry.STATEMENT_WORDS)),
        ("block words (`word ...:`)", _code(registry.BLOCK_WORDS)),
        ("merge blocks (`word:` with `branch:` bodies)",
         ", ".join(f"`{w}` ({c})" for w, c in registry.MERGE_BLOCKS.items())),
        ("top level only (refused inside any block)", _code(registry.TOP_LEVEL_WORDS)),
        ("constants", _code(registry.CONSTANTS)),
        ("optimizers", ", ".join(optimizers)),
        ("losses (every Keras loss name works too)", ", ".join(losses)),
        ("loss calls", ", ".join(f"`{w}(...)` ({c})" for w, c in registry.LOSS_CLASSES.items())),
        ("metrics (every Keras metric name works too)", ", ".join(metrics)),
        ("callbacks (in `fit callbacks=[...]`)", ", ".join(callbacks)),
        ("initializer calls", ", ".join(f"`{w}`" for w in registry.INITIALIZERS)),
        ("regularizer calls", ", ".join(f"`{w}`" for w in registry.REGULARIZERS)),
        ("constraint calls", ", ".join(f"`{w}`" for w in registry.CONSTRAINTS)),
        ("keyword aliases", ", ".join(f"`{a}=` for `{b}=`" for a, b in registry.KEYWORD_ALIASES.items())),
        ("never written as kmodel, never loaded", _code(sorted(registry.CODE_LAYER_CLASSES))),
    ]
    return "\n".join(["| kind | words |", "|---|---|", *(f"| {kind} | {words} |" for kind, words in rows)])


GENERATORS: dict[str, Callable[[], str]] = {"layers": layer_table, "classes": class_table, "words": vocabulary}


def render(text: str) -> str:
    """The page with every generated part rewritten."""
    def replace(match: re.Match[str]) -> str:
        return f"{match.group(1)}{GENERATORS[match.group(2)]()}\n{match.group(4)}"

    return _BLOCK.sub(replace, text)


def main(argv: list[str]) -> int:
    current = PAGE.read_text(encoding="utf-8")
    missing = [name for name in GENERATORS if f"<!-- generated: {name} -->" not in current]
    if missing:
        print(f"{PAGE}: no generated section for {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render(current)
    if "--check" in argv:
        if text != current:
            print(f"{PAGE} does not match kmagic.registry; run scripts/make_docs.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
