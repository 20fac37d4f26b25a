"""Executes Rust (evcxr) notebooks headless and keeps the executed copies as records.

After a notebook runs without a cell error, scripts/check_notebook_outputs.py checks its outputs (valid PNG/SVG
images, non-empty tables, execution counts 1..N in order, no display lost to evcxr's one-display-per-kind-per-cell
rule); a problem fails the notebook. Each notebook runs in a
fresh kernel whose working folder is the notebook's own folder (so
`:dep r1lab = { path = ".." }` resolves), one after another, so they all reuse the same warm
evcxr build folder (see scripts/evcxr_kernel.sh). The executed copy, outputs and per-cell
timings included, is written to --out (atomically) whether the run passed or failed, and a
summary.json there lists every notebook's status and times. Exit status 1 if any cell failed.

usage: python scripts/run_notebooks.py [--out artifacts/notebooks] NOTEBOOK.ipynb...
       python scripts/run_notebooks.py --expect-failure tests/notebooks/fails.ipynb
"""

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_notebook_outputs  # noqa: E402  (the output check: images, tables, counts 1..N, no lost display)


def cell_seconds(cell) -> float | None:
    """Seconds from execute_input to execute_reply, as nbclient records them."""
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def write_atomic(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(f.name, path)


def run_one(path: Path, out_dir: Path, kernel: str, timeout: int, startup_timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    done = 0

    def on_cell_executed(cell, cell_index, execute_reply):
        nonlocal done
        done += 1
        secs = cell_seconds(cell)
        status = execute_reply.get("content", {}).get("status", "?")
        first = (cell.source.strip().splitlines() or [""])[0][:60]
        print(f"  [{done}/{len(code_cells)}] {status:5} {secs if secs is not None else 0:7.1f} s  {first}", flush=True)

    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        startup_timeout=startup_timeout,
        record_timing=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_executed=on_cell_executed,
    )
    print(f"{path}: running {len(code_cells)} code cells with kernel {kernel!r}", flush=True)
    start = time.monotonic()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = str(e)
    except (CellTimeoutError, DeadKernelError, RuntimeError, TimeoutError) as e:
        error = f"{type(e).__name__}: {e}"
    seconds = time.monotonic() - start
    if error is None:
        problems = check_notebook_outputs.check(nb)
        if problems:
            error = "output check failed:\n  " + "\n  ".join(problems)
    out_path = out_dir / path.name
    write_atomic(out_path, nb)
    cells = [cell_seconds(c) for c in code_cells]
    result = {
        "notebook": str(path),
        "executed_copy": str(out_path),
        "status": "failed" if error else "passed",
        "seconds": round(seconds, 1),
        "cell_seconds": [round(s, 1) if s is not None else None for s in cells],
        "error": error,
    }
    verdict = "FAILED" if error else "passed"
    print(f"{path}: {verdict} in {seconds:.1f} s; executed copy in {out_path}", flush=True)
    if error:
        print(error, file=sys.stderr, flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("artifacts/notebooks"))
    ap.add_argument("--kernel", default="r1lab")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    ap.add_argument("--startup-timeout", type=int, default=300)
    ap.add_argument(
        "--expect-failure",
        action="store_true",
        help="succeed only if every notebook fails (tests that the runner catches cell errors)",
    )
    args = ap.parse_args()

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = [run_one(p, args.out, args.kernel, args.timeout, args.startup_timeout) for p in sorted(args.notebooks)]
    summary = {"kernel": args.kernel, "total_seconds": round(sum(r["seconds"] for r in results), 1), "notebooks": results}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out, delete=False, suffix=".tmp") as f:
        json.dump(summary, f, indent=2)
    os.replace(f.name, args.out / "summary.json")

    failed = [r["notebook"] for r in results if r["status"] == "failed"]
    if args.expect_failure:
        if len(failed) == len(results):
            print("run_notebooks: every notebook failed, as expected (cell errors are caught)")
            return 0
        print("run_notebooks: a notebook that must fail passed: cell errors are not being caught", file=sys.stderr)
        return 1
    print(f"run_notebooks: {summary['total_seconds']} s in all; records in {args.out}")
    print(f"notebooks: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
