"""`create_pipeline()`: the components of the keras_dimsel TFX pipeline, wired.

```
ExampleGen ─► StatisticsGen ─► FieldSchemaGen ─► ExampleValidator
    │               │                │                 │
    └───────────────┴────────────────┴─────────────────┴─► FeatureStatisticsGen
                                                              │
            ┌───────────────────────── BaselineTrainer (fde) ◄┤
            │                                 │               │
            │ (base_model, amtl warm start)   └──────────────►Trainer (method)
            ▼                                                  │
        Evaluator (test split; blesses within AUC_TOLERANCE of the baseline) ─► Pusher
```
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from tfx_pipeline import configs
from tfx_pipeline.example_gen import RawExampleGen
from tfx_pipeline.feature_statistics import FeatureStatisticsGen
from tfx_pipeline.field_schema import FieldSchemaGen
from tfx_pipeline.trainer_component import Trainer

RUN_FN = "tfx_pipeline.trainer.run_fn"


def split_config() -> example_gen_pb2.Output:
    """ExampleGen's train / eval / test hash-bucket split (`configs.SPLIT_BUCKETS`).

    Returns:
        The `example_gen_pb2.Output` ExampleGen takes as `output_config`.

    Examples:

        >>> [(split.name, split.hash_buckets) for split in split_config().split_config.splits]
        [('train', 8), ('eval', 1), ('test', 1)]
    """
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in configs.SPLIT_BUCKETS.items()
            ]
        )
    )


def eval_config(tolerance: float = configs.AUC_TOLERANCE) -> tfma.EvalConfig:
    """AUC and logloss on the test split; bless when AUC >= baseline AUC - tolerance.

    Args:
        tolerance: float, the AUC the model may lose against the baseline.

    Returns:
        The `tfma.EvalConfig` of the Evaluator.

    Examples:

        >>> config = eval_config(tolerance=0.01)
        >>> [metric.class_name for metric in config.metrics_specs[0].metrics]
        ['AUC', 'BinaryCrossentropy', 'ExampleCount']
        >>> config.metrics_specs[0].metrics[0].threshold.change_threshold.absolute.value
        -0.01
    """
    auc_threshold = tfma.MetricThreshold(
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -tolerance}
        )
    )
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=configs.LABEL_KEY)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="AUC", threshold=auc_threshold),
                    tfma.MetricConfig(class_name="BinaryCrossentropy"),
                    tfma.MetricConfig(class_name="ExampleCount"),
                ]
            )
        ],
    )


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    dataset: str,
    input_base: str,
    input_pattern: str,
    inputs: Sequence[str],
    label: str,
    fields: Sequence[dict],
    serving_dir: str,
    method: str = configs.DEFAULT_METHOD,
    train_config: Optional[dict] = None,
    tolerance: float = configs.AUC_TOLERANCE,
    min_count: int = configs.MIN_COUNT,
    num_buckets: int = configs.NUM_BUCKETS,
    metadata_connection_config=None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The pipeline, as a `tfx.dsl.Pipeline` for any orchestrator.

    Args:
        pipeline_name: str.
        pipeline_root: str, where the artifacts go.
        dataset: str, `csv` (read by `CsvExampleGen`) or a `dimsel preprocess`
            dataset name (read by `RawExampleGen`).
        input_base: str, the folder ExampleGen reads.
        input_pattern: str, the files of `input_base` it reads (`*`: all).
        inputs: list of str, the reader's inputs (other datasets).
        label: str, the label column.
        fields: list of dict, `{"name", "kind", "transform"}` per field.
        serving_dir: str, the Pusher's destination (`<serving_dir>/<version>/`).
        method: str, one of `configs.METHODS`.
        train_config: dict, overrides of `configs.DEFAULT_TRAIN_CONFIG` plus
            `model` and `dim`.
        tolerance: float, the AUC the model may lose against the baseline.
        min_count: int, values seen fewer times in train map to the OOV id.
        num_buckets: int, quantile buckets per numeric field.
        metadata_connection_config: ML Metadata connection (None: the runner's).
        beam_pipeline_args: list of str, Beam options for every Beam component.
        enable_cache: bool.

    Returns:
        The `tfx.dsl.Pipeline`; nothing runs until an orchestrator runs it.

    Raises:
        ValueError: on an unknown `method`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from tfx_pipeline.field_schema import field_dicts
        >>> output = tempfile.mkdtemp()
        >>> csv_path = os.path.join(output, "raw", "synthetic.csv")
        >>> reader = make_reader("synthetic", [csv_path], rows=100)
        >>> pipeline = create_pipeline(
        ...     pipeline_name="keras-dimsel",
        ...     pipeline_root=os.path.join(output, "pipeline_root"),
        ...     dataset="csv",
        ...     input_base=os.path.dirname(csv_path),
        ...     input_pattern="synthetic.csv",
        ...     inputs=[csv_path],
        ...     label=reader.label,
        ...     fields=field_dicts(reader.fields),
        ...     serving_dir=os.path.join(output, "serving"),
        ...     method="autodim",
        ...     train_config={"model": "fm", "dim": 8, "epochs": 1},
        ... )
        >>> [component.id for component in pipeline.components]
        ['CsvExampleGen', 'StatisticsGen', 'FieldSchemaGen', 'ExampleValidator',
         'FeatureStatisticsGen', 'BaselineTrainer', 'Trainer', 'Evaluator', 'Pusher']
        >>> tfx.orchestration.LocalDagRunner().run(pipeline)  # doctest: +SKIP
    """
    if method not in configs.METHODS:
        raise ValueError(f"`method` must be one of {configs.METHODS}. Received: {method!r}")
    if dataset == "csv":
        example_gen = tfx.components.CsvExampleGen(
            input_base=input_base,
            input_config=tfx.proto.Input(
                splits=[tfx.proto.Input.Split(name="all", pattern=input_pattern)]
            ),
            output_config=split_config(),
        )
    else:
        example_gen = RawExampleGen(dataset, input_base, input_pattern, inputs, split_config())
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    fields_json = json.dumps(list(fields))
    schema_gen = FieldSchemaGen(
        statistics=statistics_gen.outputs["statistics"], label=label, fields=fields_json
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    feature_statistics_gen = FeatureStatisticsGen(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        dataset=dataset,
        label=label,
        fields=fields_json,
        min_count=min_count,
        num_buckets=num_buckets,
    )
    config = {**configs.DEFAULT_TRAIN_CONFIG, **(train_config or {})}
    baseline_trainer = Trainer(
        examples=example_gen.outputs["examples"],
        feature_statistics=feature_statistics_gen.outputs["feature_statistics"],
        run_fn=RUN_FN,
        custom_config={**config, "method": "fde"},
    ).with_id("BaselineTrainer")
    trainer = Trainer(
        examples=example_gen.outputs["examples"],
        feature_statistics=feature_statistics_gen.outputs["feature_statistics"],
        run_fn=RUN_FN,
        custom_config={**config, "method": method},
        base_model=baseline_trainer.outputs["model"] if method == "amtl" else None,
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_trainer.outputs["model"],
        eval_config=eval_config(tolerance),
        example_splits=["test"],
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        feature_statistics_gen,
        baseline_trainer,
        trainer,
        evaluator,
        pusher,
    ]
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
