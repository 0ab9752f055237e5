"""Serving: the FAISS index (the only module that imports FAISS) and the one retrieval path,
`recommender.FactorRecommender`, that contrec and every baseline answer through."""
