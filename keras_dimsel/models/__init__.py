"""Ready rankers: FM, WideDeep and DeepFM (TFRS models with a Ranking task)."""
