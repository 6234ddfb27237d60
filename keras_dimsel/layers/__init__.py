"""Keras layers: candidate embeddings, the dimension selector, the planned embedding,
and the adaptively-masked twins layer with its frequency features."""

from keras_dimsel.layers.adaptive_mask import AdaptiveMaskTwinsLayer
from keras_dimsel.layers.candidate_embedding import CandidateEmbedding
from keras_dimsel.layers.compact_embedding import CompactMaskedEmbedding
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector
from keras_dimsel.layers.frequency_features import FrequencyFeatures
from keras_dimsel.layers.planned_embedding import PlannedEmbedding

__all__ = [
    "AdaptiveMaskTwinsLayer",
    "CandidateEmbedding",
    "CompactMaskedEmbedding",
    "DimensionGumbelSelector",
    "FrequencyFeatures",
    "PlannedEmbedding",
]
