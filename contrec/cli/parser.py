"""The argument parser: one-line usage errors, every option's help ending with its default.

Defaults and choice lists come from the model's signature, the configs and the registries
(samplers, similarities, encoder presets, baselines), never retyped here.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from contrec.cli.commands import (cmd_compare, cmd_datasets, cmd_demo, cmd_evaluate, cmd_recommend, cmd_split,
                                  seeds)
from contrec.cli.vectors import cmd_export, cmd_score
from contrec.cli.fit import cmd_fit
from contrec.cli.options import (READ_DEFAULTS, THREADS_HELP, WEIGHT_HELP, add_read_options, int_list,
                                 share_or_count, signature_default)
from contrec.data.interactions import read_interactions
from contrec.data.readers import DUPLICATE_POLICIES

__all__ = ["build_parser"]

DATA_HELP = "interaction file (.csv, .tsv, .dat, .parquet; gzip, bzip2, xz, zip and zstd compressed too)"


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
    """A ContrastiveRecommender constructor default."""
    from contrec.models.contrastive import ContrastiveRecommender

    return signature_default(ContrastiveRecommender, name)


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
    """The whole command line: one sub-parser per command."""
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

    fit = command("fit", cmd_fit, "train a model on an interaction file and save it (or update one: --from)")
    _fit_parser(fit)
    _fit_defaults(fit)
    _recommend_parser(command("recommend", cmd_recommend, "top-k recommendations from a saved model"))
    _export_parser(command("export", cmd_export, "write a model's user and item vectors for a vector database"))
    _score_parser(command("score", cmd_score, "score given (user, item) pairs with a saved model (re-ranking)"))
    _evaluate_parser(command("evaluate", cmd_evaluate, "full-ranking metrics of a saved model on a held-out file"))
    _split_parser(command("split", cmd_split, "split an interaction file per user into train and test CSVs"))
    _datasets_parser(command("datasets", cmd_datasets, "list or download known datasets (MovieLens)"))
    _demo_parser(command("demo", cmd_demo, "fit ml-100k, compare with popularity, show recommendations with titles"))
    _compare_parser(command("compare", cmd_compare, "compare negative samplers and baselines: tuned, several seeds, "
                            "significance tests, report with plots"))
    return parser


def _names(registry: Any) -> str:
    return ", ".join(registry)


def _fit_parser(p: argparse.ArgumentParser) -> None:
    from contrec.nn.encoders import ENCODER_PRESETS
    from contrec.nn.losses import OBJECTIVES
    from contrec.nn.similarity import SIMILARITIES
    from contrec.nn.towers import ITEM_TOWERS, POOLINGS, USER_TOWERS
    from contrec.samplers import SAMPLERS
    from contrec.training.config import OPTIMIZERS, SERVE_FROM

    p.add_argument("data", help=DATA_HELP)
    p.add_argument("-o", "--output", required=True, help="model file to write")
    add_read_options(p)
    p.add_argument("--model", default="contrec", metavar="NAME",
                   help="what to fit: contrec (the contrastive model: the flags below) or a baseline — popularity, "
                        "als, bpr, itemknn, ease — e.g. the winner of `contrec compare`, with its settings in "
                        "--model-params; every model file serves recommend, evaluate, export and score alike")
    p.add_argument("--model-params", metavar="JSON",
                   help="a baseline's settings as JSON, e.g. '{\"factors\": 128, \"regularization\": 30}' "
                        "(its constructor's parameters; the rest keep their defaults)")
    p.add_argument("--attribute-items", action="store_true",
                   help="the catalogue also holds every item of --item-attributes that has no interaction (new "
                        "items: with --encoder features they are served from their attributes)")
    g = p.add_argument_group("model")
    g.add_argument("--dim", type=int, default=_model_default("dim"), help="embedding size of both towers")
    g.add_argument("--similarity", default=_model_default("similarity"),
                   help=f"similarity kernel: {_names(SIMILARITIES)}")
    kernels_tau = ", ".join(f"{name} {SIMILARITIES.create(name).default_temperature:g}" for name in SIMILARITIES)
    g.add_argument("--temperature", type=float, default=_model_default("temperature"),
                   help=f"τ: logits are similarity / τ (default: the kernel's own: {kernels_tau})")
    g.add_argument("--learn-temperature", action="store_true",
                   help="train τ with the towers (bounded log scale), starting from --temperature")
    g.add_argument("--sampler", default=_model_default("sampler"), help=f"negative sampler: {_names(SAMPLERS)}")
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
    g.add_argument("--encoder", help=f"tower preset: {_names(ENCODER_PRESETS)} (the flags below override it)")
    g.add_argument("--similarity-params", help="similarity parameters as JSON, e.g. '{\"weight\": 0.3}' for "
                                               "kernel-mixture, '{\"max_norm\": null}' to free the norms of dot, "
                                               "gaussian and kernel-mixture (default: the unit ball)")
    g.add_argument("--user-tower", choices=("auto", *USER_TOWERS), help="auto (default): id, or history when it "
                   "is over 3%% better on the fit's validation carve; history: users are pooled item vectors "
                   "(enables recommend --history for new users); simplex: gated ID + history; graph: LightGCN")
    g.add_argument("--pooling", choices=POOLINGS, help="how the history tower pools a user's items")
    g.add_argument("--history-dropout", type=float, help="share of history items dropped per training step")
    g.add_argument("--history-user-id", action="store_true", help="add a user ID vector to the history tower")
    g.add_argument("--history-cap", type=int, help="while training, a longer history is a random sample of this "
                                                   "many items (0 = never)")
    g.add_argument("--graph-layers", type=int, help="propagation layers of a graph tower (LightGCN)")
    g.add_argument("--item-tower", choices=ITEM_TOWERS, help="features: ID + attribute tokens (cold items); "
                                                             "graph: LightGCN")
    g.add_argument("--item-features", help="attribute columns for the feature tower, comma-separated "
                                           "(default: all but free text)")
    g.add_argument("--id-dropout", type=float, help="share of rows whose item ID vector the feature tower drops")
    g.add_argument("--projection", type=int, help="hidden size of an MLP projection head (0 = none)")
    g.add_argument("--init", choices=("random", "spectral"),
                   help="start of the ID/graph tables: random, or the interaction graph's top singular vectors")
    g.add_argument("--serve-from", choices=SERVE_FROM, help="retrieve with the head or the tower output")
    g.add_argument("--objective", choices=OBJECTIVES,
                   help="the loss over the same candidates: sampled-softmax InfoNCE or a pairwise loss")
    g.add_argument("--margin", type=float, help="triplet margin")
    g.add_argument("--ssl-weight", type=float, help="weight of the history-view SSL loss (history tower)")
    _training_options(p, OPTIMIZERS)
    _say_model_defaults(p)


def _training_options(p: argparse.ArgumentParser, optimizers: tuple[str, ...]) -> None:
    from contrec.training.config import LR_SCHEDULES
    from contrec.training.weights import POSITIVE_WEIGHTS

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=_model_default("epochs"),
                   help="passes over the training positives (the most, with --validation-size)")
    g.add_argument("--batch-size", type=int, default=_model_default("batch_size"), help="positives per step")
    g.add_argument("--lr", type=float, default=_model_default("lr"), help="Adam learning rate")
    g.add_argument("--optimizer", choices=optimizers,
                   help="adam (default) or sparse-adam: lazy row-wise updates of the embedding tables, "
                        "faster for 100k+ users/items")
    g.add_argument("--patience", type=int, default=_model_default("patience"),
                   help="with --validation-size: stop after this many epochs without a better validation NDCG")
    g.add_argument("--validation-size", type=float, default=_model_default("validation_size"),
                   help="hold out this share of each user's positives to choose the number of epochs by early "
                        "stopping; the saved model is then trained on every positive for that many (0 = no "
                        "carve: train --epochs epochs)")
    g.add_argument("--no-refit", dest="refit", action="store_false",
                   help="with --validation-size, save the early-stopped model instead of training on every "
                        "positive (its validation positives stay known: never recommended)")
    g.add_argument("--positive-weights", choices=POSITIVE_WEIGHTS, default=_model_default("positive_weights"),
                   help="how --weight counts: none (every positive once per epoch), or positives drawn in "
                        "proportion to log1p, linear or capped (95th percentile) weight")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=_model_default("lr_schedule"),
                   help="learning rate over the run: constant, or decaying to 0 (linear, cosine)")
    g.add_argument("--seed", type=int, default=_model_default("seed"),
                   help="random seed: the same seed, data and threads give the same model on CPU")
    g.add_argument("--threads", type=int, help=THREADS_HELP)
    g.add_argument("--device", default=_model_default("device"),
                   help="where the towers train: cpu (default), cuda, cuda:N, mps, or auto (a GPU when one is "
                        "visible); the saved model is the same file either way")
    g.add_argument("--precision", choices=("float32", "bfloat16"), default=_model_default("precision"),
                   help="bfloat16: the softmax's score matmuls in bfloat16 (cosine/dot; faster on CPUs with "
                        "AVX512-BF16 and on GPUs)")
    g.add_argument("--checkpoint", help="write a training checkpoint here at every epoch end (atomic; no pickle)")
    g.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every this many steps (default: epoch ends only)")
    g.add_argument("--resume", help="continue from this checkpoint (same data and settings)")
    g = p.add_argument_group("updating a saved model with new interactions (docs/serving.md)")
    g.add_argument("--from", dest="from_model", metavar="MODEL",
                   help="continue this saved model on the data file's new interactions: new users and items join, "
                        "the towers carry over; the model keeps its own settings")
    g.add_argument("--train-on", choices=("union", "new"), default="union",
                   help="with --from: train on the model's known positives plus the new ones, or the new ones only")
    g.add_argument("--update-epochs", type=int, metavar="N",
                   help="with --from: epochs of the update (default: a quarter of the first fit's, at least 2)")
    g = p.add_argument_group("several processes (torch.distributed DDP; see docs/scaling.md)")
    g.add_argument("--distributed", action="store_true",
                   help="train with --nproc-per-node processes on this machine (gloo); under torchrun "
                        "(`torchrun --nproc-per-node N -m contrec fit ...`) the processes are torchrun's")
    g.add_argument("--nproc-per-node", type=int, default=2, metavar="N",
                   help="processes for --distributed (default 2); --batch-size and --n-negatives are per process")


def _recommend_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file written by contrec fit")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", help="comma-separated user ids (ids that contain a comma: --users-file)")
    who.add_argument("--users-file", help="file with one user id per line")
    who.add_argument("--all-users", action="store_true", help="every user known to the model")
    who.add_argument("--history", help="a new user's item ids, comma-separated (needs a history-tower model)")
    who.add_argument("--histories-file", help="CSV with columns query,item: one list per query id (new users)")
    from contrec.serving.recommender import FactorRecommender

    p.add_argument("-k", type=int, default=signature_default(FactorRecommender.recommend, "k"), help="items per user")
    p.add_argument("--include-seen", action="store_true", help="do not filter items seen in training")
    p.add_argument("--items-file", help="allow-list: only these items may be recommended (one item id per line, "
                                        "or a CSV with an item column)")
    p.add_argument("--exclude-file", help="items never recommended: one item id per line / an item column "
                                          "(for everyone), or a CSV with user,item columns (per user)")
    p.add_argument("--rule", help="a domain rule that must hold between every item of the user's history and a "
                                  "recommended one, e.g. 'never_same(genres)', 'differ(language)' or the plain filter "
                                  "'not has(genres, Horror)' (or a .json/.yaml rule file)")
    p.add_argument("--skip-unknown", action="store_true", help="skip user ids the model does not know")
    p.add_argument("--attributes", action="store_true", help="add item attributes (e.g. title) as columns")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")


def _fit_defaults(p: argparse.ArgumentParser) -> None:
    """Remember every flag's default, so `contrec fit --from` can tell a setting that was given."""
    p.set_defaults(fit_defaults={a.dest: a.default for a in p._actions if a.dest != "help"})


def _export_parser(p: argparse.ArgumentParser) -> None:
    from contrec.serving.vectors import EXPORT_FORMATS

    p.add_argument("model", help="model file written by contrec fit")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="parquet",
                   help="parquet: users.parquet / items.parquet (id, vector); npy: *_vectors.npy + *_ids.txt")
    p.add_argument("-o", "--out", required=True, help="folder to write into (created; files replaced atomically)")


def _score_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file written by contrec fit")
    p.add_argument("pairs", help="CSV of (user, item) pairs to score")
    p.add_argument("--user", default=READ_DEFAULTS["user"], help="user id column of the pairs file")
    p.add_argument("--item", default=READ_DEFAULTS["item"], help="item id column of the pairs file")
    p.add_argument("--skip-unknown", action="store_true", help="score pairs with an unknown id NaN instead of failing")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")


def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file written by contrec fit")
    p.add_argument("test", help="held-out interactions (same columns options as fit)")
    add_read_options(p)
    from contrec.evaluation import evaluate

    ks = list(signature_default(evaluate, "k"))
    p.add_argument("-k", type=int_list, default=ks,
                   help=f"cutoffs, comma-separated (default: {','.join(map(str, ks))})")
    p.add_argument("--drop-unknown", action="store_true",
                   help="drop test rows of users the model does not know (default: error); test items the "
                        "model does not know are always kept and count as misses")
    p.add_argument("--drop-overlap", action="store_true",
                   help="drop test pairs the model already knows (default: refuse them; they can never be "
                        "recommended)")
    p.add_argument("-o", "--output", help="write the tidy metrics table as CSV")
    p.add_argument("--diagnostics", action="store_true",
                   help="also print alignment, uniformity, effective rank, norm-popularity correlation")


def _split_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help=DATA_HELP)
    add_read_options(p)
    from contrec.data.splits import split_random

    p.add_argument("--test-size", type=share_or_count, default=signature_default(split_random, "test_size"),
                   help="share of each user's positives held out, or a count per user (1: leave-one-out)")
    p.add_argument("--seed", type=int, default=signature_default(split_random, "seed"),
                   help="random seed of the per-user split")
    p.add_argument("--temporal", action="store_true", help="hold out each user's latest positives (needs --timestamp)")
    p.add_argument("--train-out", required=True, help="CSV to write the training part to")
    p.add_argument("--test-out", required=True, help="CSV to write the held-out part to")


def _datasets_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "fetch"],
                   help="list the known datasets, or fetch (download and verify) some")
    p.add_argument("name", nargs="*", help="dataset names for fetch")
    p.add_argument("--data-dir", help="folder holding <name>/ (default: $CONTREC_DATA, then the cache)")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")


def _demo_parser(p: argparse.ArgumentParser) -> None:
    from contrec.cli.demo import run_demo

    p.add_argument("--dataset", default=signature_default(run_demo, "dataset"),
                   help="a known dataset (contrec datasets list)")
    p.add_argument("--seed", type=int, default=signature_default(run_demo, "seed"),
                   help="random seed of the split and the model")
    p.add_argument("--data-dir", help="folder holding <dataset>/ (default: $CONTREC_DATA, then download)")
    p.add_argument("--show-users", type=int, default=signature_default(run_demo, "n_users"),
                   help="users whose recommendations are shown")
    p.add_argument("--threads", type=int, help=THREADS_HELP)


def _compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="experiment file (YAML or TOML, see docs/compare.md); flags override it")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="a known dataset (default: ml-100k): " + ", ".join(_dataset_names()))
    src.add_argument("--data", help="your own interaction file instead of a dataset")
    g = p.add_argument_group("your own file (--data)")
    g.add_argument("--user", help="user id column (default: user)")
    g.add_argument("--item", help="item id column (default: item)")
    g.add_argument("--rating", help="rating column; ratings ≥ --min-rating are positives")
    g.add_argument("--timestamp", help="time column (needed for --split temporal)")
    g.add_argument("--weight", help=WEIGHT_HELP)
    g.add_argument("--names", help="comma-separated column names for a file without a header line")
    g.add_argument("--sep", help="delimiter (default: detected)")
    g.add_argument("--encoding", help="text encoding (default: utf-8)")
    g.add_argument("--duplicates", choices=DUPLICATE_POLICIES,
                   help="policy for repeated (user, item) rows (default: "
                        f"{signature_default(read_interactions, 'duplicates')})")
    g.add_argument("--item-attributes", help="CSV of item attributes for domain-rule samplers")
    g.add_argument("--item-attributes-id", help="its item id column (default: the --item column name)")
    g.add_argument("--attributes-sep", help="delimiter of the attributes file (default: detected from its header)")
    _contestant_options(p)
    p.add_argument("--data-dir", help="folder holding <dataset>/ (default: $CONTREC_DATA, then download)")
    p.add_argument("--out", required=True, help="report folder; finished fits are cached there and reused")


def _contestant_options(p: argparse.ArgumentParser) -> None:
    from contrec.evaluation.protocol import SPLITS, EvaluationProtocol
    from contrec.experiments import config as spec  # compare's defaults are its config's, never retyped
    from contrec.models.baselines import BASELINES
    from contrec.nn.encoders import ENCODER_PRESETS
    from contrec.nn.losses import OBJECTIVES
    from contrec.nn.similarity import SIMILARITIES
    from contrec.samplers import SAMPLERS
    from contrec.training.weights import POSITIVE_WEIGHTS

    def default(field: str) -> Any:
        return spec.ExperimentConfig.__dataclass_fields__[field].default

    named = {kind: ",".join(c[kind] for c in spec.DEFAULT_CONTESTANTS if kind in c) for kind in ("sampler", "baseline")}
    g = p.add_argument_group("contestants and protocol", "none named (and none in --config): --samplers "
                             f"{named['sampler']} --baselines {named['baseline']}")
    g.add_argument("--samplers", help="contrec contestants by sampler, comma-separated: " + _names(SAMPLERS))
    g.add_argument("--similarities", help="contrec contestants by similarity (uniform sampler), comma-separated: "
                   + _names(SIMILARITIES))
    g.add_argument("--encoders", help="contrec contestants by towers, comma-separated: " + _names(ENCODER_PRESETS))
    g.add_argument("--objectives", help="contrec contestants by loss, comma-separated: " + _names(OBJECTIVES))
    g.add_argument("--baselines", help="baselines, comma-separated: " + _names(BASELINES))
    g.add_argument("--seeds", type=seeds,
                   help=f"number of seeds (3) or a list (0,1,2); default {len(default('seeds'))}")
    g.add_argument("--no-tune", action="store_true", help="skip tuning: every contestant runs its defaults")
    g.add_argument("--trials", type=int, help="tuning budget: settings tried per contestant and seed "
                   f"(default {spec.TuningSpec().trials})")
    protocol = EvaluationProtocol()
    g.add_argument("--split", choices=SPLITS, help=f"per-user split (default: {protocol.split})")
    g.add_argument("--test-size", type=float, help=f"held-out share per user (default {protocol.test_size:g})")
    g.add_argument("--min-rating", type=float, help=f"ratings ≥ this are positives (default {protocol.min_rating:g})")
    g.add_argument("-k", type=int_list, help=f"cutoffs, comma-separated (default: {','.join(map(str, protocol.k))})")
    g.add_argument("--primary",
                   help=f"metric@k that ranks contestants and picks tuning trials (default {default('primary')})")
    g.add_argument("--threads", type=int, help="torch, FAISS and BLAS threads for every fit, the same for every "
                   f"contestant (default {default('threads')})")
    g.add_argument("--workers", type=int, help="processes fitting independent cells side by side, --threads each "
                   "(default: as many as the free CPUs hold); the results do not depend on it")
    g.add_argument("--device", help="where contrec's fits train: cpu (default), cuda, cuda:N, mps or auto; baselines "
                   "and retrieval stay on the CPU, and off the CPU one worker drives the device unless --workers says")
    g.add_argument("--precision", choices=("float32", "bfloat16"),
                   help="every contrec contestant's score matmuls: bfloat16 fits ~1.4x faster on CPUs with "
                        "AVX512-BF16 (cosine/dot only; default: float32, or what the config file says)")
    g.add_argument("--positive-weights", choices=POSITIVE_WEIGHTS,
                   help="how every contrec contestant counts --weight: none (every positive alike: the default, or "
                        "what the config file says), or positives drawn in proportion to log1p, linear or capped "
                        "weight")
    g.add_argument("--search", choices=("halving", "full"),
                   help="tuning search: halving (default: contrec's settings train a few epochs, the best third "
                        "continue) or full (every setting trains to the end)")


def _dataset_names() -> list[str]:
    from contrec.data.movielens import dataset_names

    return dataset_names()
