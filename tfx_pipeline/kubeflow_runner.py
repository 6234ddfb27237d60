"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, offline.

```
python -m tfx_pipeline.kubeflow_runner --output pipeline.json \
    --pipeline-root gs://BUCKET/root --input gs://BUCKET/criteo/train.txt --dataset criteo \
    --serving-dir gs://BUCKET/serving --image gcr.io/PROJECT/keras-dimsel:latest
```

The JSON is what `aiplatform.PipelineJob(template_path=...)` submits. The
image must hold this package and TFX 1.16 (e.g. built from `tfx:1.16.0` with
`pip install keras-dimsel[tfx]`). Flags the compiler does not know are Beam
pipeline options (`--runner=DataflowRunner --project=... --region=...`).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from keras_dimsel.data.reader import FieldDef  # noqa: E402
from tfx_pipeline import configs  # noqa: E402
from tfx_pipeline.field_schema import csv_fields, field_dicts  # noqa: E402

DEFAULT_IMAGE = "gcr.io/tfx-oss-public/tfx:1.16.0"
COMPILABLE_DATASETS = ("csv", "criteo", "avazu", "movielens-100k", "movielens-1m", "frappe")


def compile_pipeline(
    output: str,
    pipeline_root: str,
    dataset: str,
    input_path: str,
    serving_dir: str,
    label: str,
    fields: Sequence[dict],
    method: str = configs.DEFAULT_METHOD,
    image: str = DEFAULT_IMAGE,
    beam_pipeline_args: Sequence[str] = (),
) -> str:
    """Writes the Kubeflow V2 pipeline JSON of `create_pipeline()`; returns its path."""
    from tfx import v1 as tfx

    from tfx_pipeline.pipeline import create_pipeline

    input_base, pattern = os.path.dirname(input_path), os.path.basename(input_path) or "*"
    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=pipeline_root,
        dataset=dataset,
        input_base=input_base,
        input_pattern=pattern,
        inputs=[input_path],
        label=label,
        fields=fields,
        serving_dir=serving_dir,
        method=method,
        beam_pipeline_args=beam_pipeline_args,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_filename=output,
    )
    runner.run(pipeline, write_out=True)
    return output


def declared_fields(dataset: str, label: str, categorical, numeric) -> tuple:
    """`(label, fields)` of a dataset, without reading its (possibly remote) files."""
    from keras_dimsel.data import avazu, criteo, frappe, movielens

    if dataset == "csv":
        fields = csv_fields(categorical, numeric)
    elif dataset == "criteo":
        label = criteo.CriteoReader.label
        fields = [FieldDef(n, "numeric", "log_square") for n in criteo.INTEGER_FEATURES]
        fields += [FieldDef(n, "categorical") for n in criteo.CATEGORICAL_FEATURES]
    elif dataset == "avazu":
        label, fields = avazu.AvazuReader.label, list(avazu.AvazuReader.fields)
    elif dataset == "frappe":
        label, fields = frappe.FrappeReader.label, list(frappe.FrappeReader.fields)
    else:
        label, fields = movielens.MovieLensReader.label, list(movielens.MovieLensReader.fields)
    return label, field_dicts(fields)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.kubeflow_runner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output", required=True, help="the pipeline JSON to write")
    parser.add_argument("--pipeline-root", default="gs://BUCKET/keras-dimsel/root")
    parser.add_argument("--dataset", choices=COMPILABLE_DATASETS, default="csv")
    parser.add_argument("--input", default="gs://BUCKET/keras-dimsel/data/train.csv")
    parser.add_argument("--serving-dir", default="gs://BUCKET/keras-dimsel/serving")
    parser.add_argument("--method", choices=configs.METHODS, default=configs.DEFAULT_METHOD)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--label", default="label")
    parser.add_argument("--categorical", default="user,item,category,device")
    parser.add_argument("--numeric", default="price")
    args, beam_args = parser.parse_known_args(argv)
    label, fields = declared_fields(
        args.dataset,
        args.label,
        [n for n in args.categorical.split(",") if n],
        [n for n in args.numeric.split(",") if n],
    )
    path = compile_pipeline(
        args.output,
        args.pipeline_root,
        args.dataset,
        args.input,
        args.serving_dir,
        label,
        fields,
        method=args.method,
        image=args.image,
        beam_pipeline_args=beam_args,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
