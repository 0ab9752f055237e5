"""The `contrec` command: fit | recommend | evaluate | split | datasets | demo.

A thin face over the Python API. Known errors become one line on stderr and exit code 1
(2 for a malformed command line); output files are written atomically, so a failed run
never leaves a partial file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from contrec.errors import ConfigError, ContrecError

__all__ = ["main"]

log = logging.getLogger("contrec")
_ERRORS_ENV = "CONTREC_LAUNCH_ERRORS"


def _under_launcher() -> bool:
    """Whether this is one of the processes ``contrec fit --distributed`` started (its launcher speaks for it)."""
    return bool(os.environ.get(_ERRORS_ENV))


_WEIGHT_HELP = ("non-negative weight column (e.g. play counts); implicit's ALS uses it as confidence, while "
                "contrec's contrastive model treats every positive alike for now (it says so when weights are given)")


_THREADS_HELP = ("torch and FAISS threads (default: the CPUs this process may use, less any that other "
                 "processes keep busy; see docs/performance.md)")


# ---------------------------------------------------------------------------- helpers
def _read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the interaction file")
    g.add_argument("--user", default="user", help="user id column (default: user)")
    g.add_argument("--item", default="item", help="item id column (default: item)")
    g.add_argument("--rating", help="explicit rating column")
    g.add_argument("--min-rating", type=float, help="ratings ≥ this are positives (needs --rating)")
    g.add_argument("--weight", help=_WEIGHT_HELP)
    g.add_argument("--timestamp", help="time column (seconds or dates)")
    g.add_argument("--sep", help="delimiter (default: detected; use '\\t' for tab, '::' for MovieLens .dat)")
    g.add_argument("--names", help="comma-separated column names for a file without a header")
    g.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    g.add_argument("--duplicates", default="last", choices=["last", "first", "sum", "error"],
                   help="policy for repeated (user, item) rows (default: last)")
    g.add_argument("--item-attributes", help="CSV of item attributes (e.g. movies.csv with genres) for domain rules")
    g.add_argument("--item-attributes-id", help="its item id column (default: the --item column name)")
    g.add_argument("--attributes-sep", help="delimiter of the attributes file (default: detected from its header)")


def _read(args: argparse.Namespace, path: str, **extra: Any) -> Any:
    from contrec.data.readers import read_interactions

    sep = {"\\t": "\t", "tab": "\t"}.get(args.sep, args.sep) if args.sep else None
    if getattr(args, "item_attributes", None) and "item_attributes" not in extra:
        from contrec.data.readers import read_item_attributes

        extra["item_attributes"] = read_item_attributes(args.item_attributes, args.item_attributes_id or args.item,
                                                        "name it with --item-attributes-id", sep=args.attributes_sep)
    return read_interactions(path, user=args.user, item=args.item, rating=args.rating, weight=args.weight,
                             timestamp=args.timestamp, min_rating=args.min_rating, sep=sep,
                             names=args.names.split(",") if args.names else None, encoding=args.encoding,
                             duplicates=args.duplicates, **extra)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text!r})") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _write_csv(frame: pd.DataFrame, path: str | None) -> None:
    from contrec.runtime.artifact import atomic_write

    if path is None or path == "-":
        frame.to_csv(sys.stdout, index=False)
        return
    atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode("utf-8")))
    log.info("wrote %s (%d rows)", path, len(frame))


def _check_output(path: str | None) -> None:
    """Fail before any work when the output could not be written anyway."""
    from contrec.runtime.artifact import check_writable

    if path not in (None, "-"):
        check_writable(path)


# ---------------------------------------------------------------------------- commands
def _cmd_fit(args: argparse.Namespace) -> int:
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
        return _launch(args, args.nproc_per_node)
    world = distributed.init()
    try:
        if args.threads is None:  # share the cores between the processes on this machine
            args.threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        if world.rank > 0:  # one voice: rank 0 logs, shows progress and writes the model
            log.setLevel(logging.WARNING)
            args.quiet = True
        if world.rank > 0 or _under_launcher():  # the data's warnings: the launcher has shown them
            warnings.simplefilter("ignore")
        return _fit(args, save=world.main)
    finally:
        distributed.close()


def _launch(args: argparse.Namespace, nproc: int) -> int:
    """Start ``nproc`` copies of this command under PyTorch's elastic launcher (what torchrun runs)."""
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"contrec-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    log.info("starting %d training processes (torch.distributed, gloo)", nproc)
    with tempfile.TemporaryDirectory(prefix="contrec-errors-") as errors:
        os.environ[_ERRORS_ENV] = errors  # the processes leave their one-line errors here, for one report below
        logging.disable(logging.ERROR)  # the launcher's own multi-line failure log
        try:
            elastic_launch(config, sys.executable)("-m", "contrec", *args.argv)
        except ChildFailedError as err:
            for rank, failure in sorted(err.failures.items()):
                message = Path(errors, str(rank))
                if message.is_file():
                    raise ContrecError(message.read_text(encoding="utf-8")) from None
            rank, failure = min(err.failures.items())
            raise ContrecError(f"training process {rank} failed (exit code {failure.exitcode})") from None
        except SignalException:  # Ctrl-C or a SIGTERM: the launcher has stopped the processes
            raise KeyboardInterrupt from None
        finally:
            logging.disable(logging.NOTSET)
            del os.environ[_ERRORS_ENV]
    return 0


def _fit_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The model, training data, validation data and the whole file ``contrec fit`` was asked for
    (checked, nothing trained)."""
    from contrec.data.splits import split_random
    from contrec.models.contrastive import ContrastiveRecommender

    _check_output(args.output)
    data = full = _read(args, args.data)
    if not _under_launcher():
        log.info("read %r", data)
    model = ContrastiveRecommender(dim=args.dim, similarity=args.similarity, temperature=args.temperature,
                                   sampler=args.sampler, sampler_params=_sampler_params(args),
                                   n_negatives=args.n_negatives, epochs=args.epochs, logq=not args.no_logq,
                                   in_batch=not args.no_in_batch, debias_prior=args.debias_prior,
                                   hardness=args.hardness, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   threads=args.threads, verbose=not args.quiet, patience=args.patience,
                                   **_tower_params(args))
    model.check()
    validation = None
    if args.validation_size:
        if args.refit and (args.checkpoint or args.resume):
            raise ConfigError("--checkpoint/--resume cover one training run; with --validation-size add "
                              "--no-refit (or train with --epochs set to the best epoch, without validation)")
        data, validation = split_random(data, test_size=args.validation_size, seed=args.seed)
    return model, data, validation, full


def _fit(args: argparse.Namespace, save: bool = True) -> int:
    model, data, validation, full = _fit_inputs(args)
    t0 = time.perf_counter()
    model.fit(data, validation, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
              resume=args.resume)
    log.info("fitted in %.1fs", time.perf_counter() - t0)
    if validation is not None and args.refit:
        # early stopping chose the number of epochs; the model that is saved learns from every positive
        best = model.best_epoch_ or model.epochs
        log.info("best epoch on validation: %d; refitting on all %d positives for %d epochs (--no-refit keeps "
                 "the early-stopped model)", best, len(data) + len(validation), best)
        t1 = time.perf_counter()
        model = type(model)(**{**model.get_params(), "epochs": best}).fit(full)
        log.info("refitted in %.1fs", time.perf_counter() - t1)
    if save:
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
        params["similarity_params"] = _json_object(args.similarity_params, "--similarity-params", '{"weight": 0.3}')
    for name in ("user_tower", "pooling", "history_dropout", "item_tower", "id_dropout", "projection", "serve_from",
                 "objective", "margin", "ssl_weight", "optimizer"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    if args.history_user_id:
        params["history_user_id"] = True
    if args.item_features:
        params["item_features"] = [c.strip() for c in args.item_features.split(",") if c.strip()]
    return params


def _json_object(text: str, flag: str, example: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag} is not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, e.g. '{example}'")
    return value


def _sampler_params(args: argparse.Namespace) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    if args.sampler_params:
        params = _json_object(args.sampler_params, "--sampler-params", '{"alpha": 0.5}')
    if args.rule:
        if args.sampler != "domain-rule":
            raise ConfigError("--rule goes with --sampler domain-rule")
        params["rule"] = args.rule
    if args.exclude_positives:
        params["exclude_positives"] = True
    return params or None


def _load_model(path: str) -> Any:
    from contrec.models.contrastive import ContrastiveRecommender

    return ContrastiveRecommender.load(path)


def _cmd_recommend(args: argparse.Namespace) -> int:
    _check_output(args.output)
    model = _load_model(args.model)
    unknown = "skip" if args.skip_unknown else "raise"
    if args.history is not None or args.histories_file is not None:
        recs = model.recommend_for_history(_histories(args), k=args.k, filter_seen=not args.include_seen,
                                           unknown=unknown)
        if args.attributes and model.item_attributes_ is not None:
            recs = recs.join(model.item_attributes_, on="item")
        _write_csv(recs, args.output)
        return 0
    if args.all_users:
        users = None
    elif args.users is not None:
        users = [u.strip() for u in args.users.split(",") if u.strip()]
        if not users:
            raise ConfigError("--users is empty; give comma-separated user ids")
    else:
        path = Path(args.users_file)
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        users = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not users:
            raise ConfigError(f"{path}: contains no user ids")
    recs = model.recommend(users, k=args.k, filter_seen=not args.include_seen,
                           unknown="skip" if args.skip_unknown else "raise")
    if args.attributes and model.item_attributes_ is not None:
        recs = recs.join(model.item_attributes_, on="item")
    _write_csv(recs, args.output)
    return 0


def _histories(args: argparse.Namespace) -> dict[str, list[str]]:
    if args.history is not None:
        items = [i.strip() for i in args.history.split(",") if i.strip()]
        if not items:
            raise ConfigError("--history is empty; give comma-separated item ids")
        return {"history": items}
    path = Path(args.histories_file)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in ("query", "item") if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: missing column {missing[0]!r} (expected columns query,item; found "
                          f"{', '.join(frame.columns) or 'none'})")
    if frame.empty:
        raise ConfigError(f"{path}: has no rows")
    blank = (frame["query"].str.strip() == "") | (frame["item"].str.strip() == "")
    if blank.any():
        raise ConfigError(f"{path}: line {int(blank.to_numpy().argmax()) + 2}: empty query or item")
    return {q: list(g["item"]) for q, g in frame.groupby("query", sort=False)}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from contrec.data.interactions import Interactions
    from contrec.evaluation import evaluate

    _check_output(args.output)
    model = _load_model(args.model)
    # unknown users: an error, or dropped with a warning that counts them (--drop-unknown); unknown items
    # stay in the test data as relevant items the model cannot retrieve (misses), as in every other path
    test = _read(args, args.test, users=model.users_, items=model.items_,
                 unknown="drop" if args.drop_unknown else "error", unknown_items="extend")
    train = Interactions(model.seen_, model.users_, model.items_)
    table = evaluate(model, train, test, k=args.k, overlap="drop" if args.drop_overlap else "error")
    dropped = table.attrs["n_overlap_dropped"]
    log.info("evaluated %d users on %d test rows; %d of them are on items the model does not know (counted as "
             "misses)%s", table.attrs["n_users"], len(test), table.attrs["n_unknown_item_positives"],
             f"; dropped {dropped} rows the model already knew" if dropped else "")
    if args.output:
        _write_csv(table, args.output)
    else:
        wide = table.pivot(index="metric", columns="k", values="value")
        wide.columns = [f"@{c}" for c in wide.columns]
        print(wide.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.diagnostics:
        from contrec.nn.diagnostics import embedding_diagnostics

        print("\nembedding diagnostics (training positives):")
        for name, value in embedding_diagnostics(model).items():
            print(f"  {name:<26} {value:.4f}")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from contrec.data.splits import split_random, split_temporal

    for out in (args.train_out, args.test_out):
        _check_output(out)
    data = _read(args, args.data)
    if args.temporal:
        train, test = split_temporal(data, test_size=args.test_size)
    else:
        train, test = split_random(data, test_size=args.test_size, seed=args.seed)
    _write_csv(train.to_frame(), args.train_out)
    _write_csv(test.to_frame(), args.test_out)
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from contrec.data.movielens import dataset_info, dataset_names, fetch_movielens, locate_movielens

    if args.action == "list":
        rows = []
        for name in dataset_names():
            info = dataset_info(name)
            where = locate_movielens(name, args.data_dir)
            rows.append({"name": name, "local copy": str(where) if where else "-", "description": info.title})
        print(pd.DataFrame(rows).to_string(index=False))
        return 0
    if not args.name:
        raise ConfigError("datasets fetch needs a dataset name, e.g. contrec datasets fetch ml-100k")
    for name in args.name:
        info = dataset_info(name)
        log.info("%s: ~%d MB archive from %s", name, info.archive_mb, info.url)
        folder = fetch_movielens(name, args.data_dir, verify=not args.no_verify)
        print(f"{name}: {folder}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from contrec.cli.demo import run_demo

    run_demo(dataset=args.dataset, seed=args.seed, data_dir=args.data_dir, n_users=args.show_users,
             threads=args.threads, verbose=not args.quiet)
    return 0


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _seeds(text: str) -> "int | list[int]":
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count (3) or a list (0,1,2), got {text!r}") from None


def _cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from contrec.experiments import build_config, compare
    from contrec.experiments.report import results_table

    raw = build_config(args.config).to_dict() if args.config else {"contestants": []}
    if args.data is not None:
        raw.pop("dataset", None)
        raw["data"] = {k: v for k, v in {
            "path": args.data, "user": args.user, "item": args.item, "rating": args.rating,
            "timestamp": args.timestamp, "sep": args.sep, "item_attributes": args.item_attributes,
            "item_attributes_id": args.item_attributes_id, "attributes_sep": args.attributes_sep,
            "weight": args.weight,
            "names": args.names}.items() if v is not None}
    elif args.dataset is not None or "data" not in raw:
        raw.pop("data", None)
        raw["dataset"] = args.dataset or raw.get("dataset", "ml-100k")
    protocol = dict(raw.get("protocol", {}))
    for key, value in (("min_rating", args.min_rating), ("split", args.split), ("k", args.k),
                       ("test_size", args.test_size)):
        if value is not None:
            protocol[key] = value
    raw["protocol"] = protocol
    if args.primary:
        raw["primary"] = args.primary
    flags = {"sampler": args.samplers, "similarity": args.similarities, "encoder": args.encoders,
             "objective": args.objectives, "baseline": args.baselines}
    if any(v is not None for v in flags.values()):
        raw["contestants"] = [{kind: name} for kind, text in flags.items() for name in _names(text) or []]
    command = "contrec " + " ".join(shlex.quote(a) for a in args.argv)
    result = compare(raw, seeds=args.seeds, tune=False if args.no_tune else None, trials=args.trials,
                     threads=args.threads, out=args.out, data_dir=args.data_dir, progress=not args.quiet,
                     command=command)
    print(results_table(result))
    print(f"\nbest on {result.config.primary}: {result.best}; report: {Path(args.out) / 'report.md'} "
          f"(and report.html, results.csv, per_user.npz, plots, manifest.json)")
    return 0


# ---------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with contrec's errors: one line, then where to read more (exit code 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"contrec: error: {message}\ncontrec: see '{self.prog} --help'\n")


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default (when it has one worth saying)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text and not any(default is v for v in (None, False))
                and default != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)):
            text += " (default: %(default)s)"
        return text


def _model_default(name: str) -> Any:
    """A ContrastiveRecommender constructor default: the CLI's defaults are the model's, never retyped."""
    import inspect

    from contrec.models.contrastive import ContrastiveRecommender

    return inspect.signature(ContrastiveRecommender).parameters[name].default


def _say_model_defaults(parser: argparse.ArgumentParser) -> None:
    """Tower and loss flags default to None (a preset or the model decides): their help names the model's default."""
    import inspect

    from contrec.models.contrastive import ContrastiveRecommender

    params = inspect.signature(ContrastiveRecommender).parameters
    for action in parser._actions:
        if (action.dest in params and action.default is None and params[action.dest].default is not None
                and "default" not in (action.help or "")):
            action.help = f"{action.help or ''} (default: {params[action.dest].default})".strip()


def build_parser() -> argparse.ArgumentParser:
    from contrec._version import __version__

    parser = _Parser(prog="contrec", description="Contrastive recommendation from implicit feedback.",
                     formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"contrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=_Help)
        p.set_defaults(func=func)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        return p

    p = command("fit", _cmd_fit, "train a model on an interaction file and save it")
    p.add_argument("data", help="interaction file (.csv, .tsv, .dat, .parquet)")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    _read_options(p)
    g = p.add_argument_group("model")
    g.add_argument("--dim", type=int, default=_model_default("dim"), help="embedding size of both towers")
    g.add_argument("--similarity", default=_model_default("similarity"),
                   help="similarity kernel: cosine, dot, gaussian, laplacian, kernel-mixture, or a *-normalized form")
    g.add_argument("--temperature", type=float, default=_model_default("temperature"),
                   help="τ: logits are similarity / τ")
    g.add_argument("--sampler", default=_model_default("sampler"),
                   help="negative sampler: uniform, popularity, hard, dynamic-hard, domain-rule, mixed, in-batch")
    g.add_argument("--sampler-params", help="sampler parameters as JSON, e.g. '{\"alpha\": 0.5}'")
    g.add_argument("--rule", help="domain rule (string or JSON/YAML file) for --sampler domain-rule, "
                                  "e.g. 'disjoint(genres) and never_same(franchise)'")
    g.add_argument("--exclude-positives", action="store_true", help="samplers draw no known positives")
    g.add_argument("--n-negatives", type=int, default=_model_default("n_negatives"),
                   help="sampled negatives per step, shared by the batch (0 = in-batch negatives only)")
    g.add_argument("--no-logq", action="store_true", help="turn off the log q correction (ablations)")
    g.add_argument("--no-in-batch", action="store_true", help="do not use the batch's positives as negatives")
    g.add_argument("--debias-prior", type=float, default=_model_default("debias_prior"),
                   help="τ⁺ of the debiased contrastive loss (0 = off)")
    g.add_argument("--hardness", type=float, default=_model_default("hardness"),
                   help="β of hardness-weighted negatives (0 = off)")
    g = p.add_argument_group("towers and loss")
    g.add_argument("--encoder", help="tower preset: id, features, history, history-attention, history-features, "
                                     "history-ssl, projection (the flags below override it)")
    g.add_argument("--similarity-params", help="similarity parameters as JSON, e.g. '{\"weight\": 0.3}' for "
                                               "kernel-mixture")
    g.add_argument("--user-tower", choices=["id", "history"], help="history: users are pooled item vectors "
                   "(enables recommend --history for new users)")
    g.add_argument("--pooling", choices=["mean", "attention"], help="how the history tower pools a user's items")
    g.add_argument("--history-dropout", type=float, help="share of history items dropped per training step")
    g.add_argument("--history-user-id", action="store_true", help="add a user ID vector to the history tower")
    g.add_argument("--item-tower", choices=["id", "features"], help="features: ID + attribute tokens (cold items)")
    g.add_argument("--item-features", help="attribute columns for the feature tower, comma-separated "
                                           "(default: all but free text)")
    g.add_argument("--id-dropout", type=float, help="share of rows whose item ID vector the feature tower drops")
    g.add_argument("--projection", type=int, help="hidden size of an MLP projection head (0 = none)")
    g.add_argument("--serve-from", choices=["head", "tower"], help="retrieve with the head or the tower output")
    g.add_argument("--objective", choices=["infonce", "bpr", "triplet"],
                   help="the loss over the same candidates: sampled-softmax InfoNCE or a pairwise loss")
    g.add_argument("--margin", type=float, help="triplet margin")
    g.add_argument("--ssl-weight", type=float, help="weight of the history-view SSL loss (history tower)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=_model_default("epochs"),
                   help="passes over the training positives (the most, with --validation-size)")
    g.add_argument("--batch-size", type=int, default=_model_default("batch_size"), help="positives per step")
    g.add_argument("--lr", type=float, default=_model_default("lr"), help="Adam learning rate")
    g.add_argument("--optimizer", choices=["adam", "sparse-adam"],
                   help="adam (default) or sparse-adam: lazy row-wise updates of the embedding tables, "
                        "faster for 100k+ users/items")
    g.add_argument("--patience", type=int, default=_model_default("patience"),
                   help="with --validation-size: stop after this many epochs without a better validation NDCG")
    g.add_argument("--validation-size", type=float, default=0.0,
                   help="hold out this share of each user's positives for early stopping (default: none); "
                        "the saved model is then refitted on every positive for the best number of epochs")
    g.add_argument("--no-refit", dest="refit", action="store_false",
                   help="with --validation-size, save the early-stopped model instead of refitting on every "
                        "positive (its validation positives stay known: never recommended)")
    g.add_argument("--seed", type=int, default=_model_default("seed"),
                   help="random seed: the same seed, data and threads give the same model on CPU")
    g.add_argument("--threads", type=int, help=_THREADS_HELP)
    g.add_argument("--checkpoint", help="write a training checkpoint here at every epoch end (atomic; no pickle)")
    g.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every this many steps (default: epoch ends only)")
    g.add_argument("--resume", help="continue from this checkpoint (same data and settings)")
    g = p.add_argument_group("several processes (torch.distributed DDP; see docs/scaling.md)")
    g.add_argument("--distributed", action="store_true",
                   help="train with --nproc-per-node processes on this machine (gloo); under torchrun "
                        "(`torchrun --nproc-per-node N -m contrec fit ...`) the processes are torchrun's")
    g.add_argument("--nproc-per-node", type=int, default=2, metavar="N",
                   help="processes for --distributed (default 2); --batch-size and --n-negatives are per process")

    _say_model_defaults(p)

    p = command("recommend", _cmd_recommend, "top-k recommendations from a saved model")
    p.add_argument("model", help="model file written by contrec fit")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", help="comma-separated user ids")
    who.add_argument("--users-file", help="file with one user id per line")
    who.add_argument("--all-users", action="store_true", help="every user known to the model")
    who.add_argument("--history", help="a new user's item ids, comma-separated (needs a history-tower model)")
    who.add_argument("--histories-file", help="CSV with columns query,item: one list per query id (new users)")
    p.add_argument("-k", type=int, default=10, help="items per user (default: 10)")
    p.add_argument("--include-seen", action="store_true", help="do not filter items seen in training")
    p.add_argument("--skip-unknown", action="store_true", help="skip user ids the model does not know")
    p.add_argument("--attributes", action="store_true", help="add item attributes (e.g. title) as columns")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")

    p = command("evaluate", _cmd_evaluate, "full-ranking metrics of a saved model on a held-out file")
    p.add_argument("model", help="model file written by contrec fit")
    p.add_argument("test", help="held-out interactions (same columns options as fit)")
    _read_options(p)
    p.add_argument("-k", type=_int_list, default=[10, 20], help="cutoffs, comma-separated (default: 10,20)")
    p.add_argument("--drop-unknown", action="store_true",
                   help="drop test rows of users the model does not know (default: error); test items the "
                        "model does not know are always kept and count as misses")
    p.add_argument("--drop-overlap", action="store_true",
                   help="drop test pairs the model already knows (default: refuse them; they can never be "
                        "recommended)")
    p.add_argument("-o", "--output", help="write the tidy metrics table as CSV")
    p.add_argument("--diagnostics", action="store_true",
                   help="also print alignment, uniformity, effective rank, norm-popularity correlation")

    p = command("split", _cmd_split, "split an interaction file per user into train and test CSVs")
    p.add_argument("data", help="interaction file (.csv, .tsv, .dat, .parquet)")
    _read_options(p)
    p.add_argument("--test-size", type=float, default=0.2, help="share of each user's positives held out")
    p.add_argument("--seed", type=int, default=0, help="random seed of the per-user split")
    p.add_argument("--temporal", action="store_true", help="hold out each user's latest positives (needs --timestamp)")
    p.add_argument("--train-out", required=True, help="CSV to write the training part to")
    p.add_argument("--test-out", required=True, help="CSV to write the held-out part to")

    p = command("datasets", _cmd_datasets, "list or download known datasets (MovieLens)")
    p.add_argument("action", choices=["list", "fetch"], help="list the known datasets, or fetch (download and verify) some")
    p.add_argument("name", nargs="*", help="dataset names for fetch")
    p.add_argument("--data-dir", help="folder holding <name>/ (default: $CONTREC_DATA, then the cache)")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")

    p = command("demo", _cmd_demo, "fit ml-100k, compare with popularity, show recommendations with titles")
    p.add_argument("--dataset", default="ml-100k", help="a known dataset (contrec datasets list)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split and the model")
    p.add_argument("--data-dir", help="folder holding <dataset>/ (default: $CONTREC_DATA, then download)")
    p.add_argument("--show-users", type=int, default=3, help="users whose recommendations are shown")
    p.add_argument("--threads", type=int, help=_THREADS_HELP)

    from contrec.experiments import config as spec  # compare's defaults are its config's, never retyped

    p = command("compare", _cmd_compare, "compare negative samplers and baselines: tuned, several seeds, "
                "significance tests, report with plots")
    p.add_argument("--config", help="experiment file (YAML or TOML, see docs/compare.md); flags override it")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="a known dataset (default: ml-100k): " + ", ".join(_dataset_names()))
    src.add_argument("--data", help="your own interaction file instead of a dataset")
    g = p.add_argument_group("your own file (--data)")
    g.add_argument("--user", help="user id column (default: user)")
    g.add_argument("--item", help="item id column (default: item)")
    g.add_argument("--rating", help="rating column; ratings ≥ --min-rating are positives")
    g.add_argument("--timestamp", help="time column (needed for --split temporal)")
    g.add_argument("--weight", help=_WEIGHT_HELP)
    g.add_argument("--names", help="comma-separated column names for a file without a header line")
    g.add_argument("--sep", help="delimiter (default: detected)")
    g.add_argument("--item-attributes", help="CSV of item attributes for domain-rule samplers")
    g.add_argument("--item-attributes-id", help="its item id column (default: the --item column name)")
    g.add_argument("--attributes-sep", help="delimiter of the attributes file (default: detected from its header)")
    g = p.add_argument_group("contestants and protocol")
    g.add_argument("--samplers", help="contrec contestants by sampler, comma-separated: uniform,popularity,hard,"
                   "dynamic-hard,domain-rule,mixed")
    g.add_argument("--similarities", help="contrec contestants by similarity (uniform sampler), comma-separated: "
                   "cosine,dot,gaussian,laplacian,kernel-mixture and their -normalized forms")
    g.add_argument("--encoders", help="contrec contestants by towers, comma-separated: id,features,history,"
                   "history-attention,history-features,history-ssl,projection")
    g.add_argument("--objectives", help="contrec contestants by loss, comma-separated: infonce,bpr,triplet")
    g.add_argument("--baselines", help="baselines, comma-separated: popularity,itemknn,als,bpr,ease")
    g.add_argument("--seeds", type=_seeds, help="number of seeds (3) or a list (0,1,2); default "
                   f"{len(spec.ExperimentConfig.__dataclass_fields__['seeds'].default)}")
    g.add_argument("--no-tune", action="store_true", help="skip tuning: every contestant runs its defaults")
    g.add_argument("--trials", type=int, help="tuning budget: settings tried per contestant and seed "
                   f"(default {spec.TuningSpec().trials})")
    protocol = spec.EvaluationProtocol()
    g.add_argument("--split", choices=["random", "temporal"], help=f"per-user split (default: {protocol.split})")
    g.add_argument("--test-size", type=float, help=f"held-out share per user (default {protocol.test_size:g})")
    g.add_argument("--min-rating", type=float, help=f"ratings ≥ this are positives (default {protocol.min_rating:g})")
    g.add_argument("-k", type=_int_list, help=f"cutoffs, comma-separated (default: {','.join(map(str, protocol.k))})")
    g.add_argument("--primary", help="metric@k that ranks contestants and picks tuning trials "
                   f"(default {spec.ExperimentConfig.__dataclass_fields__['primary'].default})")
    g.add_argument("--threads", type=int, help="torch, FAISS and BLAS threads for every fit, the same for every "
                   f"contestant (default {spec.ExperimentConfig.__dataclass_fields__['threads'].default})")
    p.add_argument("--data-dir", help="folder holding <dataset>/ (default: $CONTREC_DATA, then download)")
    p.add_argument("--out", required=True, help="report folder; finished fits are cached there and reused")
    return parser


def _dataset_names() -> list[str]:
    from contrec.data.movielens import dataset_names

    return dataset_names()


def _one_line_warnings(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                       line: Any = None) -> None:
    print(f"contrec: warning: {message}", file=sys.stderr)


def _report(message: str) -> None:
    """One error line on stderr; a training process started by ``--distributed`` leaves it for the launcher,
    which reports the first one (every process meets the same error, and one line is enough)."""
    rank = os.environ.get("RANK")
    if _under_launcher() and rank is not None and Path(os.environ[_ERRORS_ENV]).is_dir():
        Path(os.environ[_ERRORS_ENV], rank).write_text(message, encoding="utf-8")
        return
    print(f"contrec: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("contrec: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warnings
        try:
            return int(args.func(args))
        except ContrecError as err:
            _report(err.cli_message)
            return 1
        except KeyboardInterrupt:
            if not _under_launcher():
                print("contrec: interrupted", file=sys.stderr)
            return 130
        except (OSError, MemoryError) as err:
            print(f"contrec: error: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
