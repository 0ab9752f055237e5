"""`ContrastiveRecommender`: a user tower and an item tower (ID, feature or history towers, optionally
with a projection head) trained with sampled-softmax InfoNCE, served by FAISS."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from contrec import distributed
from contrec.artifact import read_artifact, write_artifact
from contrec.data.interactions import IdMap, Interactions
from contrec.encoders import Encoder, FeatureEncoder, HistoryEncoder, IdEncoder, Projected, history_tower
from contrec.errors import ConfigError, DataError, ModelFileError
from contrec.evaluation import vectors_ndcg
from contrec.losses import OBJECTIVES
from contrec.recommender import FactorRecommender, _binary
from contrec.samplers import NegativeSampler, get_sampler
from contrec.similarity import Similarity, get_similarity
from contrec.threads import default_threads, torch_threads, usable_cpus
from contrec.training import OPTIMIZERS, Checkpointing, TrainingConfig, train_two_tower

__all__ = ["ContrastiveRecommender", "IgnoredWeightsWarning", "WEIGHTS_IGNORED"]

WEIGHTS_IGNORED = ("the interactions carry weights (e.g. play counts), but ContrastiveRecommender treats every "
                   "positive alike and ignores them; ImplicitALS uses them as confidence")


class IgnoredWeightsWarning(UserWarning):
    """Weights were given to a model that does not use them."""


def _weighted(data: Interactions) -> bool:
    """Whether any positive has a weight other than 1 (a weight column, or duplicates summed)."""
    return bool(len(data.matrix.data)) and not bool(np.all(data.matrix.data == 1.0))

logger = logging.getLogger("contrec")


class ContrastiveRecommender(FactorRecommender):
    """Two-tower recommender trained with sampled-softmax InfoNCE.

    Each training step contrasts a user's positive item against the batch's other
    positives and ``n_negatives`` items from a negative sampler (shared by the batch, or
    drawn per row by per-row samplers such as hard negatives or exclusion). Every
    candidate j gets the logit ``s(u, j)/τ − log q(j)``, with q(j) the expected number of
    times the candidate set contains j (batch frequency for in-batch items, the sampler's
    probability for sampled ones); known positives of the user other than the target are
    masked (accidental hits). See `contrec.losses` and `contrec.training`.

    The defaults were chosen on ml-100k once and are meant to be good without tuning
    (``benchmarks/quality.py`` measures them against tuned implicit ALS).

    Args:
        dim: embedding size.
        similarity: ``"cosine"`` (default), ``"dot"``, ``"gaussian"``, ``"laplacian"`` (served by exact FAISS L2),
            ``"gaussian-normalized"``, ``"laplacian-normalized"``, or a `Similarity` instance.
        temperature: τ; logits are s/τ.
        sampler: negative sampler name (``"uniform"``) or instance; ``sampler_params`` go to it.
        n_negatives: sampled negatives per step: one draw shared by the batch for most samplers,
            that many per row for per-row samplers (hard, dynamic-hard, per-row domain rules,
            ``exclude_positives``); 0 = in-batch negatives only.
        in_batch: use the batch's other positives as negatives too.
        logq: subtract log q (sampling-bias correction). Off only for ablations.
        epochs: maximum passes over the training positives.
        batch_size: positives per step.
        lr, weight_decay: Adam settings.
        optimizer: ``"adam"`` (default: every parameter, every step; the fused CPU kernel) or
            ``"sparse-adam"`` (embedding tables get sparse gradients and a lazy Adam that
            updates only the rows a batch touched, as `torch.optim.SparseAdam`; the rest
            dense Adam). Sparse wins when the tables are large (100k+ rows: the 25M-interaction
            benchmark) and cannot use ``weight_decay``.
        patience: with a validation set, stop after this many epochs without improvement of
            NDCG@``validation_k`` and keep the best epoch.
        seed: makes training (and so recommendations) identical on CPU for a given thread count.
        threads: torch and FAISS threads during fit. None (default): the CPUs this process may use
            less those other processes keep busy, looked at when fit starts (`contrec.threads`);
            the number used is ``threads_``. Pass a number for bit-for-bit repeatable runs on a
            shared machine (the thread count can change the last digits).
        verbose: show a progress bar with loss, interactions/s and the false-negative rate.
        sampler_params: parameters for a sampler given by name, e.g. ``{"alpha": 0.5}`` for
            popularity or ``{"rule": "disjoint(genres)"}`` for domain-rule.
        debias_prior: τ⁺ of the debiased contrastive loss (Chuang et al. 2020); 0 = off.
        hardness: β of hardness-weighted negatives (Robinson et al. 2021); 0 = off.
        similarity_params: parameters for a similarity given by name, e.g. ``{"weight": 0.3}``
            for ``"kernel-mixture"`` (the Laplacian loss's share).
        user_tower: ``"id"`` (one vector per user) or ``"history"`` (pooled vectors of the
            user's training items; enables `recommend_for_history` for users not in training).
        pooling: history pooling, ``"mean"`` or ``"attention"``.
        history_user_id: add a user ID vector to the history tower's output.
        history_dropout: share of history items dropped at random in each training step.
        item_tower: ``"id"`` or ``"features"`` (ID vector + attribute tokens; items without
            training interactions are served from their features).
        item_features: attribute columns for the feature tower (None = all but free text).
        id_dropout: share of training rows whose item ID vector the feature tower drops.
        projection: hidden size of an MLP projection head after both towers (0 = none).
        serve_from: ``"head"`` or ``"tower"``: which output retrieval uses when a head exists.
        objective: ``"infonce"`` (default), ``"bpr"`` or ``"triplet"`` over the same candidates.
        margin: the triplet loss's margin.
        ssl_weight: weight of the auxiliary InfoNCE between two random views of a user's
            history (history tower only; 0 = off). ``ssl_dropout``: item dropout per view.
        epoch_diagnostics: also compute the embedding diagnostics after every epoch (stored in
            each history record; the final ones are always computed, ``diagnostics_``).
        index: how recommendations are retrieved: ``"exact"`` (default), ``"ivf"`` or
            ``"hnsw"``; ``index_params`` go to `contrec.index.FaissIndex` (e.g.
            ``{"ef_search": 128}``). Validation during fit always uses exact search.

    Example:
        >>> import contrec
        >>> data = contrec.load_movielens("ml-100k")                       # doctest: +SKIP
        >>> train, test = contrec.split_random(data, test_size=0.2, seed=0)  # doctest: +SKIP
        >>> model = ContrastiveRecommender(seed=0).fit(train)               # doctest: +SKIP
        >>> model.recommend(["1", "42"], k=10)                              # doctest: +SKIP
    """

    def __init__(self, dim: int = 64, similarity: "str | Similarity" = "cosine", temperature: float = 0.2,
                 sampler: "str | NegativeSampler" = "uniform", n_negatives: int = 1024, in_batch: bool = True,
                 logq: bool = True, epochs: int = 20, batch_size: int = 1024, lr: float = 0.01,
                 weight_decay: float = 0.0, patience: int = 3, validation_k: int = 20, seed: int = 0,
                 threads: int | None = None, verbose: bool = True, sampler_params: dict[str, Any] | None = None,
                 debias_prior: float = 0.0, hardness: float = 0.0, similarity_params: dict[str, Any] | None = None,
                 user_tower: str = "id", pooling: str = "mean", history_user_id: bool = False,
                 history_dropout: float = 0.0, item_tower: str = "id", item_features: list[str] | None = None,
                 id_dropout: float = 0.2, projection: int = 0, serve_from: str = "head", objective: str = "infonce",
                 margin: float = 0.2, ssl_weight: float = 0.0, ssl_dropout: float = 0.3,
                 epoch_diagnostics: bool = False, index: str = "exact",
                 index_params: dict[str, Any] | None = None, optimizer: str = "adam") -> None:
        self.dim = dim
        self.similarity = similarity
        self.temperature = temperature
        self.sampler = sampler
        self.n_negatives = n_negatives
        self.in_batch = in_batch
        self.logq = logq
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_k = validation_k
        self.seed = seed
        self.threads = threads
        self.verbose = verbose
        self.sampler_params = sampler_params
        self.debias_prior = debias_prior
        self.hardness = hardness
        self.similarity_params = similarity_params
        self.user_tower = user_tower
        self.pooling = pooling
        self.history_user_id = history_user_id
        self.history_dropout = history_dropout
        self.item_tower = item_tower
        self.item_features = item_features
        self.id_dropout = id_dropout
        self.projection = projection
        self.serve_from = serve_from
        self.objective = objective
        self.margin = margin
        self.ssl_weight = ssl_weight
        self.ssl_dropout = ssl_dropout
        self.epoch_diagnostics = epoch_diagnostics
        self.optimizer = optimizer
        self.index = index
        self.index_params = index_params

    _PARAMS = ("dim", "similarity", "temperature", "sampler", "n_negatives", "in_batch", "logq", "epochs",
               "batch_size", "lr", "weight_decay", "patience", "validation_k", "seed", "threads", "verbose",
               "sampler_params", "debias_prior", "hardness", "similarity_params", "user_tower", "pooling",
               "history_user_id", "history_dropout", "item_tower", "item_features", "id_dropout", "projection",
               "serve_from", "objective", "margin", "ssl_weight", "ssl_dropout", "epoch_diagnostics", "index",
               "index_params", "optimizer")

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (sklearn style)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def __repr__(self) -> str:
        defaults = ContrastiveRecommender.__init__.__defaults__ or ()
        changed = {k: v for (k, v), d in zip(self.get_params().items(), defaults) if v != d}
        return f"ContrastiveRecommender({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name} must be an integer ≥ {minimum} (got {value!r})")

        for name in ("dim", "epochs", "batch_size", "patience", "validation_k"):
            positive_int(name)
        positive_int("n_negatives", 0)
        for name in ("temperature", "lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number (got {value!r})")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be ≥ 0 (got {self.weight_decay!r})")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or None (got {self.threads!r})")
        if not isinstance(self.debias_prior, (int, float)) or not 0.0 <= self.debias_prior < 1.0:
            raise ConfigError(f"debias_prior must be in [0, 1) (got {self.debias_prior!r})")
        if not isinstance(self.hardness, (int, float)) or not np.isfinite(self.hardness) or self.hardness < 0:
            raise ConfigError(f"hardness must be ≥ 0 (got {self.hardness!r})")
        if not self.in_batch and self.n_negatives == 0:
            raise ConfigError("no negatives: with in_batch=False, n_negatives must be ≥ 1")
        choices = {"user_tower": ("id", "history"), "pooling": ("mean", "attention"), "item_tower": ("id", "features"),
                   "serve_from": ("head", "tower"), "objective": OBJECTIVES, "optimizer": OPTIMIZERS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))} "
                                  f"(got {getattr(self, name)!r})")
        positive_int("projection", 0)
        for name in ("history_dropout", "id_dropout", "ssl_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1) (got {value!r})")
        for name in ("margin", "ssl_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be ≥ 0 (got {value!r})")
        if self.ssl_weight > 0 and self.user_tower != "history":
            raise ConfigError("ssl_weight needs user_tower='history' (the views are random subsets of a history)")
        if self.optimizer == "sparse-adam" and self.weight_decay:
            raise ConfigError("optimizer='sparse-adam' has no weight decay (it would touch every row every step); "
                              "use optimizer='adam' with weight_decay")
        if self.objective != "infonce" and (self.debias_prior or self.hardness):
            raise ConfigError("debias_prior and hardness reshape the InfoNCE softmax; "
                              "use them with objective='infonce'")

    def _index_settings(self) -> dict[str, Any]:
        from contrec.index import FaissIndex

        options = {"kind": self.index, **(self.index_params or {})}
        try:
            FaissIndex(self._metric, **options)
        except TypeError:
            raise ConfigError(f"index_params has an unknown key: {sorted(self.index_params or {})}; FaissIndex "
                              "takes nlist, nprobe, hnsw_m, ef_construction, ef_search, seed") from None
        return options

    def _check_setup(self, train: Interactions) -> None:
        """Settings that depend on the data: the similarity's parameters, item features."""
        get_similarity(self.similarity, **(self.similarity_params or {}))
        if self.item_tower == "features":
            self._item_tower(train, torch.Generator().manual_seed(0))

    def fit(self, train: Interactions, validation: Interactions | None = None, *,
            checkpoint: "str | os.PathLike[str] | None" = None, checkpoint_every: int = 0,
            resume: "str | os.PathLike[str] | None" = None) -> "ContrastiveRecommender":
        """Train on ``train``; with ``validation`` (same id space), early-stop on NDCG@validation_k.

        The validation positives become known to the model like the training ones: they are
        never recommended back (``filter_seen=True``) and `evaluate` leaves them out. The model
        does not train on them; to use them too, refit on ``train`` ∪ ``validation`` with
        ``epochs=model.best_epoch_`` (``contrec fit --validation-size`` does so by default).

        Args:
            checkpoint: write a training checkpoint here at every epoch end and, with
                ``checkpoint_every`` > 0, every that many steps (atomic, no pickle).
            resume: continue from a checkpoint written by an earlier ``fit`` with the same data
                and settings; the result equals an uninterrupted run (CPU, same thread count).

        Under torchrun, after `contrec.distributed.init`, every rank calls ``fit`` with the
        same data: each trains on its shard with DDP and all end with the same model (rank 0
        writes the checkpoints; ``batch_size`` is per process, so a step sees
        processes × batch_size in-batch candidates). Validation users are split between the
        ranks and their NDCG sums gathered.

        Returns self.

        Example:
            >>> model.fit(train, checkpoint="run.ckpt", checkpoint_every=500)  # doctest: +SKIP
            >>> model.fit(train, checkpoint="run.ckpt", resume="run.ckpt")     # after a crash  # doctest: +SKIP
        """
        self._check_params()
        if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be an integer ≥ 0 (got {checkpoint_every!r})")
        if checkpoint is not None:
            from contrec.artifact import check_writable

            check_writable(checkpoint)
        if not isinstance(train, Interactions):
            raise DataError(f"fit expects Interactions (got {type(train).__name__}); read data with "
                            "Interactions.from_csv / from_frame")
        if len(train) == 0:
            raise DataError("the training data has no positives")
        if validation is not None and not train.same_space(validation):
            raise DataError("validation does not share the training data's id maps; carve it with split_random")
        if _weighted(train):
            warnings.warn(WEIGHTS_IGNORED, IgnoredWeightsWarning, stacklevel=2)
        world = distributed.current()
        similarity = get_similarity(self.similarity, **(self.similarity_params or {}))
        sampler = get_sampler(self.sampler, **(self.sampler_params or {})).fit(train)
        config = TrainingConfig(self.epochs, self.batch_size, float(self.lr), float(self.weight_decay),
                                self.n_negatives, float(self.temperature), self.in_batch, self.logq, self.patience,
                                self.seed, self.verbose and (world is None or world.main), float(self.debias_prior), float(self.hardness),
                                self.objective, float(self.margin), float(self.ssl_weight), float(self.ssl_dropout),
                                self.optimizer)
        self._metric = similarity.faiss_metric
        self._threads = self.threads
        self._index_options = self._index_settings()
        # the default follows the CPUs that are free now (contrec.threads): beside a busy process 1.3× slower, not 3.2×
        self.threads_ = self.threads if self.threads is not None else default_threads()
        if self.threads is None and self.verbose and (world is None or world.main):
            logger.info("fit: %d thread%s (%d of %d usable CPUs free; set threads= / --threads to fix it)",
                        self.threads_, "" if self.threads_ == 1 else "s", self.threads_, usable_cpus())
        with torch_threads(self.threads_):
            generator = torch.Generator().manual_seed(self.seed)
            user_encoder = self._user_tower(train.n_users, train.n_items, _binary(train.matrix), generator)
            item_encoder = self._item_tower(train, generator)

            def encode() -> tuple[np.ndarray, np.ndarray]:
                return (similarity.prepare(_serving(user_encoder, self.serve_from).numpy()),
                        similarity.prepare(_serving(item_encoder, self.serve_from).numpy()))

            validate = None
            if validation is not None and len(validation) > 0:
                def validate() -> float:
                    uv, iv = encode()
                    if world is None:
                        return vectors_ndcg(uv, iv, similarity.faiss_metric, train, validation, self.validation_k)
                    users = np.flatnonzero(validation.user_counts() > 0)[world.rank::world.size]
                    mean = vectors_ndcg(uv, iv, similarity.faiss_metric, train, validation, self.validation_k,
                                        users) if len(users) else 0.0
                    total, count = distributed.all_sum([mean * len(users), float(len(users))])
                    return total / max(count, 1.0)

            diagnose = None
            if self.epoch_diagnostics:
                from contrec.diagnostics import vector_diagnostics

                def diagnose() -> dict[str, float]:
                    uv, iv = encode()
                    norms = np.linalg.norm(_serving(item_encoder, self.serve_from).numpy(), axis=1)
                    return vector_diagnostics(uv, iv, _binary(train.matrix), norms, seed=self.seed)

            identity = {"settings": _jsonable({k: v for k, v in self.get_params().items()
                                               if k not in ("verbose", "threads", "epochs")}),
                        "train": train.fingerprint(),
                        "validation": None if validation is None else validation.fingerprint()}
            checkpointing = Checkpointing(None if checkpoint is None else str(checkpoint), checkpoint_every,
                                          None if resume is None else str(resume), identity)
            self.history_ = train_two_tower(user_encoder, item_encoder, similarity, sampler, train, config,
                                            validate, logger.info, diagnose, checkpointing, world)
            user_vectors, item_vectors = encode()
            self._set_state(train, user_vectors, item_vectors)
            if validation is not None:
                # validation positives were given to the model too: it must never recommend them back
                self.seen_ = _binary(train.matrix + validation.matrix)
            # the tower's own norms (cosine prepares unit vectors): what popularity may be encoded in
            self.item_norms_ = np.linalg.norm(_serving(item_encoder, self.serve_from).numpy(), axis=1
                                              ).astype(np.float32)
        self.user_encoder_ = user_encoder
        self.sampler_ = sampler
        self.similarity_ = similarity
        self.train_fingerprint_ = train.fingerprint()
        self.best_epoch_ = next((r["epoch"] for r in self.history_ if r.get("best")), None)
        from contrec.diagnostics import embedding_diagnostics

        self.diagnostics_ = embedding_diagnostics(self, seed=self.seed)
        if self.history_:
            self.history_[-1]["diagnostics"] = self.diagnostics_
        return self

    def _scores_from_index(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The kernel's score s(u, v) (a Laplacian's −‖u−v‖, not FAISS's squared distance)."""
        similarity = getattr(self, "similarity_", None)
        if similarity is None:
            return scores
        out = np.full_like(scores, -np.inf)
        valid = ids >= 0
        out[valid] = similarity.from_index(scores[valid])
        return out

    # ------------------------------------------------------------------ towers
    def _user_tower(self, n_users: int, n_items: int, history: sp.csr_matrix,
                    generator: torch.Generator) -> Encoder:
        if self.user_tower == "history":
            tower: Encoder = HistoryEncoder(history, self.dim, pooling=self.pooling, user_id=self.history_user_id,
                                            dropout=self.history_dropout, generator=generator, seed=self.seed)
        else:
            tower = IdEncoder(n_users, self.dim, generator=generator)
        return Projected(tower, self.projection, generator=generator) if self.projection else tower

    def _item_tower(self, train: Interactions, generator: torch.Generator) -> Encoder:
        if self.item_tower == "features":
            if train.item_attributes is None:
                raise ConfigError("item_tower='features' needs item attributes (MovieLens loaders include them; "
                                  "pass --item-attributes / item_attributes= for your own data)")
            from contrec.features import item_feature_tokens

            tokens = item_feature_tokens(train.item_attributes, self.item_features)
            if not tokens.vocabulary:
                raise ConfigError("the item attributes give no feature tokens (every column is free text or empty); "
                                  "name the columns with item_features=")
            self.feature_tokens_ = tokens
            tower: Encoder = FeatureEncoder(train.n_items, self.dim, tokens, known=train.item_counts() > 0,
                                            id_dropout=self.id_dropout, generator=generator, seed=self.seed)
        else:
            tower = IdEncoder(train.n_items, self.dim, generator=generator)
        return Projected(tower, self.projection, generator=generator) if self.projection else tower

    def _check_history_support(self) -> None:
        encoder = getattr(self, "user_encoder_", None)
        if encoder is None or history_tower(encoder) is None:
            raise ConfigError("recommend_for_history needs a model fitted with user_tower='history' "
                              f"(this one has user_tower={self.user_tower!r})")

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """Users not in training, from their items: the history tower (no user ID part), no retraining."""
        self._check_history_support()
        encoder = self.user_encoder_
        tower = history_tower(encoder)
        assert tower is not None
        with torch_threads(self.threads) if self.threads is not None else contextlib.nullcontext():
            vectors = tower.encode_histories(history)
            if isinstance(encoder, Projected) and self.serve_from == "head":
                with torch.no_grad():
                    vectors = encoder.head(vectors)
        return self.similarity_.prepare(vectors.numpy())

    # ------------------------------------------------------------------ persistence
    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the fitted model to one file (npz + JSON header, no pickle), atomically.

        Example:
            >>> model.save("model.contrec")  # doctest: +SKIP
        """
        self._check_fitted()
        import faiss

        from contrec._version import __version__

        params = self.get_params()
        params["similarity"] = self.similarity_.name
        params["sampler"] = getattr(self.sampler_, "name", str(self.sampler))
        if not isinstance(self.sampler, str) or not _json_safe(self.sampler_params):
            # an instance (or parameters such as a DataFrame) cannot go into JSON: record what it reports
            params["sampler_params"] = self.sampler_.params() if hasattr(self.sampler_, "params") else None
        attributes = None
        if self.item_attributes_ is not None:
            attributes = self.item_attributes_.reset_index(drop=True).to_json(orient="split", index=False)
        meta = {
            "model": "ContrastiveRecommender",
            "contrec_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "libraries": {"torch": torch.__version__, "numpy": np.__version__, "faiss": faiss.__version__,
                          "pandas": pd.__version__},
            "params": params,
            "metric": self._metric,
            "train_fingerprint": self.train_fingerprint_,
            "n_users": len(self.users_), "n_items": len(self.items_),
            "history": self.history_,
            "item_attributes": attributes,
        }
        arrays = {
            "user_vectors": self.user_vectors_, "item_vectors": self.item_vectors_,
            "seen_indptr": self.seen_.indptr.astype(np.int64), "seen_indices": self.seen_.indices.astype(np.int32),
            "user_ids": _str_array(self.users_.ids), "item_ids": _str_array(self.items_.ids),
            "item_norms": self.item_norms_,
        }
        encoder = getattr(self, "user_encoder_", None)
        if encoder is not None and history_tower(encoder) is not None:
            # the history tower is needed again to encode new users (recommend_for_history)
            arrays.update({f"user_tower.{key}": value.detach().numpy()
                           for key, value in encoder.state_dict().items()})
        return write_artifact(path, arrays, meta)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "ContrastiveRecommender":
        """Read a model written by `save`; damaged or foreign files raise `ModelFileError`.

        Example:
            >>> again = ContrastiveRecommender.load("model.contrec")  # doctest: +SKIP
        """
        arrays, meta = read_artifact(path)
        if meta.get("model") != "ContrastiveRecommender":
            raise ModelFileError(f"{path}: holds a {meta.get('model')!r}, not a ContrastiveRecommender")
        try:
            params = dict(meta["params"])
            model = cls(**params)
            users, items = IdMap(arrays["user_ids"]), IdMap(arrays["item_ids"])
            n_users, n_items = len(users), len(items)
            seen = sp.csr_matrix((np.ones(len(arrays["seen_indices"]), np.float32), arrays["seen_indices"],
                                  arrays["seen_indptr"]), shape=(n_users, n_items))
            uv, iv = arrays["user_vectors"], arrays["item_vectors"]
            if uv.shape != (n_users, model.dim) or iv.shape != (n_items, model.dim) or \
                    (n_users, n_items) != (meta["n_users"], meta["n_items"]):
                raise ValueError("array shapes do not match the header")
            seen.check_format(full_check=True)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, ConfigError, DataError) as err:
            raise ModelFileError(f"{path}: damaged model file ({str(err).splitlines()[0] if str(err) else err!r})"
                                 ) from None
        model._metric = meta["metric"]
        try:
            model._index_options = model._index_settings()
        except ConfigError as err:
            raise ModelFileError(f"{path}: damaged model file ({err})") from None
        model.users_, model.items_, model.seen_ = users, items, seen
        model.item_attributes_ = None
        if meta.get("item_attributes"):
            from io import StringIO

            frame = pd.read_json(StringIO(meta["item_attributes"]), orient="split")
            frame.index = pd.Index(items.ids, dtype=object, name="item")
            model.item_attributes_ = frame
        model._set_vectors(uv, iv)
        if "item_norms" in arrays and arrays["item_norms"].shape == (n_items,):
            model.item_norms_ = arrays["item_norms"]
        model.similarity_ = get_similarity(params["similarity"], **(params.get("similarity_params") or {})) \
            if isinstance(params["similarity"], str) else None
        state = {key[len("user_tower."):]: torch.from_numpy(np.array(value)) for key, value in arrays.items()
                 if key.startswith("user_tower.")}
        if state:
            try:
                encoder = model._user_tower(n_users, n_items, seen, torch.Generator().manual_seed(0))
                encoder.load_state_dict(state)
            except (RuntimeError, ConfigError, ValueError) as err:
                raise ModelFileError(f"{path}: damaged user tower ({str(err).splitlines()[0]})") from None
            encoder.eval()
            model.user_encoder_ = encoder
        model.sampler_ = None
        model.history_ = meta.get("history", [])
        model.train_fingerprint_ = meta.get("train_fingerprint")
        return model


def _serving(encoder: Encoder, serve_from: str) -> torch.Tensor:
    """The vectors retrieval uses: the head's output, or the tower's own when asked."""
    if isinstance(encoder, Projected) and serve_from == "tower":
        return encoder.tower_all()
    return encoder.encode_all()


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _str_array(values: np.ndarray) -> np.ndarray:
    """Ids as a fixed-width unicode array (no pickle needed to store it)."""
    return np.asarray(values, dtype=str) if len(values) else np.zeros(0, dtype="<U1")


def _jsonable(value: Any) -> Any:
    """Settings as JSON: objects (a sampler or similarity instance) by their repr."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
