"""Day-one data in a real shell: text, pandas, the usual fit options, 2-D-label metrics, kmagic.fit."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicDataError, KmagicValueError

pd = pytest.importorskip("pandas")

WORDS_GOOD = ["good", "great", "fine", "nice", "superb"]
WORDS_BAD = ["bad", "awful", "poor", "dull", "weak"]

TEXT_MODEL = """\
input text
text_vectorize 40 seq=4
embedding 40 8
gap
dense 1 sigmoid
"""


def _texts(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=n)
    texts = np.array([" ".join(rng.choice(WORDS_GOOD if label else WORDS_BAD, size=3)) for label in labels])
    return texts, labels


@pytest.fixture
def text_shell(shell):
    texts, labels = _texts()
    shell.user_ns.update(texts=texts, labels=labels, np=np, pd=pd)
    return shell


# ---------------------------------------------------------------- 1. strings


@pytest.mark.parametrize("kind", ["str", "object", "list", "series"])
def test_input_text_trains_and_predicts_on_every_kind_of_string_data(text_shell, kind) -> None:
    shell = text_shell
    convert = {"str": "texts", "object": "texts.astype(object)", "list": "list(texts)",
               "series": "pd.Series(texts)"}[kind]
    shell.run_cell(f"data = {convert}")
    assert shell.user_ns["data"] is not None
    shell.run_cell(f"%%kmodel clf --quiet\n{TEXT_MODEL}")
    model = shell.user_ns["clf"]
    assert tuple(model.inputs[0].shape) == (None,) and model.inputs[0].dtype == "string"
    with capture_output() as captured:
        shell.run_line_magic("kfit", "clf data labels --epochs 2 --validation-split 0.25 --no-dashboard")
    assert "adapted text_vectorization" in captured.stdout, captured.stdout
    assert len(shell.user_ns["clf_history"].history["loss"]) == 2
    vocabulary = model.layers[1].get_vocabulary()
    assert "good" in vocabulary and "awful" in vocabulary
    predictions = model.predict(shell.user_ns["data"], verbose=0)
    assert predictions.shape == (64, 1) and np.all((predictions >= 0) & (predictions <= 1))
    assert model.predict(["good great fine"], verbose=0).shape == (1, 1)


def test_input_1_dtype_string_takes_a_1d_string_array(text_shell) -> None:
    shell = text_shell
    shell.run_cell("%%kmodel clf --quiet\n" + TEXT_MODEL.replace("input text", "input 1 dtype=string")
                   .replace("global_avg_pool1d", "flatten"))
    with capture_output():
        shell.run_line_magic("kfit", "clf texts labels --epochs 1 --no-dashboard")
        shell.run_line_magic("kfit", "clf {texts[:, None]} labels --epochs 1 --no-dashboard")
    assert len(shell.user_ns["clf_history"].history["loss"]) == 1
    assert shell.user_ns["clf"].predict(shell.user_ns["texts"], verbose=0).shape == (64, 1)


def test_input_text_with_another_dtype_is_refused_at_the_line() -> None:
    with pytest.raises(KmagicValueError) as info:
        kmagic.build("input text dtype=float32\ndense 1")
    assert "expected no dtype (or dtype=string) on an 'input text' line, received dtype=float32" in str(info.value)


def test_kmagic_build_input_text_exports_a_string_input() -> None:
    model = kmagic.build(TEXT_MODEL)
    assert model.inputs[0].dtype == "string" and tuple(model.inputs[0].shape) == (None,)
    assert "shape=(), dtype='string'" in kmagic.to_python(TEXT_MODEL)


def test_from_keras_writes_a_string_input_as_input_text() -> None:
    model = kmagic.build(TEXT_MODEL)
    text = kmagic.from_keras(model)
    assert text.splitlines()[0].split("#")[0].strip() == "input text", text
    rebuilt = kmagic.build(text)
    assert rebuilt.inputs[0].dtype == "string" and tuple(rebuilt.inputs[0].shape) == (None,)
    assert [type(layer).__name__ for layer in rebuilt.layers] == [type(layer).__name__ for layer in model.layers]


def test_numbers_for_a_text_input_are_refused_before_training(text_shell) -> None:
    shell = text_shell
    shell.run_cell(f"%%kmodel clf --quiet\n{TEXT_MODEL}")
    with pytest.raises(KmagicDataError) as info:
        shell.run_line_magic("kfit", "clf {np.ones(64)} labels --no-dashboard")
    assert "expected text (strings)" in str(info.value)


# ---------------------------------------------------------------- 2. pandas


@pytest.fixture
def frame_shell(shell):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 80), "income": rng.normal(5e4, 1e4, 80),
                          "score": rng.integers(0, 10, 80)})
    target = pd.Series((frame["age"] > 40).astype(int), name="target")
    shell.user_ns.update(df=frame, target=target, np=np, pd=pd)
    return shell


def test_a_numeric_dataframe_is_one_float32_matrix_for_adapt_fit_and_validation(frame_shell) -> None:
    shell = frame_shell
    shell.run_cell("%%kmodel pdnet --quiet\ninput 3\nnormalize\ndense 8 relu\ndense 1 sigmoid\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "pdnet df target --epochs 2 --no-dashboard "
                                     "--validation-data {df[:20]} {target[:20]}")
    assert "adapted normalization" in captured.stdout
    norm = shell.user_ns["pdnet"].layers[1]
    assert np.allclose(np.ravel(norm.mean), shell.user_ns["df"].to_numpy().mean(axis=0), rtol=1e-4)
    assert "val_loss" in shell.user_ns["pdnet_history"].history


def test_a_dataframe_with_text_columns_names_them(frame_shell) -> None:
    shell = frame_shell
    shell.run_cell("df2 = df.assign(city=['Oslo'] * 80)")
    shell.run_cell("%%kmodel pdnet --quiet\ninput 4\nnormalize\ndense 1 sigmoid\n")
    with pytest.raises(KmagicDataError) as info:
        shell.run_line_magic("kfit", "pdnet df2 target --no-dashboard")
    assert "received non-numeric column 'city'" in str(info.value)


def test_a_dataframe_feeds_named_inputs_by_column(frame_shell) -> None:
    shell = frame_shell
    shell.run_cell("%%kmodel multi --quiet\n"
                   "input 1 as age\ninput 1 as income\n"
                   "concat @age @income\nnormalize\ndense 1 sigmoid\n")
    with capture_output():
        shell.run_line_magic("kfit", "multi df target --epochs 1 --no-dashboard")
    assert len(shell.user_ns["multi_history"].history["loss"]) == 1
    model = shell.user_ns["multi"]
    assert model.predict(shell.user_ns["df"], verbose=0).shape == (80, 1)
    with pytest.raises(KmagicDataError) as info:
        shell.run_line_magic("kfit", "multi {df[['age']]} target --no-dashboard")
    assert "without column 'income'" in str(info.value)


def test_series_inputs_activations_and_weights_take_pandas(frame_shell) -> None:
    shell = frame_shell
    shell.run_cell("%%kmodel tiny --quiet\ninput 3\ndense 4 relu\ndense 1 sigmoid\n")
    with capture_output():
        shell.run_line_magic("kfit", "tiny df target --epochs 1 --no-dashboard")
        shell.run_line_magic("kactivations", "tiny df")
        shell.run_line_magic("kweights", "tiny df target")
    history = kmagic.fit(shell.user_ns["tiny"], shell.user_ns["df"]["age"].to_frame().assign(
        b=1.0, c=2.0), shell.user_ns["target"], epochs=1, progress=None)
    assert len(history.history["loss"]) == 1


# ---------------------------------------------------------------- 3. %kfit options


@pytest.fixture
def numbers_shell(shell):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 4)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    shell.user_ns.update(X=X, y=y, np=np)
    return shell


def test_kfit_takes_the_usual_fit_options(numbers_shell) -> None:
    import keras

    shell = numbers_shell
    seen: list[int] = []
    shell.user_ns["cb"] = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 1 sigmoid\nfit epochs=5 batch_size=8\n")
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 4 --initial-epoch 2 --callbacks {[cb]} "
                                     "--class-weight {{0: 1.0, 1: 3.0}} --no-shuffle --steps-per-epoch 3 "
                                     "--no-dashboard")
    history = shell.user_ns["net_history"]
    assert seen == [2, 3] and history.epoch == [2, 3]  # the magic's epochs win over the body's 5
    assert history.params["steps"] == 3
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --sample-weight {np.linspace(0, 1, 64)} --shuffle "
                                     "--no-dashboard")
        shell.run_line_magic("kfit", "net {X[:32]} {y[:32]} --epochs 1 --no-dashboard")  # no weights kept
    assert shell.user_ns["net_history"].params["steps"] == 4


def test_validation_data_as_one_dataset_and_validation_steps(numbers_shell) -> None:
    import tensorflow as tf

    shell = numbers_shell
    shell.user_ns["val"] = tf.data.Dataset.from_tensor_slices((shell.user_ns["X"], shell.user_ns["y"])).batch(8)
    shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 1 sigmoid\n")
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --validation-data val --validation-steps 2 --no-dashboard")
    assert "val_loss" in shell.user_ns["net_history"].history


def _endless_sources(X: np.ndarray, y: np.ndarray) -> dict[str, object]:
    import keras
    import tensorflow as tf

    def generator():
        while True:
            yield X[:16], y[:16]

    class Endless(keras.utils.PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return X[:16], y[:16]

    return {"repeat": tf.data.Dataset.from_tensor_slices((X, y)).batch(16).repeat(), "generator": generator(),
            "pydataset": Endless()}


@pytest.mark.parametrize("kind", ["repeat", "generator", "pydataset"])
def test_endless_data_needs_steps_per_epoch(numbers_shell, kind) -> None:
    shell = numbers_shell
    shell.user_ns["stream"] = _endless_sources(shell.user_ns["X"], shell.user_ns["y"])[kind]
    shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 1 sigmoid\n")
    with pytest.raises(KmagicDataError) as info:
        shell.run_line_magic("kfit", "net stream --epochs 1 --no-dashboard")
    assert "expected --steps-per-epoch N" in str(info.value) and "an epoch would never end" in str(info.value)
    if kind == "generator":  # no labels to infer a loss from without reading the generator
        shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 1 sigmoid\ncompile adam bce\n")
    assert "net_history" not in shell.user_ns
    with capture_output():
        shell.run_line_magic("kfit", "net stream --epochs 2 --steps-per-epoch 2 --no-dashboard")
    assert shell.user_ns["net_history"].params["steps"] == 2


def test_a_body_fit_line_refuses_sample_weight(numbers_shell) -> None:
    shell = numbers_shell
    with pytest.raises(KmagicValueError) as info:
        shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 1 sigmoid\nfit sample_weight={np.ones(64)}\n")
    text = info.value.render()
    assert "received sample_weight=" in text and "--sample-weight" in text


# ---------------------------------------------------------------- 4. metrics needing 2-D labels


@pytest.mark.parametrize("metric", ["f1", "fbeta(beta=2.0)"])
def test_f1_and_fbeta_train_on_1d_binary_labels(numbers_shell, metric) -> None:
    shell = numbers_shell
    metric_text = "f1" if metric == "f1" else "{keras.metrics.FBetaScore(beta=2.0, threshold=0.5)}"
    shell.run_cell("import keras")
    shell.run_cell(f"%%kmodel f1b --quiet\ninput 4\ndense 1 sigmoid\ncompile adam bce metrics=[{metric_text}]\n")
    with capture_output():
        shell.run_line_magic("kfit", "f1b X y --epochs 2 --validation-split 0.25 --no-dashboard")
    history = shell.user_ns["f1b_history"].history
    assert any(key.startswith(("f1", "fbeta")) for key in history), history.keys()
    assert any(key.startswith(("val_f1", "val_fbeta")) for key in history)


def test_f1_on_a_dataset_of_1d_labels_trains(numbers_shell) -> None:
    import tensorflow as tf

    shell = numbers_shell
    shell.user_ns["ds"] = tf.data.Dataset.from_tensor_slices((shell.user_ns["X"], shell.user_ns["y"])).batch(16)
    shell.run_cell("%%kmodel f1b --quiet\ninput 4\ndense 1 sigmoid\ncompile adam bce metrics=[f1]\n")
    with capture_output():
        shell.run_line_magic("kfit", "f1b ds --epochs 1 --no-dashboard")
    assert "f1_score" in shell.user_ns["f1b_history"].history


def test_f1_with_class_numbers_for_several_units_says_what_to_change(numbers_shell) -> None:
    shell = numbers_shell
    shell.run_cell("%%kmodel f1m --quiet\ninput 4\ndense 2 softmax\ncompile adam scce metrics=[f1]\n")
    with pytest.raises(KmagicDataError) as info:
        shell.run_line_magic("kfit", "f1m X y --epochs 1 --no-dashboard")
    assert "expected one-hot labels of shape (n, 2) for metric f1" in str(info.value)
    assert "to_categorical(y, 2)" in info.value.render()
    assert "f1m_history" not in shell.user_ns


# ---------------------------------------------------------------- 8. kmagic.fit


def test_kmagic_fit_does_what_kfit_does(capsys) -> None:
    texts, labels = _texts()
    model = kmagic.build(TEXT_MODEL)
    history = kmagic.fit(model, pd.Series(texts), pd.Series(labels), epochs=2, batch_size=16, progress="text")
    out = capsys.readouterr().out
    assert "adapted text_vectorization" in out and "compiled" in out and "binary_crossentropy" in out
    assert "epoch 2/2 -" in out
    assert type(history).__name__ == "History" and len(history.history["loss"]) == 2
    assert model.predict(list(texts[:3]), verbose=0).shape == (3, 1)
    quiet = kmagic.fit(model, texts, labels, epochs=1, progress=None)
    assert capsys.readouterr().out == "" and len(quiet.history["loss"]) == 1


def test_kmagic_fit_checks_before_training() -> None:
    model = kmagic.build("input 4\ndense 3 softmax")
    with pytest.raises(KmagicDataError) as info:
        kmagic.fit(model, np.ones((10, 5), "float32"), np.zeros(10), progress=None)
    assert "expected the training inputs X of shape (n, 4)" in str(info.value)
    with pytest.raises(kmagic.KmagicError):
        kmagic.fit(model, np.ones((10, 4)), np.zeros(10), progress="bars")
    assert not model.compiled


# ---------------------------------------------------------------- in a kernel


@pytest.mark.slow
@pytest.mark.kernel
def test_day_one_text_pandas_and_kmagic_fit_in_a_kernel(nb_run) -> None:
    from conftest import outputs_of

    notebook = nb_run([
        "%load_ext kmagic",
        "import numpy as np, pandas as pd\n"
        "texts = np.array(['good great', 'bad awful', 'fine nice', 'poor dull'] * 8)\n"
        "labels = pd.Series([1, 0, 1, 0] * 8)",
        f"%%kmodel clf --quiet\n{TEXT_MODEL}compile adam bce metrics=[f1]",
        "%kfit clf texts labels --epochs 2 --batch-size 8 --no-shuffle",
        "import kmagic\nh = kmagic.fit(clf, list(texts), labels, epochs=1, progress='text')\n"
        "print(type(h).__name__, len(clf_history.history['loss']), clf.predict(pd.Series(texts[:3]), "
        "verbose=0).shape, 'f1_score' in h.history)",
        "def endless():\n    while True:\n        yield texts[:8], labels[:8].to_numpy()",
        "%kfit clf {endless()} --epochs 1",
    ], env={"KMAGIC_FRONTEND": "widget"})
    cells = notebook.cells
    for index in range(5):
        assert not outputs_of(cells[index], "error"), cells[index]
    fit_text = "".join(o.get("text", "") for o in outputs_of(cells[3], "stream"))
    assert "adapted text_vectorization" in fit_text
    printed = "".join(o.get("text", "") for o in outputs_of(cells[4], "stream"))
    assert "epoch 1/1 - " in printed and "History 2 (3, 1) True" in printed
    (error,) = outputs_of(cells[6], "error")
    assert error["ename"] == "KmagicDataError" and "--steps-per-epoch" in "\n".join(error["traceback"])


def test_a_built_models_own_evaluate_takes_1d_labels_with_f1(numbers_shell) -> None:
    shell = numbers_shell
    shell.run_cell("%%kmodel f1b --quiet\ninput 4\ndense 1 sigmoid\ncompile adam bce metrics=[f1]\n")
    model = shell.user_ns["f1b"]
    X, y = shell.user_ns["X"], shell.user_ns["y"]
    history = model.fit(X, y, epochs=1, verbose=0)
    assert "f1_score" in history.history
    results = model.evaluate(pd.DataFrame(X), pd.Series(y), verbose=0, return_dict=True)
    assert set(results) == {"loss", "f1_score"}


def test_a_loaded_text_model_predicts_on_a_str_array(tmp_path) -> None:
    texts = np.array(["good film", "bad film", "great fun", "awful"])
    model = kmagic.build("input text\ntext_vectorize 20 seq=3\nembedding 20 4\ngap\ndense 1 sigmoid", seed=0)
    model.layers[1].adapt(texts.astype(object))
    kmagic.save(model, tmp_path / "text.keras")
    loaded = kmagic.load(tmp_path / "text.keras")
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), model.predict(texts, verbose=0), rtol=1e-5)
