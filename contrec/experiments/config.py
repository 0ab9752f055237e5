"""The description of a comparison: data, protocol, tuning budget, seeds and contestants.

A comparison is fully described by an `ExperimentConfig`, which can be written as a YAML
or TOML file (see ``docs/compare.md``); the ``contrec compare`` flags are a shortcut that
builds one. Every field is validated when the config is built, so a typo fails at once
with the key's name instead of after twenty minutes of training.

Example:
    >>> config = ExperimentConfig.from_dict({
    ...     "dataset": "ml-100k", "seeds": 2,
    ...     "contestants": [{"sampler": "uniform"}, {"baseline": "ease"}]})
    >>> [c.name for c in config.contestants], config.seeds
    (['contrec-uniform', 'ease'], (0, 1))
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from contrec.errors import ConfigError, error_line
from contrec.evaluation.protocol import EvaluationProtocol
from contrec.experiments.spaces import (BASELINE_DEFAULTS, SAMPLER_DEFAULTS, SEARCH_SPACES, VARIANT_KINDS,
                                        VARIANT_SPACES, WEIGHTED_BASELINES)
from contrec.models.baselines import BASELINES

__all__ = ["DataSpec", "TuningSpec", "Contestant", "ExperimentConfig", "load_config", "build_config",
           "SAMPLER_DEFAULTS", "SEARCH_SPACES", "BASELINE_DEFAULTS", "VARIANT_SPACES",
           "variant_contestant", "DEFAULT_CONTESTANTS"]

def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _take(mapping: Mapping[str, Any], allowed: set[str], where: str, hint: str = "") -> dict[str, Any]:
    if not isinstance(mapping, Mapping):
        raise _fail(where, f"expected a mapping of settings (got {type(mapping).__name__})")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}{hint}")
    return dict(mapping)


@dataclass(frozen=True)
class DataSpec:
    """Where the interactions come from: a known dataset name or a file with its columns."""

    dataset: str | None = "ml-100k"
    path: str | None = None
    user: str = "user"
    item: str = "item"
    rating: str | None = None
    timestamp: str | None = None
    sep: str | None = None
    item_attributes: str | None = None
    item_attributes_id: str | None = None
    attributes_sep: str | None = None
    weight: str | None = None
    names: list[str] | None = None
    encoding: str | None = None  # None: utf-8 (a UTF-16 file with its byte-order mark reads too)
    duplicates: str | None = None  # None: read_interactions' default, the latest row of a repeated pair

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.path is None):
            raise ConfigError("data: give either a dataset name (dataset: ml-100k) or a file (data: {path: …})")
        if isinstance(self.names, str):  # "user,item,weight" as on the command line
            object.__setattr__(self, "names", [n.strip() for n in self.names.split(",") if n.strip()])
        if self.names is not None and (not isinstance(self.names, list) or not self.names
                                       or not all(isinstance(n, str) and n for n in self.names)):
            raise ConfigError(f"data: names must be a list of column names for a file without a header "
                              f"(got {self.names!r})")

    @property
    def label(self) -> str:
        return self.dataset or Path(self.path or "").name


@dataclass(frozen=True)
class TuningSpec:
    """The validation budget every contestant gets: ``trials`` settings tried on a carve of train.

    ``search``: ``"halving"`` (contrec's settings race over epochs: all train ``min_epochs``, the best
    1/``eta`` continue, `contrec.experiments.search`) or ``"full"`` (every setting trains to the end).
    """

    enabled: bool = True
    trials: int = 6
    validation_size: float = 0.2
    seed: int = 0
    search: str = "halving"
    eta: int = 3
    min_epochs: int = 3

    def __post_init__(self) -> None:
        from contrec.experiments.search import SEARCHES

        if not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"tuning.trials must be an integer ≥ 1 (got {self.trials!r})")
        if self.search not in SEARCHES:
            raise ConfigError(f"tuning.search must be one of {', '.join(SEARCHES)} (got {self.search!r})")
        for name, low in (("eta", 2), ("min_epochs", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"tuning.{name} must be an integer ≥ {low} (got {value!r})")
        if not 0 < float(self.validation_size) < 1:
            raise ConfigError(f"tuning.validation_size must be a fraction in (0, 1) (got {self.validation_size!r})")


@dataclass(frozen=True)
class Contestant:
    """One row of the comparison: contrec with a sampler, or a baseline.

    ``model`` is ``"contrec"`` or a baseline name; ``params`` go to its constructor (for
    contrec, ``sampler`` and ``sampler_params`` among them); ``space`` maps a parameter
    (``sampler_params.alpha`` for a sampler's) to the values tuning may try.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    space: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def is_contrec(self) -> bool:
        return self.model == "contrec"

    @property
    def sampler(self) -> str | None:
        return self.params.get("sampler") if self.is_contrec else None


def contrec_contestant(sampler: str, name: str | None = None, params: Mapping[str, Any] | None = None,
                       space: Mapping[str, list[Any]] | None = None) -> Contestant:
    """contrec with ``sampler`` and the comparison's default settings for it."""
    from contrec.samplers import SAMPLERS

    SAMPLERS.key(sampler)
    merged: dict[str, Any] = {"sampler": sampler, "sampler_params": copy.deepcopy(SAMPLER_DEFAULTS.get(sampler, {}))}
    for key, value in (params or {}).items():
        if key == "sampler_params" and isinstance(value, Mapping):
            merged["sampler_params"].update(copy.deepcopy(dict(value)))
        else:
            merged[key] = copy.deepcopy(value)
    if merged["sampler"] != sampler:
        raise ConfigError(f"contestant {name or sampler!r}: params.sampler contradicts sampler: {sampler}")
    chosen_space = SEARCH_SPACES.get(f"contrec:{sampler}", SEARCH_SPACES["contrec"]) if space is None else space
    name = name or f"contrec-{sampler}"  # distinct from the popularity *baseline*
    return Contestant(name, "contrec", merged, _check_space(dict(chosen_space), name))


def variant_contestant(kind: str, value: str, name: str | None = None, params: Mapping[str, Any] | None = None,
                       space: Mapping[str, list[Any]] | None = None) -> Contestant:
    """contrec (uniform sampler) with one similarity, encoder preset or objective, named ``contrec-<value>``."""
    from contrec.nn.encoders import ENCODER_PRESETS
    from contrec.nn.losses import OBJECTIVES
    from contrec.nn.similarity import SIMILARITIES

    choices = {"similarity": list(SIMILARITIES), "encoder": list(ENCODER_PRESETS), "objective": list(OBJECTIVES)}[kind]
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    setting = dict(ENCODER_PRESETS[value]) if kind == "encoder" else {kind: value}
    merged = {**setting, **copy.deepcopy(dict(params or {}))}
    chosen_space = VARIANT_SPACES.get(f"{kind}:{value}", VARIANT_SPACES[kind]) if space is None else space
    contestant = contrec_contestant("uniform", name or f"contrec-{value}", merged, chosen_space)
    return contestant


def baseline_contestant(baseline: str, name: str | None = None, params: Mapping[str, Any] | None = None,
                        space: Mapping[str, list[Any]] | None = None, weighted: bool = False) -> Contestant:
    """A baseline (popularity, itemknn, als, bpr, ease) with its default space; on ``weighted`` data, with
    the defaults and search of `WEIGHTED_BASELINES` as well (how ALS's confidence uses the weights)."""
    key = BASELINES.key(baseline)
    extra = WEIGHTED_BASELINES.get(key, {}) if weighted else {}
    chosen_space = {**SEARCH_SPACES[key], **extra.get("space", {})} if space is None else space
    merged = {**copy.deepcopy(BASELINE_DEFAULTS.get(key, {})), **copy.deepcopy(extra.get("default", {})),
              **copy.deepcopy(dict(params or {}))}
    return Contestant(name or key, key, merged, _check_space(dict(chosen_space), name or key))


def _check_space(space: dict[str, Any], name: str) -> dict[str, list[Any]]:
    for key, values in space.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"contestant {name!r}: space.{key} must be a non-empty list of values")
    return space


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole comparison. Build with `from_dict`, `load_config` or the constructor."""

    data: DataSpec
    contestants: tuple[Contestant, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    protocol: EvaluationProtocol = EvaluationProtocol()
    tuning: TuningSpec = TuningSpec()
    primary: str = "ndcg@20"
    threads: int | None = 2
    workers: int | None = None  # processes fitting cells side by side; None: as many as the free CPUs hold
    device: str = "cpu"  # where contrec's fits train ("cuda", "auto", …); baselines stay on the CPU

    def __post_init__(self) -> None:
        if not self.contestants:
            raise ConfigError("contestants: name at least one sampler or baseline")
        names = [c.name for c in self.contestants]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"contestants: the name {sorted(dup)[0]!r} is used twice; give each a distinct name")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct integers (got {list(self.seeds)!r})")
        metric, _, k = self.primary.partition("@")
        from contrec.evaluation.metrics import METRICS

        if metric not in METRICS or not k.isdigit() or int(k) not in self.protocol.k:
            raise ConfigError(f"primary must be a metric@k with k in protocol.k {list(self.protocol.k)} "
                              f"(got {self.primary!r}); metrics: {', '.join(METRICS)}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer (got {self.threads!r})")
        if self.workers is not None and (not isinstance(self.workers, int) or isinstance(self.workers, bool)
                                         or self.workers < 1):
            raise ConfigError(f"workers must be a positive integer, or None for as many as the CPUs hold "
                              f"(got {self.workers!r})")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ConfigError(f"device must be a torch device name: 'cpu', 'cuda', 'auto' … (got {self.device!r})")

    @property
    def bfloat16_contestants(self) -> list[str]:
        """Names of the contrec contestants whose score matmuls run in bfloat16 (said by the report and preflight)."""
        return [c.name for c in self.contestants if c.is_contrec and c.params.get("precision") == "bfloat16"]

    @property
    def weight_blind_contestants(self) -> list[str]:
        """Names of the contrec contestants that treat every positive alike (``positive_weights`` unset or
        ``"none"``, and not searched): on weighted data the run says so once and the report names them."""
        return [c.name for c in self.contestants if c.is_contrec and not self.searches(c, "positive_weights")
                and c.params.get("positive_weights", "none") in (None, "none")]

    def searches(self, contestant: Contestant, key: str) -> bool:
        """Whether tuning searches ``key`` for ``contestant`` (in its space, and tuning is on)."""
        return self.tuning.enabled and key in contestant.space

    @property
    def primary_metric(self) -> tuple[str, int]:
        metric, _, k = self.primary.partition("@")
        return metric, int(k)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict that `from_dict` reads back to an equal config."""
        d: dict[str, Any] = {}
        if self.data.path is None:
            d["dataset"] = self.data.dataset
        else:
            d["data"] = {k: v for k, v in asdict(self.data).items() if k != "dataset" and v is not None}
        d["seeds"] = list(self.seeds)
        d["protocol"] = {**asdict(self.protocol), "k": list(self.protocol.k)}
        d["tuning"] = asdict(self.tuning)
        d["primary"] = self.primary
        d["threads"] = self.threads
        d["workers"] = self.workers
        d.update({"device": self.device} if self.device != "cpu" else {})  # a CPU config hashes as it always did
        d["contestants"] = [{"name": c.name, ("sampler" if c.is_contrec else "baseline"):
                             (c.sampler if c.is_contrec else c.model), "params": copy.deepcopy(c.params),
                             "space": copy.deepcopy(c.space)} for c in self.contestants]
        return d

    def hash(self) -> str:
        """SHA-256 of the canonical JSON form (recorded in the manifest)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "config") -> "ExperimentConfig":
        """Build and validate from a dict (a parsed YAML/TOML file); unknown keys are errors."""
        top = _take(raw, {"dataset", "data", "seeds", "protocol", "tuning", "primary", "threads", "workers",
                          "device", "contestants"}, where)
        if "data" in top:
            data_raw = _take(top["data"], set(DataSpec.__dataclass_fields__) - {"dataset"}, f"{where}: data")
            if "dataset" in top:
                raise _fail(where, "give either dataset or data, not both")
            data = DataSpec(dataset=None, **data_raw)
        else:
            data = DataSpec(dataset=str(top.get("dataset", "ml-100k")))
        seeds_raw = top.get("seeds", 3)
        if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
            if seeds_raw < 1:
                raise _fail(where, f"seeds must be ≥ 1 (got {seeds_raw})")
            seeds = tuple(range(seeds_raw))
        elif isinstance(seeds_raw, list) and all(isinstance(s, int) for s in seeds_raw):
            seeds = tuple(seeds_raw)
        else:
            raise _fail(where, f"seeds must be a count or a list of integers (got {seeds_raw!r})")
        proto_raw = _take(top.get("protocol", {}), set(EvaluationProtocol.__dataclass_fields__), f"{where}: protocol")
        if "k" in proto_raw:
            ks = proto_raw["k"]
            proto_raw["k"] = tuple(ks) if isinstance(ks, (list, tuple)) else (ks,)
        protocol = EvaluationProtocol(**proto_raw)
        tuning = TuningSpec(**_take(top.get("tuning", {}), set(TuningSpec.__dataclass_fields__), f"{where}: tuning"))
        contestants_raw = top.get("contestants")
        if not isinstance(contestants_raw, list) or not contestants_raw:
            raise _fail(where, "contestants must be a non-empty list (each with sampler: or baseline:)")
        contestants = []
        for n, entry in enumerate(contestants_raw, 1):
            here = f"{where}: contestants[{n}]"
            if isinstance(entry, str):
                entry = {"baseline": entry} if BASELINES.knows(entry) else {"sampler": entry}
            spec = _take(entry, {"name", "sampler", "baseline", "params", "space", *VARIANT_KINDS}, here,
                         "; a model's own settings go under params (params: {sampler_params: {rule: …}})")
            kinds = [k for k in ("sampler", "baseline", *VARIANT_KINDS) if k in spec]
            if len(kinds) != 1:
                raise _fail(here, "give exactly one of sampler:, baseline:, similarity:, encoder: or objective:")
            kind = kinds[0]
            try:
                if kind in VARIANT_KINDS:
                    contestants.append(variant_contestant(kind, str(spec[kind]), spec.get("name"), spec.get("params"),
                                                          spec.get("space")))
                elif kind == "sampler":
                    contestants.append(contrec_contestant(str(spec[kind]), spec.get("name"), spec.get("params"),
                                                          spec.get("space")))
                else:
                    contestants.append(baseline_contestant(str(spec[kind]), spec.get("name"), spec.get("params"),
                                                           spec.get("space"), weighted=bool(data.weight)))
            except ConfigError as err:
                raise _fail(here, str(err)) from None
        default_primary = f"ndcg@{max(protocol.k)}"
        return cls(data, tuple(contestants), seeds, protocol, tuning, str(top.get("primary", default_primary)),
                   top.get("threads", 2), top.get("workers"), top.get("device", "cpu"))


def load_config(path: "str | Path") -> ExperimentConfig:
    """Read an experiment from a YAML (.yaml/.yml) or TOML (.toml) file.

    Example:
        >>> config = load_config("experiments/ml-100k.yaml")  # doctest: +SKIP
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - YAML and TOML raise their own error types
        first = error_line(err)
        raise ConfigError(f"{file.name}: not valid {'TOML' if file.suffix.lower() == '.toml' else 'YAML'} "
                          f"({first})") from None
    if raw is None:
        raise ConfigError(f"{file.name}: the config file is empty")
    return ExperimentConfig.from_dict(raw, where=file.name)


# Who competes when nobody is named: the samplers that need no item attributes, and the baselines that scale to any
# catalogue — a comparison against popularity alone would flatter contrec (tuned ALS leads it on a play-count log).
# EASE (a dense n_items² solve: 30 s for 15k items on 2 cores) and item-kNN are named with --baselines.
DEFAULT_CONTESTANTS: tuple[dict[str, str], ...] = (
    {"sampler": "uniform"}, {"sampler": "popularity"}, {"sampler": "hard"},
    {"baseline": "popularity"}, {"baseline": "als"}, {"baseline": "bpr"})


def build_config(config: "ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None" = None, *,
                 dataset: str | None = None, data: Mapping[str, Any] | None = None,
                 samplers: Sequence[str] | None = None, baselines: Sequence[str] | None = None,
                 similarities: Sequence[str] | None = None, encoders: Sequence[str] | None = None,
                 objectives: Sequence[str] | None = None, seeds: "int | Sequence[int] | None" = None,
                 tune: bool | None = None, trials: int | None = None,
                 threads: int | None = None, workers: int | None = None, search: str | None = None,
                 device: str | None = None, precision: str | None = None,
                 positive_weights: str | None = None) -> ExperimentConfig:
    """An `ExperimentConfig` from a file, a dict or an existing config, with shortcut overrides.

    ``samplers``/``similarities``/``encoders``/``objectives``/``baselines`` replace the
    contestants (any of them given; none given and none in ``config``: `DEFAULT_CONTESTANTS`);
    ``seeds`` is a count or a list; ``precision`` and ``positive_weights`` become every contrec
    contestant's ``params.precision`` / ``params.positive_weights`` (a contestant's own setting in
    a file, or a search over it, yields to them, as every flag overrides the file).
    """
    if isinstance(config, ExperimentConfig):
        raw = config.to_dict()
    elif isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
    elif config is not None:
        raw = load_config(config).to_dict()
    else:
        raw = {"dataset": "ml-100k", "contestants": []}
    if dataset is not None:
        raw.pop("data", None)
        raw["dataset"] = dataset
    if data is not None:
        raw.pop("dataset", None)
        raw["data"] = dict(data)
    flags = {"sampler": samplers, "similarity": similarities, "encoder": encoders, "objective": objectives,
             "baseline": baselines}
    if any(v is not None for v in flags.values()):
        raw["contestants"] = [{kind: name} for kind, names in flags.items() for name in names or []]
    if not raw.get("contestants"):
        raw["contestants"] = copy.deepcopy(list(DEFAULT_CONTESTANTS))
    for key, value in (("precision", precision), ("positive_weights", positive_weights)):
        if value is not None:
            raw["contestants"] = [_with_param(spec, key, value) for spec in raw["contestants"]]
    if seeds is not None:
        raw["seeds"] = seeds if isinstance(seeds, int) else list(seeds)
    tuning = dict(raw.get("tuning", {}))
    if tune is not None:
        tuning["enabled"] = bool(tune)
    if trials is not None:
        tuning["trials"] = trials
    if search is not None:
        tuning["search"] = search
    raw["tuning"] = tuning
    raw.update({key: value for key, value in (("threads", threads), ("workers", workers), ("device", device))
                if value is not None})
    return ExperimentConfig.from_dict(raw)


# the model's defaults of the settings a flag sets on every contrec contestant: left unsaid, so cells keep their keys
_UNSAID = {"precision": "float32", "positive_weights": "none"}


def _with_param(spec: Any, key: str, value: str) -> Any:
    """A contestant entry of the config-file schema with ``params[key]`` set if it is contrec's (and ``key`` no
    longer searched)."""
    if isinstance(spec, str):  # the short form of an entry, as from_dict reads it
        spec = {"baseline": spec} if BASELINES.knows(spec) else {"sampler": spec}
    if not isinstance(spec, Mapping) or "baseline" in spec:
        return spec
    params = {k: v for k, v in dict(spec.get("params") or {}).items() if k != key}
    out = {**spec, "params": params if value == _UNSAID[key] else {**params, key: value}}
    if isinstance(spec.get("space"), Mapping) and key in spec["space"]:
        out["space"] = {k: v for k, v in spec["space"].items() if k != key}
    return out
