"""Write kmagic/keras_names.py (the Keras layer class names the DSL knows) from the installed Keras.

    python scripts/make_keras_names.py           # rewrite kmagic/keras_names.py
    python scripts/make_keras_names.py --check   # exit 1 if it differs from the installed Keras

Every class in ``keras.layers`` that is a Layer is listed, except base classes
and RNN cells (not statements of their own) and the layers that hold Python
code or another framework's module (``registry.CODE_LAYER_CLASSES``, never
written as kmodel). tests/test_keras_names.py runs the check.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "kmagic" / "keras_names.py"
#: Base classes: what a layer is made of, not a layer to write in a model.
BASE_CLASSES = frozenset({"Layer", "InputLayer", "Wrapper", "RNN", "Pipeline"})

HEADER = '''"""Keras 3 layer class names, as data, so the DSL can check words without importing Keras.

Generated from ``keras.layers`` (Keras {version}) by ``scripts/make_keras_names.py``;
``tests/test_keras_names.py`` checks it against the installed Keras. ``kmagic.registry``
also consults the live Keras module at build time, so a newer Keras adds classes
without an edit here.
"""

KERAS_LAYER_CLASSES: tuple[str, ...] = (
'''


def layer_classes(keras: object) -> list[str]:
    """The layer class names of ``keras.layers`` a kmodel statement may name."""
    sys.path.insert(0, str(ROOT))
    from kmagic.registry import CODE_LAYER_CLASSES

    layers = keras.layers  # type: ignore[attr-defined]
    names = []
    for name in dir(layers):
        obj = getattr(layers, name)
        if not (inspect.isclass(obj) and issubclass(obj, layers.Layer)):
            continue
        if name in BASE_CLASSES or name in CODE_LAYER_CLASSES or name.endswith(("Cell", "Cells")):
            continue
        names.append(name)
    return sorted(names)


def render(keras: object) -> str:
    """The text of keras_names.py for this Keras."""
    version = ".".join(keras.__version__.split(".")[:2])  # type: ignore[attr-defined]
    rows = "".join(f'    "{name}",\n' for name in layer_classes(keras))
    return HEADER.format(version=version) + rows + ")\n"


def main(argv: list[str]) -> int:
    import keras

    text = render(keras)
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} does not match Keras {keras.__version__}; run scripts/make_keras_names.py",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
