"""`ContrastiveRecommender`: a user tower and an item tower (ID, feature or history towers, optionally
with a projection head) trained with sampled-softmax InfoNCE, served by FAISS."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from contrec.data.interactions import Interactions, binary_matrix
from contrec.errors import ConfigError, check_number
from contrec.models.checks import WEIGHTS_IGNORED, IgnoredWeightsWarning, check_data, weighted
from contrec.models.params import Params, jsonable
from contrec.models.selection import candidates, open_fallbacks, select_settings
from contrec.models.warm import tower_states
from contrec.nn.diagnostics import embedding_diagnostics
from contrec.nn.encoders import serving_vectors
from contrec.nn.graph import link_graph
from contrec.nn.similarity import Similarity, get_similarity
from contrec.nn.towers import TowerConfig, build_item_tower, build_user_tower, feature_tokens, start_towers
from contrec.runtime.threads import default_threads, pinned_threads, usable_cpus
from contrec.samplers import NegativeSampler, get_sampler
from contrec.serving.recommender import FactorRecommender
from contrec.training import distributed
from contrec.training.config import Checkpointing, TrainingConfig
from contrec.training.loop import train_two_tower

__all__ = ["ContrastiveRecommender", "IgnoredWeightsWarning", "WEIGHTS_IGNORED"]

logger = logging.getLogger("contrec")


class ContrastiveRecommender(Params, FactorRecommender):
    """Two-tower recommender trained with sampled-softmax InfoNCE.

    Each training step contrasts a user's positive item against the batch's other
    positives and ``n_negatives`` items from a negative sampler (shared by the batch, or
    drawn per row by per-row samplers such as hard negatives or exclusion). Every
    candidate j gets the logit ``s(u, j)/τ − log q(j)``, with q(j) the expected number of
    times the candidate set contains j (batch frequency for in-batch items, the sampler's
    probability for sampled ones); known positives of the user other than the target are
    masked (accidental hits). See `contrec.nn.losses` and `contrec.training`.

    The defaults were chosen on validation carves of ml-100k and ml-latest-small (never a test
    split; docs/encoders.md) and are meant to be good without tuning; ``fit`` picks its number
    of epochs and its user tower (ID or history) on its own carve (``validation_size``).
    ``benchmarks/quality.py`` measures them against tuned implicit ALS and EASE.

    Args:
        dim: embedding size.
        similarity: ``"cosine"`` (default), ``"dot"``, ``"gaussian"``, ``"laplacian"``, ``"kernel-mixture"``, their
            ``-normalized`` forms, or a `Similarity`; dot, gaussian and kernel-mixture keep vectors in the unit ball.
        temperature: τ; logits are s/τ. None (default): the kernel's own (`Similarity.default_temperature`,
            chosen on validation carves: cosine 0.2, dot 0.2, gaussian 0.4, laplacian 1, … — docs/encoders.md).
        learn_temperature: train τ with the towers (a bounded log-scale parameter, as CLIP), starting
            from ``temperature``; the final value is ``temperature_``.
        sampler: negative sampler name (``"uniform"``) or instance; ``sampler_params`` go to it.
        n_negatives: sampled negatives per step: one draw shared by the batch for most samplers,
            that many per row for per-row samplers (hard, dynamic-hard, per-row domain rules,
            ``exclude_positives``); 0 = in-batch negatives only.
        in_batch: use the batch's other positives as negatives too.
        logq: subtract log q (sampling-bias correction). Off only for ablations.
        epochs: maximum passes over the training positives (early stopping on the validation carve
            picks how many the final fit makes).
        validation_size: share of each user's positives ``fit`` holds out, when it is given no
            validation data, to choose the number of epochs (and any open adaptive setting,
            `contrec.models.selection`) before training on every positive; 0 = train ``epochs``
            epochs on everything, no carve.
        batch_size: positives per step.
        lr, weight_decay: Adam settings.
        positive_weights: how the data's weights (play counts, ratings as confidence) count:
            ``"none"`` (every positive once per epoch), or each epoch draws its positives with
            probability ∝ ``"log1p"``, ``"linear"`` or ``"capped"`` (linear up to the 95th
            percentile) of the weight (`contrec.training.weights`).
        lr_schedule: the learning rate over the run: ``"constant"``, or decaying to 0 by the last
            step, ``"linear"`` or ``"cosine"`` (the carve fits decay over ``epochs``, the final fit
            over the epochs it makes).
        optimizer: ``"adam"`` (default: every parameter, every step; the fused CPU kernel) or
            ``"sparse-adam"`` (embedding tables get sparse gradients and a lazy Adam that
            updates only the rows a batch touched, as `torch.optim.SparseAdam`; the rest
            dense Adam). Sparse wins when the tables are large (100k+ rows: the 25M-interaction
            benchmark) and cannot use ``weight_decay``.
        patience: with a validation set, stop after this many epochs without improvement of
            NDCG@``validation_k`` and keep the best epoch.
        seed: makes training (and so recommendations) identical on CPU for a given thread count.
        threads: torch and FAISS threads during fit. None (default): the CPUs this process may use
            less those other processes keep busy, looked at when fit starts (`contrec.runtime.threads`);
            the number used is ``threads_``. Pass a number for bit-for-bit repeatable runs on a
            shared machine (the thread count can change the last digits).
        verbose: show a progress bar with loss, interactions/s and the false-negative rate.
        sampler_params: parameters for a sampler given by name, e.g. ``{"alpha": 0.5}`` for
            popularity or ``{"rule": "disjoint(genres)"}`` for domain-rule.
        debias_prior: τ⁺ of the debiased contrastive loss (Chuang et al. 2020); 0 = off.
        hardness: β of hardness-weighted negatives (Robinson et al. 2021); 0 = off.
        similarity_params: parameters for a similarity given by name, e.g. ``{"weight": 0.3}``
            for ``"kernel-mixture"`` (the Laplacian term's share) or ``{"max_norm": 2.0}`` (the ball's radius).
        user_tower: ``"auto"`` (``fit`` picks ``"id"`` or ``"history"`` on its carve: ID unless history is
            > 3 % better there; ``"id"`` without a carve; the result is ``user_tower_``), ``"id"`` (one
            vector per user), ``"history"`` (pooled vectors of the user's training items; enables
            `recommend_for_history` for users not in training),
            ``"simplex"`` (a learned per-user gate between the ID vector and the transformed
            history mean, `contrec.nn.simplex`; also serves new users) or ``"graph"`` (ID vectors
            propagated over the user–item graph, LightGCN; `contrec.nn.graph`).
        pooling: history pooling, ``"mean"`` or ``"attention"``.
        history_user_id: add a user ID vector to the history tower's output.
        history_dropout: share of history items dropped at random in each training step.
        history_cap: while training, a history longer than this is a random sample of this many
            items (a heavy user's step costs no more than a light one's); serving pools the whole
            history. 0 = never sample.
        graph_layers: propagation layers K of a graph tower.
        item_tower: ``"id"``, ``"features"`` (ID vector + attribute tokens; items without
            training interactions are served from their features) or ``"graph"``.
        item_features: attribute columns for the feature tower (None = all but free text).
        id_dropout: share of training rows whose item ID vector the feature tower drops.
        projection: hidden size of an MLP projection head after both towers (0 = none).
        init: ``"random"`` or ``"spectral"``: start the ID and graph towers' tables from the top
            singular vectors of the normalised training interactions (`contrec.nn.spectral`).
        serve_from: ``"head"`` or ``"tower"``: which output retrieval uses when a head exists.
        objective: ``"infonce"`` (default), ``"bpr"`` or ``"triplet"`` over the same candidates.
        margin: the triplet loss's margin.
        ssl_weight: weight of the auxiliary InfoNCE between two random views of a user's
            history (history tower only; 0 = off). ``ssl_dropout``: item dropout per view.
        epoch_diagnostics: also compute the embedding diagnostics after every epoch (stored in
            each history record; the final ones are always computed, ``diagnostics_``).
        index: how recommendations are retrieved: ``"exact"`` (default), ``"ivf"`` or
            ``"hnsw"``; ``index_params`` go to `contrec.serving.index.FaissIndex` (e.g.
            ``{"ef_search": 128}``). Validation during fit always uses exact search.
        device: where the towers train: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"`` (a GPU
            when one is visible); ``device_`` says which. Serving and the saved file are on the CPU either way.
        precision: ``"float32"`` or ``"bfloat16"``: the sampled softmax's score matmuls take bfloat16 operands
            (inner-product kernels; ~1.3× faster epochs on CPUs with AVX512-BF16, same NDCG — docs/performance.md).

    Example:
        >>> import contrec
        >>> data = contrec.load_movielens("ml-100k")                       # doctest: +SKIP
        >>> train, test = contrec.split_random(data, test_size=0.2, seed=0)  # doctest: +SKIP
        >>> model = ContrastiveRecommender(seed=0).fit(train)               # doctest: +SKIP
        >>> model.recommend(["1", "42"], k=10)                              # doctest: +SKIP
    """

    def __init__(self, dim: int = 128, similarity: "str | Similarity" = "cosine", temperature: float | None = None,
                 sampler: "str | NegativeSampler" = "uniform", n_negatives: int = 1024, in_batch: bool = True,
                 logq: bool = True, epochs: int = 20, batch_size: int = 1024, lr: float = 0.01,
                 weight_decay: float = 0.0, patience: int = 6, validation_k: int = 20, seed: int = 0,
                 threads: int | None = None, verbose: bool = True, sampler_params: dict[str, Any] | None = None,
                 debias_prior: float = 0.0, hardness: float = 0.0, similarity_params: dict[str, Any] | None = None,
                 user_tower: str = "auto", pooling: str = "mean", history_user_id: bool = False,
                 history_dropout: float = 0.5, item_tower: str = "id", item_features: list[str] | None = None,
                 id_dropout: float = 0.2, projection: int = 0, serve_from: str = "head", objective: str = "infonce",
                 margin: float = 0.2, ssl_weight: float = 0.0, ssl_dropout: float = 0.3,
                 epoch_diagnostics: bool = False, index: str = "exact",
                 index_params: dict[str, Any] | None = None, optimizer: str = "adam",
                 learn_temperature: bool = False, history_cap: int = 256, graph_layers: int = 2,
                 validation_size: float = 0.1, lr_schedule: str = "constant",
                 positive_weights: str = "none", init: str = "random", device: str = "cpu",
                 precision: str = "float32") -> None:
        self.dim, self.similarity, self.temperature = dim, similarity, temperature
        self.sampler, self.n_negatives, self.in_batch = sampler, n_negatives, in_batch
        self.logq, self.epochs, self.batch_size = logq, epochs, batch_size
        self.lr, self.weight_decay, self.patience = lr, weight_decay, patience
        self.validation_k, self.seed, self.threads = validation_k, seed, threads
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
        self.init = init
        self.serve_from = serve_from
        self.objective = objective
        self.margin = margin
        self.ssl_weight = ssl_weight
        self.ssl_dropout = ssl_dropout
        self.epoch_diagnostics = epoch_diagnostics
        self.optimizer = optimizer
        self.index = index
        self.index_params = index_params
        self.learn_temperature = learn_temperature
        self.history_cap = history_cap
        self.graph_layers = graph_layers
        self.validation_size = validation_size
        self.lr_schedule = lr_schedule
        self.positive_weights = positive_weights
        self.device, self.precision = device, precision

    _repr_changed_only = True
    _epoch_log = staticmethod(logger.info)  # the carve fits of contrec.models.selection say which they are

    # ------------------------------------------------------------------ settings
    def check(self, train: Interactions | None = None) -> None:
        """Validate every setting, and with ``train`` those that depend on the data, without fitting.

        Raises a one-line `ConfigError` naming the setting; the model is left as it was
        (nothing fitted is set). ``fit`` runs the same checks.

        Example:
            >>> ContrastiveRecommender(temperature=0).check()
            Traceback (most recent call last):
            ...
            contrec.errors.ConfigError: temperature must be a positive number (got 0)
        """
        towers, _, similarity = self._configs(chosen=candidates(self)[0] if self.validation_size else None)
        self._index_settings(similarity.faiss_metric)
        if train is not None:
            get_sampler(self.sampler, **(self.sampler_params or {})).fit(train)
            if towers.item_tower == "features":
                feature_tokens(towers, train)

    def _configs(self, world: "distributed.World | None" = None, chosen: dict[str, Any] | None = None
                 ) -> tuple[TowerConfig, TrainingConfig, Similarity]:
        """The typed settings of the towers and of training, each validated as it is built, and the kernel.

        ``chosen``: settings picked on the validation carve (`contrec.models.selection`), over the parameters."""
        chosen = {**open_fallbacks(self), **dict(chosen or {})}  # user_tower="auto" without a carve: "id"
        check_number("validation_size", self.validation_size, below=1.0)
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or None (got {self.threads!r})")
        # a config's fields are model parameters of the same name: the names live once, in the configs
        similarity = get_similarity(self.similarity, **(self.similarity_params or {}))
        towers = self._config(TowerConfig, chosen)
        tau = chosen.get("temperature", self.temperature)
        temperature = similarity.default_temperature if tau is None else tau
        training = self._config(TrainingConfig, chosen, verbose=self.verbose and (world is None or world.main),
                                temperature=temperature)
        if training.optimizer == "sparse-adam" and "graph" in (towers.user_tower, towers.item_tower):
            raise ConfigError("a graph tower propagates whole tables (dense gradients); use optimizer='adam'")
        sides = {"user_tower": towers.user_tower, "item_tower": towers.item_tower}
        if "graph" in sides.values() and any(v not in ("id", "graph") for v in sides.values()):
            raise ConfigError("a graph tower propagates over ID vectors: both towers must be 'id' or 'graph' "
                              f"(got {', '.join(f'{k}={v!r}' for k, v in sides.items())})")
        if training.precision != "float32" and not similarity.inner_product:
            raise ConfigError(f"precision={training.precision!r} needs an inner-product kernel (cosine, dot); "
                              f"{similarity.name} computes distances in float32")
        if training.ssl_weight > 0 and towers.user_tower not in ("history", "simplex"):
            raise ConfigError("ssl_weight needs user_tower='history' (the views are random subsets of a history)")
        return towers, training, similarity

    def _config(self, cls: type, chosen: dict[str, Any], **overrides: Any) -> Any:
        """``cls`` (a config dataclass) built by keyword from the parameters of the same names (or ``chosen``)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name not in overrides]
        return cls(**{name: chosen.get(name, getattr(self, name)) for name in names}, **overrides)

    def _index_settings(self, metric: str) -> dict[str, Any]:
        from contrec.serving.index import FaissIndex

        options = {"kind": self.index, **(self.index_params or {})}
        try:
            FaissIndex(metric, **options)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigError(f"index_params has an unknown key: {sorted(self.index_params or {})}; FaissIndex "
                              "takes nlist, nprobe, hnsw_m, ef_construction, ef_search, seed") from None
        return options

    # ------------------------------------------------------------------ fit
    def fit(self, train: Interactions, validation: Interactions | None = None, *,
            checkpoint: "str | os.PathLike[str] | None" = None, checkpoint_every: int = 0,
            resume: "str | os.PathLike[str] | None" = None, warm_start: bool = False, train_on: str = "union",
            update_epochs: int | None = None) -> "ContrastiveRecommender":
        """Train on ``train``; with ``validation`` (same id space), early-stop on NDCG@validation_k.

        Without ``validation`` and with ``validation_size`` > 0 (the default), the model carves
        its own: it early-stops on that share of each user's positives, then trains on every
        positive for the best number of epochs (`contrec.models.selection`; the carve fits are
        in ``selection_``). With ``validation_size=0`` it trains ``epochs`` epochs, no carve.

        Given validation positives become known to the model like the training ones: they are
        never recommended back (``filter_seen=True``) and `evaluate` leaves them out. The model
        does not train on them; to use them too, refit on ``train`` ∪ ``validation`` with
        ``epochs=model.best_epoch_`` (``contrec fit --validation-size`` does so by default).

        Args:
            checkpoint: write a training checkpoint here at every epoch end and, with
                ``checkpoint_every`` > 0, every that many steps (atomic, no pickle).
            resume: continue from a checkpoint written by an earlier ``fit`` with the same data
                and settings; the result equals an uninterrupted run (CPU, same thread count).
            warm_start: continue this fitted (or loaded) model on ``train`` = new interactions: new
                users and items join the id maps, the old rows carry over (`contrec.models.warm`);
                ``train_on`` ``"union"`` (with the known positives) or ``"new"``; ``update_epochs``
                (default: a quarter of the first fit's epochs, at least 2). No carve is fitted again.

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
        if isinstance(train, Interactions) and weighted(train) and self.positive_weights == "none":
            warnings.warn(WEIGHTS_IGNORED, IgnoredWeightsWarning, stacklevel=2)
        chosen: dict[str, Any] = {}
        warm = known = None
        if warm_start:
            train, known, warm, chosen = self._update_inputs(train, train_on, update_epochs)
        self.selection_: list[dict[str, Any]] = []
        if validation is None and self.validation_size and warm is None:
            check_data(train, None)
            self._configs(chosen=candidates(self)[0])  # a mistake in the settings: one line before any carve fit
            chosen, trials = select_settings(self, train)
            self.selection_ = [t.as_dict() for t in trials]
        world = distributed.current()
        towers, config, similarity = self._configs(world, chosen)
        if checkpoint is not None:
            from contrec.runtime.artifact import check_writable

            check_writable(checkpoint)
        check_data(train, validation)
        sampler = get_sampler(self.sampler, **(self.sampler_params or {})).fit(train)
        self._metric = similarity.faiss_metric
        self._threads = self.threads
        self._index_options = self._index_settings(self._metric)
        checkpointing = self._run_settings(world, train, validation, Checkpointing(
            None if checkpoint is None else str(checkpoint), checkpoint_every, None if resume is None else str(resume)))
        with pinned_threads(self.threads_):
            generator = torch.Generator().manual_seed(self.seed)
            user_encoder = build_user_tower(towers, train.n_users, binary_matrix(train.matrix), generator)
            tokens = feature_tokens(towers, train) if towers.item_tower == "features" else None
            item_encoder = build_item_tower(towers, train, generator, tokens)
            if warm is None:
                start_towers(towers, user_encoder, item_encoder, train.matrix)
            else:
                self.update_ = warm.apply(user_encoder, item_encoder, train, tokens)
            link_graph(user_encoder, item_encoder, binary_matrix(train.matrix), towers.graph_layers)
            self.history_ = train_two_tower(user_encoder, item_encoder, similarity, sampler, train, config,
                                            validation, self._epoch_log, checkpointing, world)
            user_vectors = similarity.prepare(serving_vectors(user_encoder, self.serve_from).numpy())
            item_vectors = similarity.prepare(serving_vectors(item_encoder, self.serve_from).numpy())
            self._set_state(train, user_vectors, item_vectors, update=warm is not None)
            if validation is not None or known is not None:
                # validation positives and an update's old ones are known too: never recommended back
                self.seen_ = known if known is not None else binary_matrix(train.matrix + validation.matrix)
            # the tower's own norms (cosine prepares unit vectors): what popularity may be encoded in
            self.item_norms_ = np.linalg.norm(serving_vectors(item_encoder, self.serve_from).numpy(), axis=1
                                              ).astype(np.float32)
        if tokens is not None:
            self.feature_tokens_ = tokens
        self.user_encoder_, self.item_encoder_ = user_encoder, item_encoder
        self.tower_states_ = tower_states(user_encoder, item_encoder)
        self.sampler_ = sampler
        self.similarity_ = similarity
        self.train_fingerprint_ = train.fingerprint()
        self.chosen_ = chosen if warm is None else getattr(self, "chosen_", {})  # an update keeps the first fit's
        self.device_, self.user_tower_ = config.device, towers.user_tower  # user_tower_: what "auto" became
        self.best_epoch_ = next((r["epoch"] for r in self.history_ if r.get("best")), chosen.get("epochs"))
        best = next((r for r in self.history_ if r.get("best")), self.history_[-1] if self.history_ else {})
        self.temperature_ = float(best.get("temperature", config.temperature))  # τ the served towers were trained at
        self.diagnostics_ = embedding_diagnostics(self, seed=self.seed)
        if self.history_:
            self.history_[-1]["diagnostics"] = self.diagnostics_
        return self

    def _update_inputs(self, more: Interactions, train_on: str, epochs: int | None) -> tuple[Any, Any, Any, Any]:
        """(training data, every known positive, the warm start, the settings) of ``fit(warm_start=True)``."""
        from contrec.models.warm import prepare_update, warm_epochs

        self._check_fitted()
        train, known, warm = prepare_update(self, more, train_on)
        return train, known, warm, {**getattr(self, "chosen_", {}), "epochs": warm_epochs(self, epochs)}

    def _run_settings(self, world: "distributed.World | None", train: Interactions, validation: Interactions | None,
                      checkpointing: Checkpointing) -> Checkpointing:
        """This fit's thread count (``threads_``) and its checkpoints' identity (what a resume must match)."""
        # the default follows the CPUs that are free now (contrec.runtime.threads):
        # beside a busy process 1.3× slower, not 3.2×
        self.threads_ = self.threads if self.threads is not None else default_threads()
        if self.threads is None and self.verbose and (world is None or world.main):
            logger.info("fit: %d thread%s (%d of %d usable CPUs free; set threads= / --threads to fix it)",
                        self.threads_, "" if self.threads_ == 1 else "s", self.threads_, usable_cpus())
        identity = {"settings": jsonable({k: v for k, v in self.get_params().items()
                                          if k not in ("verbose", "threads", "epochs", "device", "precision")}),
                    "train": train.fingerprint(),
                    "validation": None if validation is None else validation.fingerprint()}
        return dataclasses.replace(checkpointing, identity=identity)

    def _scores_from_index(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The kernel's score s(u, v) (a Laplacian's −‖u−v‖, not FAISS's squared distance)."""
        similarity = getattr(self, "similarity_", None)
        if similarity is None:
            return scores
        out = np.full_like(scores, -np.inf)
        valid = ids >= 0
        out[valid] = similarity.from_index(scores[valid])
        return out

    # ------------------------------------------------------------------ new users
    def _check_history_support(self) -> None:
        encoder = getattr(self, "user_encoder_", None)  # a model loaded from file keeps only a history tower
        if encoder is None or encoder.history() is None:
            raise ConfigError("recommend_for_history needs a model fitted with user_tower='history' "
                              f"(this one has user_tower={getattr(self, 'user_tower_', self.user_tower)!r})")

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """Users not in training, from their items: the history tower (no user ID part), no retraining."""
        self._check_history_support()
        encoder = self.user_encoder_
        with pinned_threads(self.threads):
            vectors = encoder.history().encode_histories(history)
            if self.serve_from == "head":
                with torch.no_grad():
                    vectors = encoder.project(vectors)
        return self.similarity_.prepare(vectors.numpy())

    # ------------------------------------------------------------------ persistence
    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the fitted model to one file (npz + JSON header, no pickle), atomically.

        Example:
            >>> model.save("model.contrec")  # doctest: +SKIP
        """
        self._check_fitted()
        from contrec.models.persistence import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "ContrastiveRecommender":
        """Read a model written by `save`; damaged or foreign files raise `ModelFileError`.

        Example:
            >>> again = ContrastiveRecommender.load("model.contrec")  # doctest: +SKIP
        """
        from contrec.models.persistence import load_model

        return load_model(cls, path)
