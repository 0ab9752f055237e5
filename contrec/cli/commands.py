"""The commands other than fit: recommend, evaluate, split, datasets, demo, compare."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contrec.cli.options import check_output, read_data, read_text_csv, write_csv
from contrec.cli.reading import read_for_model
from contrec.data.compression import decode_text, read_file_bytes
from contrec.errors import ConfigError, DataError

__all__ = ["cmd_recommend", "cmd_evaluate", "cmd_split", "cmd_datasets", "cmd_demo", "cmd_compare", "seeds"]

log = logging.getLogger("contrec")


def cmd_recommend(args: argparse.Namespace) -> int:
    from contrec.models.loading import load  # contrec's model or a baseline (contrec fit --model als)

    check_output(args.output, args.model, args.users_file, args.items_file, args.exclude_file, args.histories_file)
    model = load(args.model)
    unknown = "skip" if args.skip_unknown else "raise"
    rules = {"items": _item_list(args.items_file, "--items-file") if args.items_file else None,
             "exclude": _exclusions(args.exclude_file) if args.exclude_file else None,
             "rule": _serving_rule(args.rule) if args.rule else None}
    for flag, path, listed in (("--items-file", args.items_file, rules["items"]),
                               ("--exclude-file", args.exclude_file, rules["exclude"])):
        _note_unknown_items(flag, path, listed, model.items_)
    if args.history is not None or args.histories_file is not None:
        recs = model.recommend_for_history(_histories(args), k=args.k, filter_seen=not args.include_seen,
                                           unknown=unknown, **rules)
        if args.attributes and model.item_attributes_ is not None:
            recs = recs.join(model.item_attributes_, on="item")
        _note_short_lists(recs, "query", args.k, any(v is not None for v in rules.values()), None,
                          not args.include_seen)
        write_csv(recs, args.output)
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
        try:
            text = decode_text(read_file_bytes(path)[0], "utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: bytes that are not valid utf-8 at byte {err.start}; re-save it as utf-8") \
                from None
        users = [line.strip() for line in text.splitlines() if line.strip()]
        if not users:
            raise ConfigError(f"{path}: contains no user ids")
        known = model.users_.index(users) >= 0
        if len(users) > 1 and not known[0] and known[1:].all():
            raise ConfigError(f"{path}: line 1 {users[0]!r} is not a user id the model knows, but every other line "
                              "is — a header? The file takes one user id per line, without a header")
    recs = model.recommend(users, k=args.k, filter_seen=not args.include_seen,
                           unknown="skip" if args.skip_unknown else "raise", **rules)
    if args.attributes and model.item_attributes_ is not None:
        recs = recs.join(model.item_attributes_, on="item")
    asked = len(model.users_) if users is None else len({u for u, code in zip(users, model.users_.index(users))
                                                         if code >= 0})
    _note_short_lists(recs, "user", args.k, any(v is not None for v in rules.values()), asked, not args.include_seen)
    write_csv(recs, args.output)
    return 0


def _note_unknown_items(flag: str, path: str | None, listed: Any, catalogue: Any) -> None:
    """One stderr line when a serving list names items the model never saw (``catalogue``: its item `IdMap`):
    they are ignored (a catalogue changes), which is right for an out-of-stock list and a typo's silent no-op
    otherwise."""
    if listed is None:
        return
    ids = sorted(set(listed["item"]) if hasattr(listed, "columns") else set(listed))
    unknown = [i for i, code in zip(ids, catalogue.index(ids)) if code < 0]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        print(f"contrec: note: {flag} {path}: {len(unknown):,} of its {len(ids):,} item ids are not in the model's "
              f"catalogue and were ignored: {shown}", file=sys.stderr)


def _note_short_lists(recs: Any, key: str, k: int, filtered: bool, asked: int | None = None,
                      seen: bool = False) -> None:
    """One stderr line when lists came out shorter than k (the output stays exact): serving filters
    (``filtered``) or the seen items left out (``seen``) left too few of the catalogue."""
    if not filtered and not seen:
        return
    sizes = recs.groupby(key).size()
    short = int((sizes < k).sum()) + (max(asked - len(sizes), 0) if asked is not None else 0)
    if short:
        total = asked if asked is not None else len(sizes)
        causes = (["the items already seen (--include-seen lists them too)"] if seen else []) + \
            (["the filters (--items-file, --exclude-file, --rule)"] if filtered else [])
        print(f"contrec: note: {short:,} of {total:,} lists hold fewer than {k} items: "
              f"{' and '.join(causes)} leave too few", file=sys.stderr)


def _id_frame(path_text: str, flag: str) -> "Any":
    """A list file (one id per line) or a CSV with named columns, as a frame of strings."""
    path = Path(path_text)
    frame = read_text_csv(path_text, f"{flag} {path}", what="CSV or list file", header=None, sep=",")
    first = [str(v).strip().lower() for v in frame.iloc[0]]
    if "item" in first:  # a header line names the columns
        frame = frame.iloc[1:].set_axis(first, axis=1)
    else:
        frame = frame.set_axis(["item"] if frame.shape[1] == 1 else ["user", "item", *frame.columns[2:]], axis=1)
    if frame.empty:
        raise ConfigError(f"{flag} {path}: lists no item ids")
    return frame


def _serving_rule(text: str) -> Any:
    """``--rule``: the rule text, or the rule in a .json/.yaml file (read as data, never run)."""
    if Path(text).suffix.lower() in (".json", ".yaml", ".yml"):
        from contrec.rules import load_rule

        return load_rule(text)[0]
    return text


def _item_list(path_text: str, flag: str) -> list[str]:
    frame = _id_frame(path_text, flag)
    return [v.strip() for v in frame["item"].tolist() if v.strip()]


def _exclusions(path_text: str) -> "Any":
    """Everyone's (an item column alone) or per-user (user and item columns) exclusions."""
    frame = _id_frame(path_text, "--exclude-file")
    if "user" in frame.columns:
        return frame[["user", "item"]].apply(lambda c: c.str.strip())
    return [v.strip() for v in frame["item"].tolist() if v.strip()]


def _histories(args: argparse.Namespace) -> dict[str, list[str]]:
    if args.history is not None:
        items = [i.strip() for i in args.history.split(",") if i.strip()]
        if not items:
            raise ConfigError("--history is empty; give comma-separated item ids")
        return {"history": items}
    path = Path(args.histories_file)
    frame = read_text_csv(str(path), str(path), what="readable CSV")
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from contrec.data.interactions import Interactions
    from contrec.data.readers import counted
    from contrec.evaluation import evaluate
    from contrec.models.loading import load

    check_output(args.output, args.model, args.test, args.item_attributes)
    model = load(args.model)
    # unknown users: an error, or dropped with a warning that counts them (--drop-unknown); unknown items
    # stay in the test data as relevant items the model cannot retrieve (misses), as in every other path
    test = read_for_model(args, args.test, model, args.model, users=model.users_, items=model.items_,
                          unknown="drop" if args.drop_unknown else "error", unknown_items="extend")
    train = Interactions(model.seen_, model.users_, model.items_)
    table = evaluate(model, train, test, k=args.k, overlap="drop" if args.drop_overlap else "error")
    dropped = table.attrs["n_overlap_dropped"]
    log.info("evaluated %s on %s; %d of them are on items the model does not know (counted as misses)%s",
             counted(table.attrs["n_users"], "user"), counted(len(test), "test row"),
             table.attrs["n_unknown_item_positives"],
             f"; dropped {counted(dropped, 'row')} the model already knew" if dropped else "")
    if args.output:
        write_csv(table, args.output)
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


def cmd_split(args: argparse.Namespace) -> int:
    from contrec.data.splits import split_random, split_temporal

    if Path(args.train_out).resolve() == Path(args.test_out).resolve():
        raise ConfigError(f"--train-out and --test-out are the same file ({args.test_out}); name two files")
    for out in (args.train_out, args.test_out):
        check_output(out, args.data, args.item_attributes)
    data = read_data(args, args.data)
    if args.temporal:
        train, test = split_temporal(data, test_size=args.test_size)
    else:
        train, test = split_random(data, test_size=args.test_size, seed=args.seed)
    if len(test) == 0:  # an empty test file only fails later, in evaluate
        most = int(np.median(data.user_counts()))
        raise DataError(f"{Path(args.data).name}: --test-size {args.test_size:g} holds out nothing: every user has too "
                        f"few positives (half of them have ≤ {most}); hold out a count per user instead "
                        "(--test-size 1: leave-one-out)")
    write_csv(train.to_frame(), args.train_out)
    write_csv(test.to_frame(), args.test_out)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
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
        if locate_movielens(name, args.data_dir) is None:  # a local copy is used as it is: nothing to download
            log.info("%s: ~%d MB archive from %s", name, info.archive_mb, info.url)
        folder = fetch_movielens(name, args.data_dir, verify=not args.no_verify)
        print(f"{name}: {folder}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from contrec.cli.demo import run_demo

    run_demo(dataset=args.dataset, seed=args.seed, data_dir=args.data_dir, n_users=args.show_users,
             threads=args.threads, verbose=not args.quiet)
    return 0


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def seeds(text: str) -> "int | list[int]":
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count (3) or a list (0,1,2), got {text!r}") from None


def cmd_compare(args: argparse.Namespace) -> int:
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
            "weight": args.weight, "names": args.names, "encoding": args.encoding,
            "duplicates": args.duplicates}.items() if v is not None}
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
                     threads=args.threads, workers=args.workers, search=args.search, device=args.device,
                     precision=args.precision, positive_weights=args.positive_weights, out=args.out,
                     data_dir=args.data_dir, progress=not args.quiet,
                     command=command)
    print(results_table(result))
    print(f"\nbest on {result.config.primary}: {result.best}; report: {Path(args.out) / 'report.md'} "
          f"(and report.html, results.csv, per_user.npz, plots, manifest.json)")
    return 0
