"""Which towers a model has (`TowerConfig`, validated when built) and how they are built from the data.

Example:
    >>> TowerConfig(dim=32, user_tower="history", pooling="attention").user_tower
    'history'
    >>> TowerConfig(pooling="max")
    Traceback (most recent call last):
    ...
    contrec.errors.ConfigError: pooling must be one of 'mean', 'attention' (got 'max')
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from contrec.data.interactions import Interactions
from contrec.errors import ConfigError, check_choice, check_int, check_number
from contrec.nn.encoders import Encoder, FeatureEncoder, HistoryEncoder, IdEncoder, Projected
from contrec.nn.features import FeatureTokens, item_feature_tokens
from contrec.nn.graph import GraphEncoder
from contrec.nn.simplex import SimplexEncoder
from contrec.nn.spectral import spectral_start, spectral_vectors

__all__ = ["TowerConfig", "USER_TOWERS", "ITEM_TOWERS", "POOLINGS", "build_user_tower", "build_item_tower",
           "feature_tokens", "start_towers", "INITS"]

USER_TOWERS = ("id", "history", "simplex", "graph")
ITEM_TOWERS = ("id", "features", "graph")
POOLINGS = ("mean", "attention")
INITS = ("random", "spectral")


@dataclass(frozen=True, kw_only=True)
class TowerConfig:
    """The towers' settings (see `contrec.models.contrastive.ContrastiveRecommender` for each field)."""

    dim: int = 128
    user_tower: str = "id"
    pooling: str = "mean"
    history_user_id: bool = False
    history_dropout: float = 0.5
    history_cap: int = 256
    graph_layers: int = 2
    item_tower: str = "id"
    item_features: tuple[str, ...] | list[str] | None = None
    id_dropout: float = 0.2
    projection: int = 0
    init: str = "random"
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("dim", self.dim)
        check_choice("user_tower", self.user_tower, USER_TOWERS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("item_tower", self.item_tower, ITEM_TOWERS)
        check_choice("init", self.init, INITS)
        check_int("projection", self.projection, 0)
        check_int("history_cap", self.history_cap, 0)
        check_int("graph_layers", self.graph_layers)
        for name in ("history_dropout", "id_dropout"):
            check_number(name, getattr(self, name), below=1.0)


def build_user_tower(config: TowerConfig, n_users: int, history: sp.csr_matrix, generator: torch.Generator
                     ) -> Encoder:
    """The user tower: one vector per user, or pooled vectors of the user's items (``history``, binary)."""
    if config.user_tower == "history":
        tower: Encoder = HistoryEncoder(history, config.dim, pooling=config.pooling, user_id=config.history_user_id,
                                        dropout=config.history_dropout, cap=config.history_cap, generator=generator,
                                        seed=config.seed)
    elif config.user_tower == "simplex":
        tower = SimplexEncoder(history, config.dim, dropout=config.history_dropout, cap=config.history_cap,
                               generator=generator, seed=config.seed)
    elif config.user_tower == "graph":
        tower = GraphEncoder(n_users, config.dim, generator=generator)
    else:
        tower = IdEncoder(n_users, config.dim, generator=generator)
    return Projected(tower, config.projection, generator=generator) if config.projection else tower


def feature_tokens(config: TowerConfig, train: Interactions) -> FeatureTokens:
    """The attribute tokens of a feature item tower; a one-line error when the data has none."""
    if train.item_attributes is None:
        raise ConfigError("item_tower='features' needs item attributes (MovieLens loaders include them; "
                          "pass --item-attributes / item_attributes= for your own data)")
    tokens = item_feature_tokens(train.item_attributes, config.item_features)
    if not tokens.vocabulary:
        raise ConfigError("the item attributes give no feature tokens (every column is free text or empty); "
                          "name the columns with item_features=")
    return tokens


def build_item_tower(config: TowerConfig, train: Interactions, generator: torch.Generator,
                     tokens: FeatureTokens | None = None) -> Encoder:
    """The item tower: one vector per item, or ID + attribute tokens (``tokens``, from `feature_tokens`)."""
    if config.item_tower == "features":
        tokens = tokens if tokens is not None else feature_tokens(config, train)
        tower: Encoder = FeatureEncoder(train.n_items, config.dim, tokens, known=train.item_counts() > 0,
                                        id_dropout=config.id_dropout, generator=generator, seed=config.seed)
    elif config.item_tower == "graph":
        tower = GraphEncoder(train.n_items, config.dim, generator=generator)
    else:
        tower = IdEncoder(train.n_items, config.dim, generator=generator)
    return Projected(tower, config.projection, generator=generator) if config.projection else tower


def start_towers(config: TowerConfig, user: Encoder, item: Encoder, matrix: sp.csr_matrix) -> None:
    """``init="spectral"``: start the ID tables (ID and graph towers) from the spectrum of the training
    interactions (`contrec.nn.spectral`); other towers keep their random start."""
    if config.init != "spectral":
        return
    tables = (user.id_table(), item.id_table())
    if tables == (None, None):
        return
    for table, vectors in zip(tables, spectral_vectors(matrix, config.dim, config.seed)):
        if table is not None:
            spectral_start(table, vectors)
