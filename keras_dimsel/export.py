"""Compact SavedModel export: raw features in, click probability out.

The exported model carries its lookup tables and only the embedding tables of
the stage it was trained in, so a retrained AutoDim model is physically
smaller than the full-dimension one. It reloads with plain
`tf.saved_model.load`, without this library.

The serving contract (docs/concepts/compact-export.md): one value per example
for every feature, each input of shape `[batch]`; an empty string or NaN is a
missing value, an unseen value takes the OOV id, and a request with inputs of
other ranks, of different batch sizes or with an infinite number fails with
an error naming the feature instead of giving an output.

What is saved is not the Keras model but a plain `tf.Module` holding its
variables, its lookup tables and the signatures (`serving_root`): the
signatures are all a server calls, and saving the Keras object makes
TensorFlow walk every layer's Keras attributes: a 39-field DeepFM exported in
13.6 s that way and in 4.2 s now (`benchmarks/export_speed.py`).
"""

from __future__ import annotations

import os
import re
import unicodedata

import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import feature_description, model_features

SERVING_OUTPUT = "probability"
#: the input of the serialized-example signature (the TFX convention)
EXAMPLES_INPUT = "examples"


def serving_input_names(fields) -> dict:
    """The raw-value signature's input name of each field: the field name, made a
    valid TensorFlow argument name where it is not one.

    A signature's inputs are function arguments and graph nodes, so
    TensorFlow accepts only names made of ASCII letters, digits and `_` that
    start with a letter. A field whose name is one keeps it; in any other,
    accents are dropped (`ö` becomes `o`), each run of other characters
    becomes one `_` (none at the ends), a name that does not start with a
    letter gets `f_` in front, and a name taken already gets `_2`, `_3`, ...
    The `tf.Example` signature is keyed by the field names themselves.
    `dimsel` prints the names that differ after each export.

    Args:
        fields: sequence of str, the model's fields, in order.

    Returns:
        dict of field name to input name, in the order of `fields`.

    Examples:

        >>> serving_input_names(["user", "user id", "größe", "2nd item", "user_id"])
        {'user': 'user', 'user id': 'user_id_2', 'größe': 'gro_e', '2nd item': 'f_2nd_item', \
'user_id': 'user_id'}
    """
    names, taken = {}, set()
    kept = {name for name in fields if _is_argument_name(name)}
    for field in fields:
        name = field
        if field not in kept:
            plain = unicodedata.normalize("NFKD", field)
            plain = "".join(c for c in plain if not unicodedata.combining(c))
            name = re.sub(r"[^A-Za-z0-9_]+", "_", plain).strip("_")
            name = name if re.match("[A-Za-z]", name) else f"f_{name}"
        candidate, number = name, 1
        while candidate in taken or (candidate != field and candidate in kept):
            number += 1
            candidate = f"{name}_{number}"
        names[field] = candidate
        taken.add(candidate)
    return names


def _is_argument_name(name: str) -> bool:
    return re.fullmatch("[A-Za-z][A-Za-z0-9_]*", name) is not None


def serving_signature(spec: FeatureSpec, fields) -> dict:
    """One `[batch]` input per field: strings for categorical, float32 for numeric.

    Args:
        spec: FeatureSpec, the artifact (the kind of each field).
        fields: sequence of str, the model's fields.

    Returns:
        dict of input name (`serving_input_names`) to `tf.TensorSpec`: the
        input of the raw-value signature (`serving_default`, or `serving_raw`
        with `serve_examples`).

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        ...         FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
        ...     ),
        ...     splits={"train": 100},
        ... )
        >>> signature = serving_signature(spec, ["site", "price"])
        >>> signature["site"]
        TensorSpec(shape=(None,), dtype=tf.string, name='site')
        >>> signature["price"].dtype.name
        'float32'
    """
    return {
        name: tf.TensorSpec(
            [None], tf.string if spec.field(field).kind == "categorical" else tf.float32, name
        )
        for field, name in serving_input_names(fields).items()
    }


def check_serving_features(features: dict, spec: FeatureSpec, input_names=None) -> dict:
    """The serving inputs, checked at run time: one value per example, finite numbers.

    A loaded signature does not check the shapes of the tensors it is given,
    and TensorFlow drops reshapes that the declared `[None]` shape makes look
    redundant, so an unchecked `[batch, 2]` input would give an output of the
    wrong shape instead of an error. Each check fails the whole request with a
    `tf.errors.InvalidArgumentError` that names the feature:

    - an input of another rank: "Shape of tensor item [4,1] is not compatible
      with expected shape [?]" (the message of `tf.ensure_shape`);
    - inputs of different batch sizes: "serving input `item` has 6 values but
      `user` has 4: every feature needs one value per example";
    - an infinite number: "serving input `price` holds 1 infinite value(s):
      send NaN for a missing number". The training data never holds one (the
      reader rejects such rows), so the model has no answer for it.

    NaN and empty strings pass: they are missing values (`[MISSING]`).

    Args:
        features: dict of field name to tensor, the model's raw inputs.
        spec: FeatureSpec, the artifact (which fields are numeric).
        input_names: dict of field name to the name the messages give it
            (`serving_input_names`); by default the field names.

    Returns:
        dict of the same tensors, which the model may only read after the checks.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        ...         FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
        ...     ),
        ...     splits={"train": 100},
        ... )
        >>> @tf.function
        ... def checked(features):
        ...     return check_serving_features(features, spec)
        >>> site, price = tf.constant(["news", ""]), tf.constant([2.5, float("nan")])
        >>> checked({"site": site, "price": price})["price"].numpy().tolist()
        [2.5, nan]
        >>> try:
        ...     checked({"site": tf.constant(["news", "shop", ""]), "price": tf.constant([2.5])})
        ... except tf.errors.InvalidArgumentError as error:
        ...     print(next(line for line in error.message.splitlines() if "assertion" in line))
        assertion failed: [serving input `price` has 1 values but `site` has 3:
        every feature needs one value per example]
    """
    # Checked when the model runs, unlike `tf.rank(value)`, which the declared
    # `[None]` shape turns into the constant 1.
    features = {name: tf.ensure_shape(value, [None]) for name, value in features.items()}
    shown = dict(input_names or {})
    names = list(features)
    first = names[0]
    batch = tf.size(features[first])
    checks = []
    for name in names[1:]:
        size = tf.size(features[name])
        message = tf.strings.format(
            f"serving input `{shown.get(name, name)}` has {{}} values but "
            f"`{shown.get(first, first)}` has {{}}: every feature needs one value per example",
            (size, batch),
        )
        checks.append(tf.debugging.Assert(tf.equal(size, batch), [message]))
    for name in names:
        if spec.field(name).kind != "numeric":
            continue
        infinite = tf.reduce_sum(tf.cast(tf.math.is_inf(features[name]), tf.int32))
        message = tf.strings.format(
            f"serving input `{shown.get(name, name)}` holds {{}} infinite value(s): "
            "send NaN for a missing number",
            infinite,
        )
        checks.append(tf.debugging.Assert(tf.equal(infinite, 0), [message]))
    with tf.control_dependencies(checks):
        return {name: tf.identity(value) for name, value in features.items()}


def raw_signature(model):
    """A `tf.function` from raw feature values to the click probability.

    Args:
        model: a `CTRModel`.

    Returns:
        A `tf.function` taking every field of the model as a `[batch]` tensor
        under its input name (`serving_signature`, `serving_input_names`),
        checked by `check_serving_features`, and returning
        `{"probability": [batch] float32}`.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.models import full_model
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = full_model("fm", spec, dim=4, fields=["user", "device"])
        >>> serve = raw_signature(model)
        >>> outputs = serve({"user": tf.constant(["u1", ""]), "device": tf.constant(["d2", "d0"])})
        >>> print(outputs["probability"].shape)
        (2,)
    """

    input_names = serving_input_names(model.field_names)

    @tf.function(input_signature=[serving_signature(model.spec, model.field_names)])
    def serve(inputs):
        features = {field: inputs[name] for field, name in input_names.items()}
        checked = check_serving_features(features, model.spec, input_names)
        return {SERVING_OUTPUT: model(checked, training=False)}

    return serve


def examples_signature(model):
    """A `tf.function` from serialized `tf.train.Example`s to the click probability.

    The examples are parsed as the training data stores them (see
    `FeatureSpec.value_types`); the label may be absent, and so may any
    feature: an absent feature parses as in training (`feature_description`),
    to the missing value `""` or NaN when stored as text or floats. The parsed
    values pass `check_serving_features`.

    Args:
        model: a `CTRModel`.

    Returns:
        A `tf.function` taking a `[batch]` string tensor `examples` and
        returning `{"probability": [batch] float32}`.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.models import full_model
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = full_model("fm", spec, dim=4, fields=["user", "device"])
        >>> serve = examples_signature(model)
        >>> test = tf.data.TFRecordDataset(spec.split_files("test"), compression_type="GZIP")
        >>> serialized = next(iter(test.batch(3)))  # tf.train.Example protos, label included
        >>> print(serve(serialized)["probability"].shape)
        (3,)
    """
    spec = model.spec
    description = feature_description(spec)
    description.pop(spec.label)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples):
        features = model_features(spec, tf.io.parse_example(examples, description))
        features = {name: features[name] for name in model.field_names}
        return {SERVING_OUTPUT: model(check_serving_features(features, spec), training=False)}

    return serve_examples


def export_saved_model(model, directory: str, serve_examples: bool = False) -> str:
    """Saves `model` with a serving signature over raw feature values.

    The directory is written under a temporary name and renamed, so a killed
    export never leaves a directory that looks complete.

    Args:
        model: a `CTRModel` (any stage).
        directory: str, where the SavedModel goes.
        serve_examples: bool, the TFX convention: `serving_default` takes
            serialized `tf.train.Example`s (input `examples`), `serving_raw`
            the raw feature values, and the vocabulary files travel with the
            model as assets (`assets/`). Otherwise `serving_default` takes the
            raw values.

    The raw-value signature takes every field of the model, each as a
    `[batch]` tensor; `check_serving_features` lists the requests it refuses.

    Returns:
        The directory.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.models import full_model
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = full_model("fm", spec, dim=4, fields=["user", "device"])
        >>> path = export_saved_model(model, os.path.join(directory, "saved_model"))
        >>> serve = tf.saved_model.load(path).signatures["serving_default"]
        >>> outputs = serve(user=tf.constant(["u1", "never-seen"]), device=tf.constant(["d2", ""]))
        >>> print(outputs["probability"].shape)
        (2,)
        >>> saved_embedding_params(path)  # (79 + 9) ids * 4
        352
    """
    serve = raw_signature(model)
    signatures = {"serving_default": serve}
    if serve_examples:
        signatures = {"serving_default": examples_signature(model), "serving_raw": serve}
    for function in signatures.values():
        function.get_concrete_function()  # builds the model: its variables exist from here
    root = serving_root(model)
    if serve_examples:
        spec = model.spec
        root.vocabulary_assets = {
            name: tf.saved_model.Asset(os.path.join(spec.directory, spec.field(name).vocab_file))
            for name in model.field_names
        }
    tmp = f"{directory}.tmp-{os.getpid()}"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(root, tmp, signatures=signatures)
    if tf.io.gfile.exists(directory):
        tf.io.gfile.rmtree(directory)
    tf.io.gfile.rename(tmp, directory)
    return directory


def serving_root(model) -> tf.Module:
    """The object a SavedModel of `model` saves: its variables and lookup tables.

    The signatures added to it before saving capture nothing else (a resource
    they capture but the root does not hold makes `tf.saved_model.save` fail,
    never silently). Reloaded, `model_variables` keeps the variables' names.

    Args:
        model: a built Keras model.

    Returns:
        A `tf.Module` with `model_variables` and `lookup_tables`.

    Examples:

        >>> lookup = tf.keras.layers.StringLookup(vocabulary=["a", "b"])
        >>> model = tf.keras.Sequential([lookup, tf.keras.layers.Embedding(3, 2, name="embedding")])
        >>> _ = model(tf.constant(["a"]))
        >>> root = serving_root(model)
        >>> [v.name for v in root.model_variables], len(root.lookup_tables)
        (['embedding/embeddings:0'], 1)
    """
    root = tf.Module()
    root.model_variables = list(model.variables)
    tables, seen = [], set()
    for module in (model, *model.submodules):
        for value in vars(module).values():
            if isinstance(value, tf.saved_model.experimental.TrackableResource):
                if id(value) not in seen:
                    seen.add(id(value))
                    tables.append(value)
    root.lookup_tables = tables
    return root


def saved_embedding_params(directory: str) -> int:
    """Numbers held by the embedding tables of an exported model, as reloaded.

    Counts the variables named like the library's embedding tables
    (`embedding_table`, `candidate_table`, `embedding_values`); unify maps,
    first-order weights and networks are not counted.

    Args:
        directory: str, a SavedModel directory (`export_saved_model`).

    Returns:
        int, the number of embedding numbers.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.layers import PlannedEmbedding
        >>> model = tf.keras.Sequential([PlannedEmbedding(vocab_size=10, dim=4, output_dim=8)])
        >>> print(model(tf.constant([1, 2])).shape)
        (2, 8)
        >>> directory = tempfile.mkdtemp()
        >>> tf.saved_model.save(model, directory)
        >>> saved_embedding_params(directory)  # the [10, 4] table; the unify map is not counted
        40
    """
    loaded = tf.saved_model.load(directory)
    # `export_saved_model` saves a `serving_root`; a saved Keras model has `variables`.
    variables = getattr(loaded, "model_variables", None) or loaded.variables
    tables = [v for v in variables if _is_embedding_table(v.name)]
    return int(sum(v.shape.num_elements() for v in tables))


def _is_embedding_table(name: str) -> bool:
    return any(key in name for key in ("embedding_table", "candidate_table", "embedding_values"))
