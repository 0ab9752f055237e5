"""``contrec export`` (vectors for a vector database) and ``contrec score`` (given pairs, for re-ranking)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contrec.cli.options import check_output, read_text_csv, write_csv
from contrec.cli.reading import columns_for_model
from contrec.errors import DataError


def cmd_export(args: argparse.Namespace) -> int:
    from contrec.models.loading import load
    from contrec.serving.vectors import export_vectors

    model = load(args.model)
    written = export_vectors(model, args.out, args.format)
    print(f"contrec: wrote {len(model.users_):,} user and {len(model.items_):,} item vectors (dim "
          f"{model.vector_dim}, metric {model.vector_metric}): {', '.join(p.name for p in written)} in {args.out}",
          file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from contrec.models.loading import load

    check_output(args.output, args.model, args.pairs)
    path = Path(args.pairs)
    pairs = read_text_csv(args.pairs, str(path), DataError, sep=None, engine="python")
    model = load(args.model)
    user, item = columns_for_model(args, list(pairs.columns), model)
    missing = [c for c in (user, item) if c not in pairs.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(map(str, pairs.columns))}); "
                        "name them with --user / --item")
    if pairs.empty:
        raise DataError(f"{path}: holds a header but no pairs")
    empty = (pairs[user].str.strip() == "") | (pairs[item].str.strip() == "")
    if empty.any():
        raise DataError(f"{path}: row {int(empty.to_numpy().argmax()) + 2}: an empty user or item id")
    try:
        scored = model.score(pairs[user], pairs[item], unknown="nan" if args.skip_unknown else "raise")
    except DataError as err:  # "pair 3: …" → the file's line number
        text = str(err)
        if text.startswith("pair "):
            row, rest = text[5:].split(":", 1)
            raise DataError(f"{path}: line {int(row) + 2}:{rest.replace('unknown=' + repr('nan'), '--skip-unknown')}"
                            ) from None
        raise
    write_csv(scored, args.output)
    return 0
