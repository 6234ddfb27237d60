"""Keras layers: candidate embeddings, the dimension selector and the planned embedding."""
