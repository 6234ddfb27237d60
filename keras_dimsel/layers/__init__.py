"""Keras layers: candidate embeddings, the dimension selector and the planned embedding."""

from keras_dimsel.layers.candidate_embedding import CandidateEmbedding
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector
from keras_dimsel.layers.planned_embedding import PlannedEmbedding

__all__ = ["CandidateEmbedding", "DimensionGumbelSelector", "PlannedEmbedding"]
