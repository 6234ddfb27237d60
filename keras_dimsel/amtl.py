"""AMTL end to end: warm start, training, the compact model and its report.

`run_amtl` is `dimsel amtl`: it builds a ranker whose chosen fields are masked
value by value (`AdaptiveMaskTwinsLayer`), optionally starts it from a trained
full-dimension model, trains it, then computes every value's length once and
exports the compact model, whose masked tables hold only those lengths.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from keras_dimsel import _io
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model
from keras_dimsel.models import MODELS, make_model
from keras_dimsel.models.base import value_counts

#: Values are split into this many equal-size groups by frequency for the report.
FREQUENCY_GROUPS = 7
DEFAULT_MAX_DIM = 32
#: the share of the embedding numbers the default masked fields hold
DEFAULT_TABLE_SHARE = 0.95
DEFAULT_HIDDEN_UNITS = (64,)
DEFAULT_TEMPERATURE = 1.0
DEFAULT_LENGTH_PENALTY = 0.02
_TABLE_SUFFIX = "/embedding_table/.ATTRIBUTES/VARIABLE_VALUE"
_TABLE_PREFIX = "field_embeddings/embeddings/"


def default_fields(
    spec: FeatureSpec, max_dim: int, share: float = DEFAULT_TABLE_SHARE
) -> List[str]:
    """The fields worth masking by default: the largest tables.

    Fields are taken largest first until they hold `share` of the embedding
    numbers; a field with no more ids than `max_dim` is never taken (its
    table is no larger than the mask network's output). The small tables
    left out hold little memory, and masking them costs accuracy for almost
    no saving (on the Criteo sample: 13 of 39 fields hold 95% of the numbers).

    Args:
        spec: FeatureSpec, the artifact (its vocabulary sizes).
        max_dim: int, D, the embedding dimension of the masked model.
        share: float in (0, 1], the share of the embedding numbers to cover.

    Returns:
        The field names in the spec's order.

    Raises:
        ValueError: when `share` is not in (0, 1].

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> sizes = {"user": 900, "site": 80, "device": 9, "hour": 25}
        >>> fields = [
        ...     FieldSpec(name, "categorical", size, f"vocab/{name}.txt")
        ...     for name, size in sizes.items()
        ... ]
        >>> spec = FeatureSpec(label="label", fields=tuple(fields), splits={"train": 1000})
        >>> default_fields(spec, max_dim=8)  # 980 of the 1,014 ids
        ['user', 'site']
        >>> default_fields(spec, max_dim=16, share=1.0)  # device has no more ids than D
        ['user', 'site', 'hour']
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"`share` must be in (0, 1]. Received: share={share!r}")
    sizes = {f.name: f.vocab_size for f in spec.fields if f.vocab_size > max_dim}
    total = sum(f.vocab_size for f in spec.fields)
    chosen, held = set(), 0
    for name in sorted(sizes, key=lambda n: -sizes[n]):
        if held >= share * total:
            break
        chosen.add(name)
        held += sizes[name]
    return [f.name for f in spec.fields if f.name in chosen]


def checkpoint_tables(path: str) -> Dict[str, tuple]:
    """The embedding table shapes `{field: (vocab_size, dim)}` saved in a checkpoint.

    Args:
        path: str, a `CTRModel.network_weights()` checkpoint prefix.

    Returns:
        dict of field name to `(vocab_size, dim)`, in name order.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = make_model("fm", spec, stage="full", dim=4, fields=["user", "device"])
        >>> features, _ = next(iter(make_dataset(spec, "test", batch_size=2)))
        >>> _ = model(features)
        >>> path = model.network_weights().write(os.path.join(directory, "weights", "model"))
        >>> checkpoint_tables(path)
        {'device': (9, 4), 'user': (79, 4)}
    """
    tables = {}
    for name, shape in tf.train.list_variables(path):
        if name.startswith(_TABLE_PREFIX) and name.endswith(_TABLE_SUFFIX):
            tables[name[len(_TABLE_PREFIX) : -len(_TABLE_SUFFIX)]] = tuple(shape)
    return tables


def check_warm_start(model, tables: Dict[str, tuple], source: str) -> None:
    """Checks a trained model's tables fit `model`: same fields, vocab sizes and dim.

    Args:
        model: the `CTRModel` to warm start (amtl stage).
        tables: dict of field to `(vocab_size, dim)` (`checkpoint_tables`).
        source: str, names the trained model in the messages.

    Raises:
        ValueError: naming the mismatch and `source`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = make_model(
        ...     "fm", spec, stage="amtl", dim=8, fields=["user", "device"], amtl_fields=["user"]
        ... )
        >>> check_warm_start(model, {"user": (79, 8), "device": (9, 8)}, "the baseline run")
        >>> check_warm_start(model, {"user": (79, 4), "device": (9, 4)}, "the baseline run")
        Traceback (most recent call last):
        ...
        ValueError: the tables of the baseline run have dim 4, but the masked model uses ...
    """
    embeddings = model.field_embeddings
    if not tables:
        raise ValueError(f"{source} holds no embedding tables to warm start from")
    missing = [name for name in model.field_names if name not in tables]
    extra = [name for name in tables if name not in model.field_names]
    if missing or extra:
        raise ValueError(
            f"the fields of {source} do not match the data: missing {missing}, "
            f"not in the data {extra}"
        )
    for name in model.field_names:
        vocab_size, dim = tables[name]
        if vocab_size != embeddings.vocab_sizes[name]:
            raise ValueError(
                f"field {name!r} has {vocab_size} ids in {source} and "
                f"{embeddings.vocab_sizes[name]} in the data: it was trained on other data"
            )
        if dim != embeddings.dim:
            raise ValueError(
                f"the tables of {source} have dim {dim}, but the masked model uses "
                f"max dim {embeddings.dim} (give --max-dim {dim} or leave it out)"
            )


def warm_start_from_checkpoint(model, path: str, source: Optional[str] = None) -> None:
    """Loads a trained full-dimension model's weights into an AMTL model.

    Tables, first-order weights, bias and network are read from `path`, a
    `CTRModel.network_weights()` checkpoint (`RUN/weights/model` of a
    `dimsel baseline` run); the mask networks keep their initial weights.
    The model must be built.

    Args:
        model: a built `CTRModel` of the amtl stage.
        path: str, the checkpoint prefix.
        source: str or None, names the trained model in the messages (default: `path`).

    Raises:
        ValueError: when the fields, vocabulary sizes or dim do not match.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> fields = ["user", "device"]
        >>> features, _ = next(iter(make_dataset(spec, "test", batch_size=2)))
        >>> full = make_model("fm", spec, stage="full", dim=4, fields=fields)
        >>> _ = full(features)
        >>> path = full.network_weights().write(os.path.join(directory, "weights", "model"))
        >>> model = make_model("fm", spec, stage="amtl", dim=4, fields=fields, amtl_fields=["user"])
        >>> _ = model(features)
        >>> warm_start_from_checkpoint(model, path)
        >>> def user_table(m):
        ...     return m.field_embeddings.embeddings["user"].embedding_table.numpy()
        >>> bool((user_table(model) == user_table(full)).all())
        True
    """
    source = source or path
    check_warm_start(model, checkpoint_tables(path), source)
    # The mask networks have no entry in the checkpoint: a partial read by design.
    model.network_weights().read(path).expect_partial()
    for name, layer in model.field_embeddings.embeddings.items():
        saved = tf.train.load_variable(path, _TABLE_PREFIX + name + _TABLE_SUFFIX)
        if not np.array_equal(layer.embedding_table.numpy(), saved):
            raise ValueError(f"the table of field {name!r} could not be loaded from {source}")


def warm_start_from_model(model, trained) -> None:
    """Warm start from a trained full-dimension model in memory (a built `CTRModel`).

    Args:
        model: a built `CTRModel` of the amtl stage.
        trained: a built `CTRModel` of the full stage with the same fields and dim.

    Raises:
        ValueError: when the fields, vocabulary sizes or dim do not match.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> fields = ["user", "device"]
        >>> features, _ = next(iter(make_dataset(spec, "test", batch_size=2)))
        >>> full = make_model("fm", spec, stage="full", dim=4, fields=fields)
        >>> _ = full(features)
        >>> model = make_model("fm", spec, stage="amtl", dim=4, fields=fields, amtl_fields=["user"])
        >>> _ = model(features)
        >>> warm_start_from_model(model, full)
        >>> def user_table(m):
        ...     return m.field_embeddings.embeddings["user"].embedding_table.numpy()
        >>> bool((user_table(model) == user_table(full)).all())
        True
    """
    with tempfile.TemporaryDirectory() as directory:
        path = trained.network_weights().write(os.path.join(directory, "trained"))
        warm_start_from_checkpoint(model, path, source=f"model {trained.name!r}")


def compact_model(model, spec: FeatureSpec, model_name: str):
    """The serving model of a trained AMTL model: each masked row keeps its length.

    Args:
        model: a built `CTRModel` of the amtl stage.
        spec: FeatureSpec, the artifact (a test batch builds the compact model).
        model_name: str, `fm`, `wide_deep` or `deepfm`: the class of `model`.

    Returns:
        `(compact, lengths)`: the compact model, with every weight copied, and
        the length of every id of each masked field.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = make_model(
        ...     "fm", spec, stage="amtl", dim=8, fields=["user", "device"], amtl_fields=["user"]
        ... )
        >>> features, _ = next(iter(make_dataset(spec, "test", batch_size=2)))
        >>> _ = model(features)
        >>> compact, lengths = compact_model(model, spec, "fm")
        >>> lengths["user"].shape  # one length in [1, 8] per id of `user`
        (79,)
        >>> compact.embedding_params == int(lengths["user"].sum()) + 9 * 8
        True
        >>> np.allclose(compact(features), model(features))
        True
    """
    embeddings = model.field_embeddings
    lengths = embeddings.value_lengths_now()
    compact = make_model(
        model_name,
        spec,
        stage="compact",
        fields=model.field_names,
        dim=embeddings.dim,
        value_lengths={name: values.tolist() for name, values in lengths.items()},
    )
    features, _ = next(iter(make_dataset(spec, "test", batch_size=2)))
    compact(features)
    with tempfile.TemporaryDirectory() as directory:
        path = model.network_weights().write(os.path.join(directory, "amtl"))
        # The masked tables and mask networks have no place in the compact model.
        compact.network_weights().read(path).expect_partial()
    for name in lengths:
        table = embeddings.embeddings[name].embedding_table.numpy()
        compact.field_embeddings.embeddings[name].assign_table(table)
    return compact, lengths


def dims_by_frequency_group(
    lengths: Sequence[int], counts: Sequence[int], groups: int = FREQUENCY_GROUPS
) -> List[float]:
    """Average length in `groups` equal-size groups of values, rarest first.

    Values are ordered by train count (ties by id) and split into groups of
    (nearly) equal size, as the paper's G0..G6.

    Args:
        lengths: sequence of int, the length of every id of a field.
        counts: sequence of int, the train count of every id (`value_counts`).
        groups: int, the number of groups.

    Returns:
        list of float, the average length of each group, rarest first.

    Examples:

        >>> counts = [0, 50, 3, 9, 100, 1, 7]
        >>> lengths = [1, 6, 2, 3, 7, 1, 4]
        >>> dims_by_frequency_group(lengths, counts)  # by count: 0, 1, 3, 7, 9, 50, 100
        [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]
        >>> [round(d, 2) for d in dims_by_frequency_group(lengths, counts, groups=2)]
        [2.0, 5.33]
    """
    order = np.argsort(np.asarray(counts), kind="stable")
    lengths = np.asarray(lengths, dtype=np.float64)[order]
    return [float(part.mean()) for part in np.array_split(lengths, groups) if part.size]


def plot_amtl_dims(report: Dict[str, List[float]], max_dim: int, path: str) -> None:
    """Average dim against frequency group, one line per masked field.

    Args:
        report: dict of field to its average dims by group (`dims_by_frequency_group`).
        max_dim: int, D (the top of the y axis).
        path: str, the PNG file to write.

    Examples:

        >>> import os, tempfile
        >>> report = {"user": [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]}
        >>> path = os.path.join(tempfile.mkdtemp(), "amtl_dims.png")
        >>> plot_amtl_dims(report, max_dim=8, path=path)
        >>> os.path.getsize(path) > 1000
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for name, dims in report.items():
        axis.plot(range(len(dims)), dims, marker="o", label=name)
    axis.set_xticks(range(FREQUENCY_GROUPS))
    axis.set_xticklabels([f"G{i}" for i in range(FREQUENCY_GROUPS)])
    axis.set_xlabel("frequency group (rarest first, equal numbers of values)")
    axis.set_ylabel("average dim")
    axis.set_ylim(0, max_dim + 1)
    axis.legend(fontsize=7)
    figure.tight_layout()
    with _io.open_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=110)
    plt.close(figure)


def run_amtl(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    fields: Optional[Sequence[str]] = None,
    max_dim: Optional[int] = None,
    warm_start: Optional[str] = None,
    hidden_units: Sequence[int] = DEFAULT_HIDDEN_UNITS,
    temperature: float = DEFAULT_TEMPERATURE,
    straight_through: bool = True,
    twins: bool = True,
    train_network: bool = True,
    length_penalty: float = DEFAULT_LENGTH_PENALTY,
    initial_length: Union[int, str, None] = None,
    settings=None,
) -> dict:
    """Trains value-level dimensions (AMTL), exports the compact model, writes metrics.

    Args:
        spec: the artifact.
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        fields: the fields to mask; None masks the largest tables, those
            holding 95% of the embedding numbers (`default_fields`).
        max_dim: int, D; None takes the warm-start model's dim, or 32.
        warm_start: str or None, a `dimsel baseline` run to start from.
        hidden_units: sequence of int, the hidden layers of each mask branch.
        temperature: float > 0, the relaxed selection's temperature.
        straight_through: bool, AMTL (True) or AMTL-nSTE (False).
        twins: bool, AMTL's two branches (True) or the single-branch AML.
        train_network: bool, also fine-tune tables and network (else only the
            mask networks learn).
        length_penalty: float >= 0, the weight of the memory term (the
            average length over each masked field's values, divided by D);
            0 is the paper's objective.
        initial_length: the length every value starts with: None (the
            paper's start) for the random lengths of freshly initialised mask
            networks, an int in [1, D], or `"full"` for D, with which a warm
            start begins as exactly the trained model.
        settings: `TrainSettings`.

    Returns:
        The metrics written to `RUN/metrics.json`.

    Raises:
        FileNotFoundError: when `warm_start` holds no trained weights.
        ValueError: on an unknown model, a warm start of another model, or
            unknown fields.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> from keras_dimsel.workflow import TrainSettings, run_baseline
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> baseline = os.path.join(directory, "baseline")
        >>> _ = run_baseline(spec, "fm", baseline, dim=8, settings=settings)  # doctest: +SKIP
        >>> metrics = run_amtl(  # doctest: +SKIP
        ...     spec, "fm", os.path.join(directory, "amtl"), fields=["user", "item"],
        ...     warm_start=baseline, settings=settings,
        ... )
        >>> sorted(metrics["average_dim"])  # doctest: +SKIP
        ['item', 'user']
    """
    from keras_dimsel.workflow import (
        DEFAULT_LEARNING_RATE,
        WEIGHTS,
        TrainSettings,
        _fit_resumably,
        _seed_everything,
        _write_json,
        evaluate,
    )

    settings = (settings or TrainSettings()).resolve(spec)
    if model_name not in MODELS:
        raise ValueError(f"`model` must be one of {tuple(MODELS)}. Received: model={model_name!r}")
    source_dim = None
    if warm_start:
        variables = os.path.join(warm_start, WEIGHTS)
        if not _io.exists(variables + ".index"):
            raise FileNotFoundError(
                f"{warm_start} holds no trained weights ({variables}.index not found): "
                "--warm-start takes a `dimsel baseline` run"
            )
        source = _read_metrics(warm_start)
        if source.get("model") != model_name:
            raise ValueError(
                f"the warm-start run {warm_start} trained model {source.get('model')!r}, "
                f"not {model_name!r}"
            )
        source_dim = source.get("dim")
    max_dim = max_dim or source_dim or DEFAULT_MAX_DIM
    if fields is None:
        fields = default_fields(spec, max_dim)
        if not fields:
            raise ValueError(f"no field of {spec.directory} has more than {max_dim} ids to mask")
    unknown = [name for name in fields if name not in spec.field_names]
    if unknown:
        raise ValueError(f"field(s) {unknown} are not in the data; its fields: {spec.field_names}")
    if initial_length == "full":
        initial_length = max_dim
    elif initial_length is not None and not (
        isinstance(initial_length, int)
        and not isinstance(initial_length, bool)
        and 1 <= initial_length <= max_dim
    ):
        raise ValueError(
            f"`initial_length` must be None, 'full' or an integer in [1, {max_dim}] "
            f"(the max dim). Received: initial_length={initial_length!r}"
        )
    _seed_everything(settings.seed)
    _io.makedirs(output)
    options = {
        "hidden_units": list(hidden_units),
        "temperature": temperature,
        "straight_through": straight_through,
        "twins": twins,
    }
    if initial_length is not None:  # absent when random: runs made before the option resume
        options["initial_length"] = initial_length
    model = make_model(
        model_name,
        spec,
        stage="amtl",
        dim=max_dim,
        amtl_fields=list(fields),
        amtl_options=options,
        length_penalty=length_penalty,
    )
    model(next(iter(make_dataset(spec, "train", settings.batch_size)))[0])
    if warm_start:
        warm_start_from_checkpoint(model, variables, source=warm_start)
    if not train_network:
        model.freeze_all_but_masks()
    model.compile(optimizer=tf.keras.optimizers.Adam(DEFAULT_LEARNING_RATE))
    run_options = {
        "command": "amtl",
        "model": model_name,
        "fields": list(fields),
        "max_dim": max_dim,
        "warm_start": warm_start,
        "train_network": train_network,
        "length_penalty": length_penalty,
        **options,
    }
    validation = make_dataset(spec, "validation", settings.batch_size)
    run, examples_per_second, kept = _fit_resumably(
        model, spec, settings, output, run_options, validation_data=validation
    )
    compact, lengths = compact_model(model, spec, model_name)
    compact.compile()
    metrics = evaluate(compact, spec, settings.batch_size)
    full_params = sum(spec.field(name).vocab_size * max_dim for name in model.field_names)
    groups = {}
    for name, values in lengths.items():
        groups[name] = dims_by_frequency_group(values, value_counts(spec, name))
    metrics.update(
        {
            "model": model_name,
            "full_embedding_params": full_params,
            "max_dim": max_dim,
            "fields": list(fields),
            "average_dim": {name: float(values.mean()) for name, values in lengths.items()},
            "dim_by_frequency_group": groups,
            "train_examples_per_second": examples_per_second,
            "warm_start": warm_start,
            "train_network": train_network,
            "length_penalty": length_penalty,
            **options,
            **kept,
        }
    )
    export_saved_model(compact, os.path.join(output, "saved_model"), settings.serve_examples)
    plot_amtl_dims(groups, max_dim, os.path.join(output, "amtl_dims.png"))
    # Written last: a run directory with metrics.json is complete.
    _write_json(os.path.join(output, "metrics.json"), metrics)
    run.remove()
    return metrics


def summary_table(metrics: dict) -> str:
    """Per masked field: average dim, and average dim by frequency group (rarest first).

    Args:
        metrics: dict, the metrics of `run_amtl`.

    Returns:
        str, one line per masked field, then the embedding parameters.

    Examples:

        >>> metrics = {
        ...     "dim_by_frequency_group": {"user": [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]},
        ...     "average_dim": {"user": 3.43},
        ...     "max_dim": 8,
        ...     "embedding_params": 24,
        ...     "full_embedding_params": 56,
        ... }
        >>> print(summary_table(metrics))
        field  avg dim     G0     G1     G2     G3     G4     G5     G6
        ---------------------------------------------------------------
        user      3.43    1.0    1.0    2.0    4.0    3.0    6.0    7.0
        max dim 8; embedding parameters 24 of 56 (42.9%)
    """
    groups = metrics["dim_by_frequency_group"]
    width = max(len("field"), *(len(name) for name in groups))
    header = (
        "field".ljust(width)
        + "  avg dim  "
        + "  ".join(f"G{i}".rjust(5) for i in range(FREQUENCY_GROUPS))
    )
    lines = [header, "-" * len(header)]
    for name, dims in groups.items():
        cells = "  ".join(f"{d:5.1f}" for d in dims)
        lines.append(f"{name.ljust(width)}  {metrics['average_dim'][name]:7.2f}  {cells}")
    lines.append(
        f"max dim {metrics['max_dim']}; embedding parameters {metrics['embedding_params']:,} of "
        f"{metrics['full_embedding_params']:,} "
        f"({metrics['embedding_params'] / metrics['full_embedding_params']:.1%})"
    )
    return "\n".join(lines)


def _read_metrics(run_dir: str) -> dict:
    path = os.path.join(run_dir, "metrics.json")
    if not _io.exists(path):
        raise FileNotFoundError(f"{path} not found: --warm-start takes a `dimsel baseline` run")
    with _io.open_file(path) as f:
        return json.load(f)
