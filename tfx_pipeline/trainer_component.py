"""`Trainer`: TFX's Trainer with the feature statistics artifact as one more input.

Everything else is the stock Trainer: the `run_fn` of a module gets `FnArgs`,
with the artifact's directory added to `fn_args.custom_config` under
`feature_statistics`.
"""

from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from tfx_pipeline.feature_statistics import FeatureStatistics

FEATURE_STATISTICS_KEY = "feature_statistics"


class TrainerSpec(standard_component_specs.TrainerSpec):
    INPUTS = {
        **standard_component_specs.TrainerSpec.INPUTS,
        FEATURE_STATISTICS_KEY: ChannelParameter(type=FeatureStatistics),
    }


class Executor(trainer_executor.GenericExecutor):
    """The generic Trainer executor, passing the feature statistics' location on."""

    def Do(self, input_dict, output_dict, exec_properties):
        """Adds the artifact's location to `custom_config`, then trains as the stock executor."""
        location = artifact_utils.get_single_uri(input_dict[FEATURE_STATISTICS_KEY])
        key = standard_component_specs.CUSTOM_CONFIG_KEY
        custom_config = json_utils.loads(exec_properties.get(key) or "null") or {}
        custom_config = {**custom_config, "feature_statistics": location}
        exec_properties = {**exec_properties, key: json_utils.dumps(custom_config)}
        return super().Do(input_dict, output_dict, exec_properties)


class Trainer(base_component.BaseComponent):
    """Trains with `run_fn(fn_args)`; outputs `model` and `model_run` as TFX's Trainer.

    Args:
        examples: ExampleGen's examples.
        feature_statistics: `FeatureStatisticsGen`'s output.
        run_fn: str, the dotted path of the training function.
        custom_config: dict, passed to `run_fn` as `fn_args.custom_config`.
        base_model: optional Model channel (`fn_args.base_model`).
        schema: optional Schema channel (`fn_args.schema_path`).
    """

    SPEC_CLASS = TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        feature_statistics: types.BaseChannel,
        run_fn: str,
        custom_config: dict,
        base_model: Optional[types.BaseChannel] = None,
        schema: Optional[types.BaseChannel] = None,
    ):
        spec = TrainerSpec(
            examples=examples,
            feature_statistics=feature_statistics,
            base_model=base_model,
            schema=schema,
            train_args=trainer_pb2.TrainArgs(),
            eval_args=trainer_pb2.EvalArgs(),
            run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
