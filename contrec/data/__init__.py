"""Data: `Interactions`, readers, splits and the MovieLens loaders."""

from contrec.data.interactions import IdMap, Interactions, read_interactions
from contrec.data.movielens import dataset_names, fetch_movielens, load_movielens
from contrec.data.readers import DroppedRowsWarning, DuplicateRowsWarning
from contrec.data.splits import split_random, split_temporal

__all__ = ["IdMap", "Interactions", "read_interactions", "load_movielens", "fetch_movielens", "dataset_names",
           "split_random", "split_temporal", "DuplicateRowsWarning", "DroppedRowsWarning"]
