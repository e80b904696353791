"""DSL words -> Keras names: one table, data not code, and no Keras import.

Every word list the language knows lives here: layer aliases with their
positional order and flags, activation/padding words, optimizer, loss,
metric and callback words, and the keywords of the language. The compiler,
the checker, completion and the JupyterLab extension's highlighter all read
these tables (the extension through :func:`word_lists`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmagic.keras_names import KERAS_LAYER_CLASSES


@dataclass(frozen=True)
class LayerSpec:
    """How one DSL layer word maps onto a Keras layer class.

    ``keras`` is a class name, or a ``{rank: class name}`` mapping for the
    rank-generic aliases (rank = spatial dimensions of the input).
    ``keywords`` are short keyword names of this alias (``seq=`` for
    ``output_sequence_length=`` in ``text_vectorize``).
    """

    alias: str
    keras: str | dict[int, str]
    positional: tuple[str, ...] = ()
    flags: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    adapt: bool = False
    merge: bool = False
    keywords: dict[str, str] = field(default_factory=dict)


def _generic(pattern: str, ranks: tuple[int, ...] = (1, 2, 3)) -> dict[int, str]:
    return {r: pattern.format(r) for r in ranks}


_NOBIAS = {"nobias": ("use_bias", False)}
_RNN_FLAGS = {"seq": ("return_sequences", True), "state": ("return_state", True)}

_SPECS: list[LayerSpec] = [
    LayerSpec("input", "Input", ("shape",)),
    LayerSpec("dense", "Dense", ("units",), _NOBIAS),
    LayerSpec("conv", _generic("Conv{}D"), ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("conv1d", "Conv1D", ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("conv2d", "Conv2D", ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("conv3d", "Conv3D", ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("deconv", _generic("Conv{}DTranspose"), ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("sepconv", _generic("SeparableConv{}D", (1, 2)), ("filters", "kernel_size", "strides"), _NOBIAS),
    LayerSpec("dwconv", _generic("DepthwiseConv{}D", (1, 2)), ("kernel_size", "strides"), _NOBIAS),
    LayerSpec("maxpool", _generic("MaxPooling{}D"), ("pool_size", "strides")),
    LayerSpec("avgpool", _generic("AveragePooling{}D"), ("pool_size", "strides")),
    LayerSpec("gap", _generic("GlobalAveragePooling{}D")),
    LayerSpec("gmp", _generic("GlobalMaxPooling{}D")),
    LayerSpec("flatten", "Flatten"),
    LayerSpec("dropout", "Dropout", ("rate",)),
    LayerSpec("spatial_dropout", _generic("SpatialDropout{}D"), ("rate",)),
    LayerSpec("bn", "BatchNormalization"),
    LayerSpec("batchnorm", "BatchNormalization"),
    LayerSpec("ln", "LayerNormalization"),
    LayerSpec("layernorm", "LayerNormalization"),
    LayerSpec("embedding", "Embedding", ("input_dim", "output_dim"), {"mask": ("mask_zero", True)}),
    LayerSpec("embed", "Embedding", ("input_dim", "output_dim"), {"mask": ("mask_zero", True)}),
    LayerSpec("lstm", "LSTM", ("units",), _RNN_FLAGS),
    LayerSpec("gru", "GRU", ("units",), _RNN_FLAGS),
    LayerSpec("rnn", "SimpleRNN", ("units",), _RNN_FLAGS),
    LayerSpec("bi", "Bidirectional"),
    LayerSpec("mha", "MultiHeadAttention", ("num_heads", "key_dim")),
    LayerSpec("attention", "MultiHeadAttention", ("num_heads", "key_dim")),
    LayerSpec("reshape", "Reshape", ("target_shape",)),
    LayerSpec("permute", "Permute", ("dims",)),
    LayerSpec("repeat_vector", "RepeatVector", ("n",)),
    LayerSpec("upsample", _generic("UpSampling{}D"), ("size",)),
    LayerSpec("zeropad", _generic("ZeroPadding{}D"), ("padding",)),
    LayerSpec("crop", _generic("Cropping{}D"), ("cropping",)),
    LayerSpec("leaky_relu", "LeakyReLU", ("negative_slope",)),
    LayerSpec("prelu", "PReLU"),
    LayerSpec("add", "Add", merge=True),
    LayerSpec("subtract", "Subtract", merge=True),
    LayerSpec("multiply", "Multiply", merge=True),
    LayerSpec("average", "Average", merge=True),
    LayerSpec("maximum", "Maximum", merge=True),
    LayerSpec("minimum", "Minimum", merge=True),
    LayerSpec("concat", "Concatenate", ("axis",), merge=True),
    LayerSpec("dot", "Dot", ("axes",), merge=True),
    LayerSpec("rescale", "Rescaling", ("scale", "offset")),
    LayerSpec("normalize", "Normalization", ("axis",), adapt=True),
    LayerSpec("resize", "Resizing", ("height", "width")),
    LayerSpec("center_crop", "CenterCrop", ("height", "width")),
    LayerSpec("random_flip", "RandomFlip", ("mode",)),
    LayerSpec("random_rotation", "RandomRotation", ("factor",)),
    LayerSpec("random_zoom", "RandomZoom", ("height_factor",)),
    LayerSpec("random_contrast", "RandomContrast", ("factor",)),
    LayerSpec("random_brightness", "RandomBrightness", ("factor",)),
    LayerSpec("random_translation", "RandomTranslation", ("height_factor", "width_factor")),
    LayerSpec("text_vectorize", "TextVectorization", ("max_tokens",),
              adapt=True, keywords={"seq": "output_sequence_length"}),
    LayerSpec("one_hot", "CategoryEncoding", ("num_tokens",), fixed={"output_mode": "one_hot"}),
    LayerSpec("string_lookup", "StringLookup", adapt=True),
    LayerSpec("integer_lookup", "IntegerLookup", adapt=True),
    LayerSpec("hashing", "Hashing", ("num_bins",)),
]

#: Statement words that are activation layers: ``relu`` -> ``Activation('relu')``.
ACTIVATION_LAYER_WORDS: tuple[str, ...] = (
    "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "softplus", "linear",
)
for _word in ACTIVATION_LAYER_WORDS:
    _SPECS.append(LayerSpec(_word, "Activation", fixed={"activation": _word}))

LAYER_ALIASES: dict[str, LayerSpec] = {spec.alias: spec for spec in _SPECS}

#: Activation words, valid as bare words inside a layer statement.
ACTIVATION_WORDS: tuple[str, ...] = (
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "sigmoid",
    "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "mish",
    "exponential", "linear",
)
PADDING_WORDS: tuple[str, ...] = ("same", "valid", "causal")

#: Keras layer classes whose statements need their data adapted before training.
ADAPT_CLASSES: tuple[str, ...] = ("Normalization", "TextVectorization", "StringLookup", "IntegerLookup")

#: Flag keywords of Keras classes used without an alias (``LSTM`` gets ``seq``, too).
CLASS_FLAGS: dict[str, dict[str, tuple[str, Any]]] = {
    "LSTM": _RNN_FLAGS, "GRU": _RNN_FLAGS, "SimpleRNN": _RNN_FLAGS,
    "Dense": _NOBIAS, "Conv1D": _NOBIAS, "Conv2D": _NOBIAS, "Conv3D": _NOBIAS,
    "Embedding": {"mask": ("mask_zero", True)},
}

#: Block and statement keywords of the language.
KEYWORDS: tuple[str, ...] = (
    "input", "as", "output", "repeat", "residual", "project", "block", "branch",
    "compile", "fit",
)
MERGE_BLOCKS: dict[str, str] = {
    "concat": "Concatenate", "add": "Add", "multiply": "Multiply",
    "average": "Average", "maximum": "Maximum",
}
CONSTANTS: dict[str, Any] = {"true": True, "false": False, "none": None}

#: Optimizer words -> (Keras class, fixed keyword arguments).
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "adamax": ("Adamax", {}),
    "nadam": ("Nadam", {}),
    "lion": ("Lion", {}),
    "ftrl": ("Ftrl", {}),
}

#: Loss words -> Keras loss function names (strings Keras itself accepts).
LOSSES: dict[str, str] = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "huber": "huber",
    "logcosh": "log_cosh",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
    "kld": "kl_divergence",
    "kl_divergence": "kl_divergence",
    "cosine": "cosine_similarity",
    "hinge": "hinge",
    "squared_hinge": "squared_hinge",
    "poisson": "poisson",
    "binary_crossentropy": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "mean_squared_error": "mean_squared_error",
    "mean_absolute_error": "mean_absolute_error",
    "mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error": "mean_squared_logarithmic_error",
    "cosine_similarity": "cosine_similarity",
    "categorical_hinge": "categorical_hinge",
    "log_cosh": "log_cosh",
    "binary_focal_crossentropy": "binary_focal_crossentropy",
    "categorical_focal_crossentropy": "categorical_focal_crossentropy",
}

#: Loss classes usable as calls: ``huber(delta=2.0)``.
LOSS_CLASSES: dict[str, str] = {
    "mse": "MeanSquaredError", "mae": "MeanAbsoluteError",
    "mape": "MeanAbsolutePercentageError", "msle": "MeanSquaredLogarithmicError",
    "huber": "Huber", "logcosh": "LogCosh", "bce": "BinaryCrossentropy",
    "cce": "CategoricalCrossentropy", "scce": "SparseCategoricalCrossentropy",
    "kld": "KLDivergence", "kl_divergence": "KLDivergence", "cosine": "CosineSimilarity",
    "hinge": "Hinge", "squared_hinge": "SquaredHinge", "poisson": "Poisson",
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
}

#: Metric words -> (Keras metric class or string name, fixed keyword arguments).
#: A class name starting with an upper-case letter is built as an object;
#: a lower-case string is passed to Keras as it is (``"accuracy"``).
METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "accuracy": ("accuracy", {}),
    "acc": ("accuracy", {}),
    "precision": ("Precision", {}),
    "recall": ("Recall", {}),
    "f1": ("F1Score", {}),
    "auc": ("AUC", {}),
    "iou": ("MeanIoU", {}),
    "rmse": ("RootMeanSquaredError", {}),
    "mae": ("MeanAbsoluteError", {}),
    "mse": ("MeanSquaredError", {}),
    "top_k": ("TopKCategoricalAccuracy", {}),
    "binary_accuracy": ("BinaryAccuracy", {}),
    "categorical_accuracy": ("CategoricalAccuracy", {}),
    "sparse_categorical_accuracy": ("SparseCategoricalAccuracy", {}),
    "sparse_top_k": ("SparseTopKCategoricalAccuracy", {}),
    "mape": ("MeanAbsolutePercentageError", {}),
    "cosine": ("CosineSimilarity", {}),
    "kld": ("KLDivergence", {}),
    "r2": ("R2Score", {}),
}

#: Callback words -> (Keras callback class, positional parameter order).
CALLBACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "early_stopping": ("EarlyStopping", ("monitor",)),
    "reduce_lr": ("ReduceLROnPlateau", ("monitor",)),
    "checkpoint": ("ModelCheckpoint", ("filepath",)),
    "csv_log": ("CSVLogger", ("filename",)),
    "terminate_on_nan": ("TerminateOnNaN", ()),
}

#: Regularizer, constraint and initializer call words.
REGULARIZERS: dict[str, str] = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}
CONSTRAINTS: dict[str, str] = {"max_norm": "MaxNorm", "min_max_norm": "MinMaxNorm", "non_neg": "NonNeg", "unit_norm": "UnitNorm"}
INITIALIZERS: dict[str, str] = {
    "he_normal": "HeNormal", "he_uniform": "HeUniform", "glorot_normal": "GlorotNormal",
    "glorot_uniform": "GlorotUniform", "lecun_normal": "LecunNormal", "lecun_uniform": "LecunUniform",
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant", "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform", "truncated_normal": "TruncatedNormal",
    "orthogonal": "Orthogonal", "identity": "Identity", "variance_scaling": "VarianceScaling",
}

#: Keras layers that hold Python code (or another framework's module): never loaded, never written as kmodel.
CODE_LAYER_CLASSES: frozenset[str] = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})

#: Keyword arguments accepted under another name (``lr`` for ``learning_rate``).
KEYWORD_ALIASES: dict[str, str] = {"lr": "learning_rate"}


def keras_class_for(word: str) -> str | None:
    """The Keras layer class a word names (case-insensitive), or None."""
    return _CLASS_BY_LOWER.get(word.lower())


_CLASS_BY_LOWER: dict[str, str] = {name.lower(): name for name in KERAS_LAYER_CLASSES}


def word_lists() -> dict[str, list[str]]:
    """The word lists the front end highlights and completes, by token kind."""
    layer_words = sorted(set(LAYER_ALIASES) | set(KERAS_LAYER_CLASSES))
    flags = sorted({flag for spec in _SPECS for flag in spec.flags} | {"project"})
    return {
        "layers": layer_words,
        "activations": list(ACTIVATION_WORDS),
        "padding": list(PADDING_WORDS),
        "flags": flags,
        "keywords": list(KEYWORDS),
        "merge_blocks": sorted(MERGE_BLOCKS),
        "constants": sorted(CONSTANTS),
        "optimizers": sorted(OPTIMIZERS),
        "losses": sorted(LOSSES),
        "metrics": sorted(METRICS),
        "callbacks": sorted(CALLBACKS),
        "calls": sorted(set(REGULARIZERS) | set(CONSTRAINTS) | set(INITIALIZERS) | {"dict"}),
    }
