"""A new user's run on a play-count log that is not MovieLens, end to end through the CLI.

Writes a Last.fm-shaped log (`contrec.data.synthetic_play_log`: 1,892 users, 17,632
artists, 92,834 rows, heavy-tailed play counts) as a headerless, tab-separated file with
CRLF line ends — the shape of ``user_artists.dat`` — then runs, as a user would:

1. ``contrec fit`` without ``--names`` (the one-line error that says the file has no header),
2. ``contrec fit`` with ``--names`` and ``--weight`` (the warning that the weights are ignored),
   then ``contrec recommend --all-users`` (and a count of recommended pairs already in the log: 0),
3. ``contrec split`` + ``contrec evaluate``,
4. ``contrec compare --data … --baselines als,ease`` with contrec's uniform sampler: EASE on a
   17.6k-item catalogue, which used to crash the process.

Every command's exit code, seconds and last stderr line go to
``benchmarks/results/playcount.{json,md}``; the compare report to
``benchmarks/results/compare-playcount/``.

    python benchmarks/playcount.py [--seeds 1] [--trials 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402


def write_log(path: Path, seed: int = 0) -> int:
    from contrec.data.synthetic import synthetic_play_log

    log = synthetic_play_log(seed=seed)
    path.write_bytes(log.to_csv(sep="\t", header=False, index=False, lineterminator="\r\n").encode())
    return len(log)


def _seen_pairs(log: Path, recs: Path) -> int:
    """How many recommended (user, item) pairs were already in the log (must be 0)."""
    import pandas as pd

    given = pd.read_csv(log, sep="\t", header=None, names=["user", "item", "weight"], dtype=str)
    got = pd.read_csv(recs, dtype=str)
    return int(got.merge(given, on=["user", "item"]).shape[0])


def run(step: str, args: list[str]) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "contrec", *args], capture_output=True, text=True)
    err = [line for line in done.stderr.splitlines() if line.strip()]
    row = {"step": step, "command": "contrec " + " ".join(args), "exit_code": done.returncode,
           "seconds": round(time.perf_counter() - t0, 1), "stderr_last": err[-1] if err else "",
           "stderr_lines": len(err), "stdout_tail": done.stdout.strip().splitlines()[-3:]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    report = RESULTS / "compare-playcount"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plays = Path(tmp) / "user_artists.dat"
        n = write_log(plays)
        names = ["--names", "userID,artistID,weight", "--user", "userID", "--item", "artistID"]
        model = str(Path(tmp) / "m.contrec")
        rows.append(run("fit, no --names", ["fit", str(plays), "--user", "userID", "--item", "artistID", "-o", model,
                                            "-q"]))
        rows.append(run("fit", ["fit", str(plays), *names, "--weight", "weight", "-o", model, "-q"]))
        recs = str(Path(tmp) / "recs.csv")
        rows.append(run("recommend", ["recommend", model, "--all-users", "-k", "20", "-o", recs, "-q"]))
        rows[-1]["recommended_pairs_already_in_the_log"] = _seen_pairs(plays, Path(recs))
        train, test = str(Path(tmp) / "train.csv"), str(Path(tmp) / "test.csv")
        rows.append(run("split", ["split", str(plays), *names, "--train-out", train, "--test-out", test, "-q"]))
        rows.append(run("fit train", ["fit", train, "-o", model, "-q"]))
        rows.append(run("evaluate", ["evaluate", model, test, "-k", "20"]))
        rows.append(run("compare", ["compare", "--data", str(plays), *names, "--weight", "weight",
                                    "--samplers", "uniform", "--baselines", "popularity,als,ease",
                                    "--seeds", str(args.seeds), "--trials", str(args.trials), "--out", str(report),
                                    "-q"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "playcount.json").write_text(json.dumps({"rows_in_log": n, "steps": rows}, indent=2))
    lines = [f"Play-count log: {n:,} rows (1,892 users × 17,632 items, headerless TSV, CRLF).", "",
             "| step | exit | seconds | last stderr line |", "|---|---:|---:|---|"]
    lines += [f"| {r['step']} | {r['exit_code']} | {r['seconds']} | {r['stderr_last'].replace('|', '/')[:160]} |"
              for r in rows]
    (RESULTS / "playcount.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
