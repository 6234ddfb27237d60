"""AMTL's defaults, in a module of their own so that reading them loads no TensorFlow."""

#: D, the embedding dimension of a masked model without a warm start.
DEFAULT_MAX_DIM = 32
#: The share of the embedding numbers the default masked fields hold.
DEFAULT_TABLE_SHARE = 0.95
#: The hidden layers of each mask branch.
DEFAULT_HIDDEN_UNITS = (64,)
#: The temperature of the relaxed length selection.
DEFAULT_TEMPERATURE = 1.0
#: lambda, the weight of the memory term (average length / D per masked field).
DEFAULT_LENGTH_PENALTY = 0.02
#: Values are split into this many equal-size groups by frequency for the report.
FREQUENCY_GROUPS = 7
