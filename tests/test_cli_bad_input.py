"""The CLI's bad-input matrix: files, flags, model files, config files and domain-rule strings.

Every case must exit with its code (1 for bad input, 2 for a usage error), print exactly one
``contrec: error:`` line naming the problem (no traceback), create no output file and
leave an existing output file byte-for-byte as it was.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest

from contrec.cli import main

from .conftest import SAMPLE_CSV

READ = ["--user", "user_id", "--item", "item_id", "--rating", "rating", "--min-rating", "4"]
FIT = ["--epochs", "1", "--dim", "8", "--n-negatives", "8", "--batch-size", "64", "-q"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("matrix") / "model.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "-o", str(out)]) == 0
    return out


def _write(folder: Path, name: str, content: "str | bytes") -> str:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _attributes(folder: Path) -> str:
    return _write(folder, "attrs.csv", "item_id,genres\n" + "".join(f"i{i:02d},G{i % 3}\n" for i in range(60)))


# (name, builder(folder, model) -> argv without the output flag, output flag, expected code, message)
CASES = [
    # ---- interaction files
    ("missing column", lambda d, m: ["fit", str(SAMPLE_CSV), "--user", "userId"], "-o", 1,
     "missing columns 'userId', 'item'"),
    ("empty file", lambda d, m: ["fit", _write(d, "empty.csv", b"")], "-o", 1, "the file is empty"),
    ("header only", lambda d, m: ["fit", _write(d, "header.csv", "user,item\n")], "-o", 1,
     "has a header but no data rows"),
    ("empty id (NaN)", lambda d, m: ["fit", _write(d, "nan.csv", "user,item\n,a\n")], "-o", 1,
     "line 2: column 'user' is empty"),
    ("non-numeric rating", lambda d, m: ["fit", _write(d, "r.csv", "user,item,r\na,b,x\n"), "--rating", "r"], "-o", 1,
     "value 'x' is not"),
    ("negative weight", lambda d, m: ["fit", _write(d, "w.csv", "user,item,w\na,b,-1\n"), "--weight", "w"], "-o", 1,
     "negative weight"),
    ("not UTF-8", lambda d, m: ["fit", _write(d, "enc.csv", b"user,item\na,\xff\n")], "-o", 1, "not valid utf-8"),
    ("wrong delimiter", lambda d, m: ["fit", _write(d, "semi.csv", "user;item\na;b\n"), "--sep", ","], "-o", 1,
     "seems to be ';'"),
    ("duplicate rows refused", lambda d, m: ["fit", _write(d, "dup.csv", "user,item\na,b\na,b\nc,d\n"),
                                             "--duplicates", "error"], "-o", 1, "duplicate"),
    ("no such file", lambda d, m: ["fit", str(d / "absent.csv")], "-o", 1, "no such file"),
    ("a folder, not a file", lambda d, m: ["fit", str(d)], "-o", 1, "is a directory"),
    ("unknown ids in a test file", lambda d, m: ["evaluate", str(m), _write(d, "t.csv", "user,item\nzz,i01\n")],
     "-o", 1, "user id 'zz' is not in the training data"),
    # ---- flags
    ("dim 0", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--dim", "0"], "-o", 1, "dim must be an integer ≥ 1"),
    ("negative temperature", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--temperature", "-1"], "-o", 1,
     "temperature must be a positive number"),
    ("unknown sampler", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "popular"], "-o", 1,
     "unknown sampler 'popular'"),
    ("rule without domain-rule", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--rule", "disjoint(genres)"], "-o", 1,
     "--rule goes with --sampler domain-rule"),
    ("k 0", lambda d, m: ["recommend", str(m), "--users", "u01", "-k", "0"], "-o", 1, "k must be a positive integer"),
    ("unknown user", lambda d, m: ["recommend", str(m), "--users", "nobody"], "-o", 1,
     "user id 'nobody' is not in the training data"),
    ("not a number", lambda d, m: ["fit", str(SAMPLE_CSV), "--epochs", "many"], "-o", 2, "invalid int value"),
    # ---- model files
    ("truncated model", lambda d, m: ["recommend", _write(d, "cut.contrec", m.read_bytes()[:100]), "--users", "u01"],
     "-o", 1, "not a readable contrec model file"),
    ("a CSV as model", lambda d, m: ["recommend", str(SAMPLE_CSV), "--users", "u01"], "-o", 1, "model file"),
    ("a pickle as model", lambda d, m: ["recommend", _write(d, "evil.contrec", pickle.dumps({"a": 1})),
                                        "--users", "u01"], "-o", 1, "model file"),
    ("a zip with foreign members", lambda d, m: ["recommend", _zip(d), "--users", "u01"], "-o", 1, "model file"),
    ("missing model", lambda d, m: ["recommend", str(d / "none.contrec"), "--users", "u01"], "-o", 1, "none.contrec"),
    ("negative checkpoint cadence", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--checkpoint", str(d / "c.ckpt"),
                                                  "--checkpoint-every", "-1"], "-o", 1,
     "checkpoint_every must be an integer ≥ 0"),
    ("resume from a model file", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--resume", str(m)], "-o", 1,
     "not a training checkpoint"),
    ("resume from nothing", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--resume", str(d / "gone.ckpt")], "-o", 1,
     "gone.ckpt: no such checkpoint"),
    # ---- several processes (checked before any process starts)
    ("distributed, no processes", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--distributed", "--nproc-per-node",
                                                "0"], "-o", 1, "--nproc-per-node must be ≥ 1"),
    ("distributed, missing column", lambda d, m: ["fit", str(SAMPLE_CSV), "--user", "uid", "--distributed"], "-o", 1,
     "missing columns 'uid', 'item'"),
    ("distributed, bad sampler", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "nope", "--distributed"],
     "-o", 1, "unknown sampler 'nope'"),
    # ---- config files (contrec compare --config)
    ("YAML python tag", lambda d, m: ["compare", "--config", _write(d, "evil.yaml", "data: !!python/object/apply:os.system ['echo hi']\n")],
     "--out", 1, "not valid YAML"),
    ("YAML syntax", lambda d, m: ["compare", "--config", _write(d, "bad.yaml", "data: [unclosed\n")], "--out", 1,
     "not valid YAML"),
    ("TOML syntax", lambda d, m: ["compare", "--config", _write(d, "bad.toml", "data = = 1\n")], "--out", 1,
     "not valid TOML"),
    ("config unknown key", lambda d, m: ["compare", "--config", _write(d, "k.yaml", "dataset: ml-100k\nbogus: 1\n")],
     "--out", 1, "unknown key 'bogus'"),
    ("empty config", lambda d, m: ["compare", "--config", _write(d, "e.yaml", "")], "--out", 1,
     "the config file is empty"),
    # ---- domain-rule strings
    ("unbalanced rule", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "domain-rule", "--rule",
                                      "disjoint(genres", "--item-attributes", _attributes(d)], "-o", 1, "rule"),
    ("code as a rule", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "domain-rule", "--rule",
                                     "__import__('os').system('echo hi')", "--item-attributes", _attributes(d)],
     "-o", 1, "cannot parse rule"),
    ("unknown rule op", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "domain-rule", "--rule",
                                      "overlap(genres)", "--item-attributes", _attributes(d)], "-o", 1,
     "unknown rule 'overlap'"),
    ("rule on a missing attribute", lambda d, m: ["fit", str(SAMPLE_CSV), *READ, "--sampler", "domain-rule", "--rule",
                                                  "disjoint(studio)", "--item-attributes", _attributes(d)], "-o", 1,
     "uses attribute 'studio'"),
]


def _zip(folder: Path) -> str:
    path = folder / "foreign.contrec"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("payload.pkl", pickle.dumps([1, 2, 3]))
    return str(path)


def test_the_matrix_has_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name,build,out_flag,code,message", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("output", ["absent", "existing"])
def test_bad_input(tmp_path, model_file, capsys, name, build, out_flag, code, message, output):
    argv = build(tmp_path, model_file)
    out = tmp_path / ("report" if out_flag == "--out" else "out.file")
    if output == "existing":
        if out_flag == "--out":
            out.mkdir()
            (out / "keep.txt").write_text("keep me")
        else:
            out.write_text("keep me")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*argv, out_flag, str(out)]) == code, name
    err = capsys.readouterr().err.strip().splitlines()
    assert not any("Traceback" in line for line in err), err
    errors = [line for line in err if line.startswith("contrec: error:") or line.startswith("contrec ")
              and ": error:" in line]
    assert len(errors) == 1, err
    assert message in errors[0], (name, errors[0])
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, f"{name}: files changed: {set(after) ^ set(before)}"


def test_an_output_never_replaces_an_input_of_the_same_command(tmp_path, model_file, capsys):
    """`contrec split log.csv --train-out log.csv` wrote the training part over the log it split."""
    log = _write(tmp_path, "log.csv", SAMPLE_CSV.read_bytes())
    model = tmp_path / "model.contrec"
    model.write_bytes(model_file.read_bytes())
    pairs = _write(tmp_path, "pairs.csv", "user,item\nu01,i01\n")
    users = _write(tmp_path, "users.txt", "u01\n")
    same_log = str(tmp_path / "sub" / ".." / "log.csv")  # another spelling of the same file
    (tmp_path / "sub").mkdir()
    cases = [
        (["split", log, *READ, "--train-out", same_log, "--test-out", str(tmp_path / "t.csv")], "is also an input"),
        (["split", log, *READ, "--train-out", str(tmp_path / "a.csv"), "--test-out", str(tmp_path / "a.csv")],
         "--train-out and --test-out are the same file"),
        (["fit", log, *READ, *FIT, "-o", log], "log.csv: is also an input of this command"),
        (["fit", log, *READ, "--model", "popularity", "-o", log], "is also an input"),
        (["recommend", str(model), "--users", "u01", "-o", str(model)], "model.contrec: is also an input"),
        (["recommend", str(model), "--users-file", users, "-o", users], "users.txt: is also an input"),
        (["evaluate", str(model), log, *READ, "-o", log], "is also an input"),
        (["score", str(model), pairs, "-o", pairs], "pairs.csv: is also an input"),
    ]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0], (argv, errors)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # updating a model in place stays allowed: it is read before the new file replaces it
    assert main(["fit", log, *READ, "--from", str(model), "-o", str(model), "-q"]) == 0
    assert model.read_bytes() != before[model]
