"""The registry is the vocabulary: its tables against the installed Keras, and everything derived from it."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kmagic import completion, registry
from kmagic.dsl import words
from kmagic.dsl.check import parse
from tests.kmodel_cases import keras

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def k() -> Any:
    return keras()


def test_keras_names_match_the_installed_keras(k: Any) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from make_keras_names import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render(k), "run scripts/make_keras_names.py"


@pytest.mark.slow
def test_keras_names_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    script = (REPO / "scripts" / "make_keras_names.py").read_text(encoding="utf-8")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "make_keras_names.py").write_text(script, encoding="utf-8")
    (tmp_path / "kmagic").mkdir()
    (tmp_path / "kmagic" / "keras_names.py").write_text("KERAS_LAYER_CLASSES = ()\n", encoding="utf-8")
    for name in ("__init__.py", "_version.py", "errors.py", "registry.py"):
        (tmp_path / "kmagic" / name).write_text((REPO / "kmagic" / name).read_text(encoding="utf-8"))
    result = subprocess.run([sys.executable, "scripts/make_keras_names.py", "--check"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "does not match Keras" in result.stderr


def test_keras_names_generator_leaves_out_code_layers_and_base_classes(k: Any) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from make_keras_names import layer_classes

    names = layer_classes(k)
    assert not set(names) & registry.CODE_LAYER_CLASSES
    assert {"Layer", "RNN", "LSTMCell"}.isdisjoint(names)
    assert {"Dense", "Conv2D", "MultiHeadAttention"} <= set(names)


def test_every_alias_names_real_keras_classes(k: Any) -> None:
    for spec in [*registry.LAYER_ALIASES.values(), *registry.CLASS_SPECS.values()]:
        for class_name in spec.classes():
            if class_name != "Input":
                assert inspect.isclass(getattr(k.layers, class_name)), (spec.alias, class_name)


def test_adapt_flags_match_the_layers_that_adapt(k: Any) -> None:
    for spec in registry.LAYER_ALIASES.values():
        for class_name in spec.classes():
            cls = getattr(k.layers, class_name, None)
            adapts = cls is not None and callable(getattr(cls, "adapt", None))
            assert spec.adapt == adapts, (spec.alias, class_name)
    assert set(registry.ADAPT_CLASSES) == {"IntegerLookup", "Normalization", "StringLookup", "TextVectorization"}


def test_merge_roles_match_keras_merge_layers(k: Any) -> None:
    from keras.src.layers.merging.base_merge import Merge

    merging = {name for name in registry.KERAS_LAYER_CLASSES if issubclass(getattr(k.layers, name), Merge)}
    assert merging == registry.CLASSES_BY_ROLE["merge"]


def test_roles_drive_the_wiring() -> None:
    program = parse("input 4 as a\ndense 4 as b\nSubtract @a @b\nAttention @a @b\nmha 2 8\n")
    kinds = [(op.word, op.kind, len(op.inputs)) for op in program.ops[2:]]
    assert kinds == [("subtract", "merge", 2), ("attention", "merge", 2), ("mha", "attention", 2)]
    assert words.role_of(None, "GroupQueryAttention") == "attention"
    assert words.role_of(registry.LAYER_ALIASES["concat"], "Concatenate") == "merge"


def test_keras2_substitutes_are_keras_layers() -> None:
    for name, substitute in registry.KERAS2_SUBSTITUTES.items():
        assert name in registry.KERAS_LAYER_CLASSES and substitute in registry.KERAS_LAYER_CLASSES


def test_structure_words_are_refused_as_block_names_and_completed() -> None:
    for word in registry.STRUCTURE_WORDS:
        with pytest.raises(Exception, match="block name|expected"):
            parse(f"block {word}:\n    dense 2\ninput 2\n")
    _, found = completion.complete("%%kmodel net\ninput 4\n", 2, 0)
    keywords = {text for text, kind in found if kind == "keyword"}
    assert set(registry.STRUCTURE_WORDS) <= keywords


def test_offered_compile_and_fit_settings_are_keras_keywords(k: Any) -> None:
    assert set(registry.COMPILE_SETTINGS) <= set(inspect.signature(k.Model.compile).parameters)
    assert set(registry.FIT_SETTINGS) <= set(inspect.signature(k.Model.fit).parameters)
    _, found = completion.complete("%%kmodel net\ninput 4\ndense 2\nfit ", 3, 4)
    assert [text for text, _ in found] == [f"{key}=" for key in registry.FIT_SETTINGS]


def test_kmodel_option_completion_follows_the_magic_parser() -> None:
    from kmagic.devices import STRATEGIES
    from kmagic.magics import KMagic

    parser = KMagic.kmodel.build_parser()
    declared = {o for action in parser._actions for o in action.option_strings if o.startswith("--")} - {"--help"}
    assert set(completion.kmodel_options()) == declared
    _, found = completion.complete("%%kmodel net --strategy ", 0, len("%%kmodel net --strategy "))
    assert [text for text, _ in found] == list(STRATEGIES)
