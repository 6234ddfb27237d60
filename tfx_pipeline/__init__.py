"""The TFX pipeline of keras_dimsel: preprocess, search, retrain, evaluate, push.

`pipeline.create_pipeline()` wires the components; `local_runner` runs it with
`LocalDagRunner`, `kubeflow_runner` compiles it for Kubeflow Pipelines / Vertex AI.
"""
