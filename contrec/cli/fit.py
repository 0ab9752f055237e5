"""``contrec fit``: read, check, train (one process or several), refit after early stopping, save."""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from typing import Any

from contrec.cli.launcher import launch, under_launcher
from contrec.cli.options import check_output, json_object, read_data
from contrec.cli.reading import read_for_model, reading_given, reading_of
from contrec.errors import ConfigError

__all__ = ["cmd_fit"]

log = logging.getLogger("contrec")


def cmd_fit(args: argparse.Namespace) -> int:
    from contrec.training import distributed

    world_size = os.environ.get("WORLD_SIZE", "1")
    if not (args.distributed or (world_size.isdigit() and int(world_size) > 1)):
        return _fit(args)
    if args.nproc_per_node < 1:
        raise ConfigError(f"--nproc-per-node must be ≥ 1 (got {args.nproc_per_node})")
    if not distributed.launched_by_torchrun():
        # a mistake in the data, flags or sampler settings is one line here, before any process starts
        model, data, _, _ = _fit_inputs(args)
        model.check(data)
        del model, data, _  # the processes read the data themselves; the launcher need not hold a copy
        return launch(args, args.nproc_per_node)
    world = distributed.init()
    try:
        if args.threads is None:  # share the cores between the processes on this machine
            args.threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        if world.rank > 0:  # one voice: rank 0 logs, shows progress and writes the model
            log.setLevel(logging.WARNING)
            args.quiet = True
        if world.rank > 0 or under_launcher():  # the data's warnings: the launcher has shown them
            warnings.simplefilter("ignore")
        code = _fit(args, save=world.main)
    except BaseException:
        distributed.close(wait=False)
        raise
    distributed.close()
    return code


def _fit_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The model, training data, validation data and the whole file ``contrec fit`` was asked for
    (checked, nothing trained)."""
    from contrec.data.splits import split_random
    from contrec.models.contrastive import ContrastiveRecommender

    check_output(args.output, args.data, args.item_attributes)
    data = full = read_data(args, args.data)
    if not under_launcher():
        log.info("read %r", data)
    model = ContrastiveRecommender(dim=args.dim, similarity=args.similarity, temperature=args.temperature,
                                   sampler=args.sampler, sampler_params=_sampler_params(args),
                                   n_negatives=args.n_negatives, epochs=args.epochs, logq=not args.no_logq,
                                   in_batch=not args.no_in_batch, debias_prior=args.debias_prior,
                                   learn_temperature=args.learn_temperature,
                                   hardness=args.hardness, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   threads=args.threads, verbose=not args.quiet, patience=args.patience,
                                   validation_size=args.validation_size, lr_schedule=args.lr_schedule,
                                   positive_weights=args.positive_weights, device=args.device,
                                   precision=args.precision,
                                   **_tower_params(args))
    model.check()
    validation = None
    if args.validation_size and not args.refit:
        # the early-stopped model of the carve is the one saved; by default the model carves, stops early
        # and trains on every positive itself (ContrastiveRecommender.validation_size)
        data, validation = split_random(data, test_size=args.validation_size, seed=args.seed)
    return model, data, validation, full


# flags that belong to the data, the run or the output: the rest are model settings, which --from keeps
_RUN_FLAGS = {"data", "output", "user", "item", "rating", "min_rating", "weight", "timestamp", "names", "sep",
              "duplicates", "encoding", "item_attributes", "item_attributes_id", "attributes_sep", "threads",
              "device", "quiet", "from_model", "train_on", "update_epochs", "distributed", "nproc_per_node"}


def _update(args: argparse.Namespace) -> int:
    """``contrec fit new.csv --from model.contrec``: continue the saved model on the new interactions."""
    from contrec.models.contrastive import ContrastiveRecommender

    given = _given(args, _RUN_FLAGS)
    if given:
        raise ConfigError(f"{given}: --from continues a saved model with its own settings; drop {given} (or fit a "
                          "new model without --from)")
    if args.distributed:
        raise ConfigError("--from updates in one process; drop --distributed")
    check_output(args.output, args.data, args.item_attributes)  # the model it updates may be replaced: it is read first
    from contrec.models.loading import load

    model = load(args.from_model)
    if not isinstance(model, ContrastiveRecommender):
        raise ConfigError(f"{args.from_model}: holds a baseline ({type(model).__name__}); --from continues "
                          "contrec's own models only: fit the baseline again on all the data")
    model.threads, model.verbose, model.device = args.threads, not args.quiet, args.device
    data = read_for_model(args, args.data, model, args.from_model)
    log.info("read %r", data)
    if reading_given(args):  # the latest log's shape is the one the next update will meet
        model.reading_ = reading_of(args)
    t0 = time.perf_counter()
    model.fit(data, warm_start=True, train_on=args.train_on, update_epochs=args.update_epochs)
    log.info("updated %s in %.1fs: %d new users, %d new items; now %d users, %d items", args.from_model,
             time.perf_counter() - t0, model.update_["new_users"], model.update_["new_items"], len(model.users_),
             len(model.items_))
    model.save(args.output)
    log.info("saved %s", args.output)
    return 0


def _given(args: argparse.Namespace, allowed: set[str]) -> str | None:
    """The first flag outside ``allowed`` that was given a value other than its default (``--flag``), or None."""
    given = sorted(dest for dest, default in (getattr(args, "fit_defaults", None) or {}).items()
                   if dest not in allowed and getattr(args, dest, default) != default)
    return _FLAGS.get(given[0], "--" + given[0].replace("_", "-")) if given else None


_FLAGS = {"refit": "--no-refit"}  # flags whose name is not their destination's (--from is never refused this way)


# what a baseline's fit reads besides --model-params; the flags of contrec's epochs and device get their own refusal
_BASELINE_FLAGS = (_RUN_FLAGS - {"device", "train_on", "update_epochs"}) | {"model", "model_params", "seed"}
_EPOCH_FLAGS = {"--checkpoint", "--checkpoint-every", "--resume", "--train-on", "--update-epochs", "--patience",
                "--epochs", "--validation-size", "--no-refit"}


def _fit_baseline(args: argparse.Namespace) -> int:
    """``contrec fit --model als``: a baseline fitted on the file and saved (`contrec.models.baseline_files`)."""
    from contrec.models.baselines import BASELINES

    name = BASELINES.key(args.model)
    if args.from_model or args.distributed:
        raise ConfigError(f"--model {name} fits in one process from scratch; drop "
                          f"{'--from' if args.from_model else '--distributed'}")
    given = _given(args, _BASELINE_FLAGS)
    if given in _EPOCH_FLAGS:
        raise ConfigError(f"{given} goes with contrec's epochs; --model {name} fits in one call: drop {given}")
    if given == "--device":
        raise ConfigError(f"--model {name} fits on the CPU; drop --device")
    if given:
        raise ConfigError(f"{given} is a setting of contrec's model; --model {name} takes its settings in "
                          "--model-params (JSON)")
    check_output(args.output, args.data, args.item_attributes)
    params = json_object(args.model_params, "--model-params", '{"factors": 128}') if args.model_params else {}
    accepted = BASELINES[name].param_defaults()  # type: ignore[attr-defined]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"--model-params: {BASELINES[name].__name__} has no setting {unknown[0]!r}; "  # type: ignore[attr-defined]
                          f"its settings are {', '.join(accepted)}")
    for run in ("threads", "seed"):  # the run's flags reach a baseline that has such a setting
        if run in accepted and run not in params:
            params[run] = getattr(args, run)
    model = BASELINES.create(name, **params)
    model.check()  # type: ignore[attr-defined]
    data = read_data(args, args.data)
    log.info("read %r", data)
    weighting = next((w for w in ("confidence", "weights") if w in accepted), None)
    if weighting and getattr(model, weighting) == "linear" and len(data) and float(data.matrix.data.max()) > 1:
        log.warning("%s takes the weights as they are (%s 'linear'); raw counts in the hundreds drown a user's other "
                    "positives — --model-params '{\"%s\": \"log1p\"}' or \"none\" may serve better "
                    "(docs/compare.md)", type(model).__name__, weighting, weighting)
    t0 = time.perf_counter()
    model.fit(data)
    log.info("fitted %r in %.1fs", model, time.perf_counter() - t0)
    model.reading_ = reading_of(args)  # type: ignore[attr-defined]
    model.save(args.output)  # type: ignore[attr-defined]
    log.info("saved %s", args.output)
    return 0


def _fit(args: argparse.Namespace, save: bool = True) -> int:
    if str(getattr(args, "model", "contrec")).lower() != "contrec":
        return _fit_baseline(args)
    if getattr(args, "model_params", None):
        raise ConfigError("--model-params sets a baseline's settings (--model als, ease, …); contrec's model takes "
                          "its flags (--dim, --sampler, …)")
    if getattr(args, "from_model", None):
        return _update(args)
    if args.train_on != "union" or args.update_epochs is not None:
        raise ConfigError("--train-on and --update-epochs go with --from MODEL")
    model, data, validation, _ = _fit_inputs(args)
    t0 = time.perf_counter()
    model.fit(data, validation, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
              resume=args.resume)
    if model.selection_:
        from contrec.data.readers import counted

        tower = f" with the {model.user_tower_} user tower" if len(model.selection_) > 1 else ""
        log.info("best epoch on the %.0f%% validation carve: %d; trained on all %s for %s%s (fitted in %.1fs)",
                 100 * model.validation_size, model.best_epoch_, counted(len(data), "positive"),
                 counted(model.best_epoch_, "epoch"), tower, time.perf_counter() - t0)
    else:
        log.info("fitted in %.1fs", time.perf_counter() - t0)
    if save:
        model.reading_ = reading_of(args)
        model.save(args.output)
        log.info("saved %s", args.output)
    return 0


def _tower_params(args: argparse.Namespace) -> dict[str, Any]:
    """Similarity parameters, an encoder preset and the tower / loss flags (flags win over the preset)."""
    from contrec.nn.encoders import ENCODER_PRESETS

    params: dict[str, Any] = {}
    if args.encoder is not None:
        params.update(ENCODER_PRESETS[ENCODER_PRESETS.key(args.encoder)])
    if args.similarity_params:
        params["similarity_params"] = json_object(args.similarity_params, "--similarity-params", '{"weight": 0.3}')
    for name in ("user_tower", "pooling", "history_dropout", "history_cap", "graph_layers", "item_tower",
                 "id_dropout", "projection", "serve_from", "objective", "margin", "ssl_weight", "optimizer", "init"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    if args.history_user_id:
        params["history_user_id"] = True
    if args.item_features:
        params["item_features"] = [c.strip() for c in args.item_features.split(",") if c.strip()]
    return params


def _sampler_params(args: argparse.Namespace) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    if args.sampler_params:
        params = json_object(args.sampler_params, "--sampler-params", '{"alpha": 0.5}')
    if args.rule:
        if args.sampler != "domain-rule":
            raise ConfigError("--rule goes with --sampler domain-rule")
        params["rule"] = args.rule
    if args.exclude_positives:
        params["exclude_positives"] = True
    return params or None
