"""`run_amtl`: value-level dimensions trained, the compact model exported, the report written.

It builds a ranker whose chosen fields are masked value by value
(`MaskedEmbeddings`), optionally starts it from a trained full-dimension
model, trains it, then computes every value's length once and exports the
compact model, whose masked tables hold only those lengths.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

from keras_dimsel import _io
from keras_dimsel.amtl.compact import compact_model
from keras_dimsel.amtl.defaults import (
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_DIM,
    DEFAULT_TABLE_SHARE,
    DEFAULT_TEMPERATURE,
)
from keras_dimsel.amtl.embeddings import freeze_all_but_masks, masked_model
from keras_dimsel.amtl.report import dims_by_frequency_group, plot_amtl_dims
from keras_dimsel.amtl.warm_start import warm_start_from_run
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model
from keras_dimsel.models import check_model_name
from keras_dimsel.training import (
    METRICS,
    RunDir,
    TrainSettings,
    evaluate,
    fit_resumably,
    seed_everything,
)
from keras_dimsel.training.memory import BYTES_PER_NUMBER


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
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))  # doctest: +SKIP
        >>> from keras_dimsel.training import TrainSettings, run_baseline
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
    settings = (settings or TrainSettings()).resolve(spec)
    check_model_name(model_name)
    source_dim = None
    if warm_start:
        source_run = RunDir(warm_start)
        if not source_run.has_weights():
            raise FileNotFoundError(
                f"{warm_start} holds no trained weights ({source_run.weights}.index not found): "
                "--warm-start takes a `dimsel baseline` run"
            )
        source = source_run.read_metrics()
        if source is None:
            raise FileNotFoundError(
                f"{source_run.join(METRICS)} not found: --warm-start takes a `dimsel baseline` run"
            )
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
    seed_everything(settings.seed)
    _io.makedirs(output)
    options = {
        "hidden_units": list(hidden_units),
        "temperature": temperature,
        "straight_through": straight_through,
        "twins": twins,
    }
    if initial_length is not None:  # absent when random: runs made before the option resume
        options["initial_length"] = initial_length
    model = masked_model(model_name, spec, list(fields), max_dim, options, length_penalty)
    model.build_weights()
    if warm_start:
        warm_start_from_run(model, warm_start)
    if not train_network:
        freeze_all_but_masks(model)
    model.compile(optimizer=settings.optimizer())
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
    # After training, the compact copy of the masked tables, and its copies on the way.
    masked = sum(spec.field(name).vocab_size * max_dim for name in fields)
    run, examples_per_second, kept = fit_resumably(
        model,
        spec,
        settings,
        output,
        run_options,
        extra_memory=2 * BYTES_PER_NUMBER * masked,
        log_extra=model.field_embeddings.log_lengths,
        validation_data=validation,
    )
    compact, lengths = compact_model(model)
    compact.compile()
    metrics = evaluate(compact, spec, settings.batch_size)
    full_params = sum(spec.field(name).vocab_size * max_dim for name in model.field_names)
    groups = {}
    for name, values in lengths.items():
        groups[name] = dims_by_frequency_group(values, spec.value_count_array(name))
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
    run_dir = RunDir(output)
    export_saved_model(compact, run_dir.saved_model, settings.serve_examples)
    plot_amtl_dims(groups, max_dim, run_dir.join("amtl_dims.png"))
    run_dir.write_metrics(metrics)  # last: a run directory with metrics.json is complete
    run.remove()
    return metrics
