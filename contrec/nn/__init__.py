"""The maths of a two-tower model: towers (`encoders`, `features`), similarity kernels and losses.

Nothing here knows about training loops, files or FAISS: modules take tensors and return tensors.
"""
