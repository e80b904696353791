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
    ``output_sequence_length=`` in ``text_vectorize``). ``role`` says how
    the statement is wired (one of :data:`ROLES`); ``adapt`` that the layer
    learns from the training data before ``fit``; ``data_dtype`` the kind of
    data it reads (``"string"`` for text layers); ``keras2`` the nearest
    Keras 2 layer where tf_keras lacks this one.
    """

    alias: str
    keras: str | dict[int, str]
    positional: tuple[str, ...] = ()
    flags: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    adapt: bool = False
    role: str = "layer"
    keywords: dict[str, str] = field(default_factory=dict)
    data_dtype: str | None = None
    keras2: str | None = None

    @property
    def merge(self) -> bool:
        """Whether the layer takes a list of inputs (``add @a @b``)."""
        return self.role == "merge"

    def classes(self) -> tuple[str, ...]:
        """Every Keras class this word may build."""
        return (self.keras,) if isinstance(self.keras, str) else tuple(self.keras.values())


#: How statements are wired: one input; a list (merge); query/value[/key] (attention);
#: a list [query, value[, key]] (list-attention).
ROLES: tuple[str, ...] = ("layer", "merge", "attention", "list-attention")


def _generic(pattern: str, ranks: tuple[int, ...] = (1, 2, 3)) -> dict[int, str]:
    return {r: pattern.format(r) for r in ranks}


_NOBIAS = {"nobias": ("use_bias", False)}
_RNN_FLAGS = {"seq": ("return_sequences", True), "state": ("return_state", True)}

_SPECS: list[LayerSpec] = [
    LayerSpec("input", "Input", ("shape",), data_dtype="any"),
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
    LayerSpec("mha", "MultiHeadAttention", ("num_heads", "key_dim"), role="attention"),
    LayerSpec("attention", "MultiHeadAttention", ("num_heads", "key_dim"), role="attention"),
    LayerSpec("reshape", "Reshape", ("target_shape",)),
    LayerSpec("permute", "Permute", ("dims",)),
    LayerSpec("repeat_vector", "RepeatVector", ("n",)),
    LayerSpec("upsample", _generic("UpSampling{}D"), ("size",)),
    LayerSpec("zeropad", _generic("ZeroPadding{}D"), ("padding",)),
    LayerSpec("crop", _generic("Cropping{}D"), ("cropping",)),
    LayerSpec("leaky_relu", "LeakyReLU", ("negative_slope",)),
    LayerSpec("prelu", "PReLU"),
    LayerSpec("add", "Add", role="merge"),
    LayerSpec("subtract", "Subtract", role="merge"),
    LayerSpec("multiply", "Multiply", role="merge"),
    LayerSpec("average", "Average", role="merge"),
    LayerSpec("maximum", "Maximum", role="merge"),
    LayerSpec("minimum", "Minimum", role="merge"),
    LayerSpec("concat", "Concatenate", ("axis",), role="merge"),
    LayerSpec("dot", "Dot", ("axes",), role="merge"),
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
              adapt=True, keywords={"seq": "output_sequence_length"}, data_dtype="string"),
    LayerSpec("one_hot", "CategoryEncoding", ("num_tokens",), fixed={"output_mode": "one_hot"}, data_dtype="int64"),
    LayerSpec("string_lookup", "StringLookup", adapt=True, data_dtype="string"),
    LayerSpec("integer_lookup", "IntegerLookup", adapt=True, data_dtype="int64"),
    LayerSpec("hashing", "Hashing", ("num_bins",), data_dtype="any"),
]

#: Statement words that are activation layers: ``relu`` -> ``Activation('relu')``.
ACTIVATION_LAYER_WORDS: tuple[str, ...] = (
    "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "softplus", "linear",
)
for _word in ACTIVATION_LAYER_WORDS:
    _SPECS.append(LayerSpec(_word, "Activation", fixed={"activation": _word}))

LAYER_ALIASES: dict[str, LayerSpec] = {spec.alias: spec for spec in _SPECS}

#: Keras classes with no word of their own whose wiring or Keras 2 substitute is not the default
#: (written by class name: ``Attention @q @v``, ``GroupQueryAttention 4 2 16``).
CLASS_SPECS: dict[str, LayerSpec] = {spec.alias: spec for spec in [
    LayerSpec("Subtract", "Subtract", role="merge"),
    LayerSpec("Minimum", "Minimum", role="merge"),
    LayerSpec("Dot", "Dot", role="merge"),
    LayerSpec("Attention", "Attention", role="list-attention"),
    LayerSpec("AdditiveAttention", "AdditiveAttention", role="list-attention"),
    LayerSpec("GroupQueryAttention", "GroupQueryAttention", role="attention", keras2="MultiHeadAttention"),
    LayerSpec("RMSNormalization", "RMSNormalization", keras2="LayerNormalization"),
    LayerSpec("AdaptiveAveragePooling1D", "AdaptiveAveragePooling1D", keras2="GlobalAveragePooling1D"),
    LayerSpec("AdaptiveAveragePooling2D", "AdaptiveAveragePooling2D", keras2="GlobalAveragePooling2D"),
    LayerSpec("AdaptiveMaxPooling1D", "AdaptiveMaxPooling1D", keras2="GlobalMaxPooling1D"),
    LayerSpec("AdaptiveMaxPooling2D", "AdaptiveMaxPooling2D", keras2="GlobalMaxPooling2D"),
    LayerSpec("ReversibleEmbedding", "ReversibleEmbedding", keras2="Embedding"),
    LayerSpec("InputLayer", "InputLayer", data_dtype="any"),
    LayerSpec("HashedCrossing", "HashedCrossing", data_dtype="any"),
    LayerSpec("Discretization", "Discretization", data_dtype="int64"),
]}


def _by_class(specs: list[LayerSpec]) -> dict[str, LayerSpec]:
    table: dict[str, LayerSpec] = {}
    for spec in specs:
        for class_name in spec.classes():
            table.setdefault(class_name, spec)
    return table


_SPEC_BY_CLASS: dict[str, LayerSpec] = {**_by_class(_SPECS), **CLASS_SPECS}


def role_of(class_name: str | None) -> str:
    """How a Keras class's statements are wired (see :data:`ROLES`)."""
    spec = _SPEC_BY_CLASS.get(class_name or "")
    return spec.role if spec is not None else "layer"


#: Keras classes of each role other than "layer", from the specs above.
CLASSES_BY_ROLE: dict[str, frozenset[str]] = {
    role: frozenset(name for name, spec in _SPEC_BY_CLASS.items() if spec.role == role) for role in ROLES
}

#: Layer classes whose ``dtype`` is the type of their data (strings, ids), not a float policy:
#: kmagic never passes them a precision policy.
DATA_DTYPE_CLASSES: frozenset[str] = frozenset(name for name, spec in _SPEC_BY_CLASS.items() if spec.data_dtype)

#: The nearest Keras 2 (tf_keras) layer for a Keras 3 layer that tf_keras lacks.
KERAS2_SUBSTITUTES: dict[str, str] = {name: spec.keras2 for name, spec in _SPEC_BY_CLASS.items() if spec.keras2}

#: Activation words, valid as bare words inside a layer statement.
ACTIVATION_WORDS: tuple[str, ...] = (
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "sigmoid",
    "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "mish",
    "exponential", "linear",
)
PADDING_WORDS: tuple[str, ...] = ("same", "valid", "causal")

#: Keras layer classes whose statements need their data adapted before training (``adapt=True`` above).
ADAPT_CLASSES: tuple[str, ...] = tuple(sorted({name for spec in _SPECS if spec.adapt for name in spec.classes()}))

#: Flag keywords of Keras classes used without an alias (``LSTM`` gets ``seq``, too).
CLASS_FLAGS: dict[str, dict[str, tuple[str, Any]]] = {
    "LSTM": _RNN_FLAGS, "GRU": _RNN_FLAGS, "SimpleRNN": _RNN_FLAGS,
    "Dense": _NOBIAS, "Conv1D": _NOBIAS, "Conv2D": _NOBIAS, "Conv3D": _NOBIAS,
    "Embedding": {"mask": ("mask_zero", True)},
}

MERGE_BLOCKS: dict[str, str] = {
    "concat": "Concatenate", "add": "Add", "multiply": "Multiply",
    "average": "Average", "maximum": "Maximum",
}
#: Statements of the model's top level only (refused inside any block body).
TOP_LEVEL_WORDS: tuple[str, ...] = ("output", "compile", "fit")
#: Words that start a statement with a meaning of its own, and words that open a block (``word ...:``).
STATEMENT_WORDS: tuple[str, ...] = ("input", *TOP_LEVEL_WORDS)
BLOCK_WORDS: tuple[str, ...] = ("repeat", "residual", "block", "branch")
#: Every structure word: what a statement may start with besides a layer.
STRUCTURE_WORDS: tuple[str, ...] = (*STATEMENT_WORDS, *BLOCK_WORDS, *MERGE_BLOCKS)
#: Block and statement keywords of the language (``as`` and ``project`` included).
KEYWORDS: tuple[str, ...] = (*STATEMENT_WORDS, *BLOCK_WORDS, "as", "project")
#: The ``compile`` and ``fit`` settings offered by completion (Keras accepts every keyword of
#: ``Model.compile`` / ``Model.fit``; these are the ones worth offering first).
COMPILE_SETTINGS: tuple[str, ...] = ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics",
                                     "run_eagerly", "steps_per_execution", "jit_compile")
FIT_SETTINGS: tuple[str, ...] = ("epochs", "batch_size", "validation_split", "callbacks", "shuffle",
                                 "class_weight", "initial_epoch", "steps_per_epoch", "validation_freq", "verbose")
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
