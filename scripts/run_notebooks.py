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
       python scripts/run_notebooks.py --expect-failure [--expect-error TEXT] tests/notebooks/fails.ipynb
"""

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_notebook_outputs  # noqa: E402  (the output check: images, tables, counts 1..N, no lost display)


# evcxr answers a cell (execute_reply, then the "idle" status) before it has forwarded all of the cell's output: the
# last lines of stdout/stderr, often the message of an `Err` that reached a `?`, can arrive just after "idle", and
# nbclient, which stops listening at "idle", drops them. So after each cell the runner keeps listening until the
# kernel has been quiet for LATE_OUTPUT_QUIET_S and adds what arrives for that cell to its outputs.
LATE_OUTPUT_QUIET_S = 0.5


class CellRuntimeError(Exception):
    """A cell that evcxr reported as "ok" but whose output ends on stderr: an `Err` through `?` or a panic."""


async def collect_late_output(client: NotebookClient, cell, cell_index: int, parent_msg_id: str) -> None:
    while True:
        try:
            msg = await ensure_async(client.kc.iopub_channel.get_msg(timeout=LATE_OUTPUT_QUIET_S))
        except queue.Empty:
            return
        if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] != "status":
            client.process_message(msg, cell, cell_index)


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

    async def on_cell_executed(cell, cell_index, execute_reply):
        nonlocal done
        done += 1
        await collect_late_output(client, cell, cell_index, execute_reply["parent_header"]["msg_id"])
        secs = cell_seconds(cell)
        status = execute_reply.get("content", {}).get("status", "?")
        stderr = check_notebook_outputs.ended_on_stderr(cell) if status == "ok" else None
        if stderr is not None:
            status = "error"
        first = (cell.source.strip().splitlines() or [""])[0][:60]
        print(f"  [{done}/{len(code_cells)}] {status:5} {secs if secs is not None else 0:7.1f} s  {first}", flush=True)
        if stderr is not None:
            # Stop here, so the error is reported at the cell that failed, with its message, rather than as a
            # "cannot find value" at the next cell that uses what this one did not define.
            tail = "\n    ".join(stderr.splitlines()[-15:])
            raise CellRuntimeError(
                f"code cell {done} (notebook cell {cell_index}) failed at run time: its output ends on stderr "
                f"(an Err through `?`, or a panic; evcxr reports such a cell as ok):\n  {first}\n  stderr:\n    {tail}"
            )

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
    except CellRuntimeError as e:
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
    ap.add_argument(
        "--expect-error",
        metavar="TEXT",
        help="with --expect-failure: every notebook's error must contain TEXT (tests that the real cause is reported)",
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
        wrong_cause = [r["notebook"] for r in results if args.expect_error and args.expect_error not in (r["error"] or "")]
        if len(failed) == len(results) and not wrong_cause:
            print("run_notebooks: every notebook failed, as expected (cell errors are caught)")
            return 0
        if wrong_cause:
            print(
                f"run_notebooks: {', '.join(wrong_cause)} did not fail with {args.expect_error!r}: the cause is lost",
                file=sys.stderr,
            )
            return 1
        print("run_notebooks: a notebook that must fail passed: cell errors are not being caught", file=sys.stderr)
        return 1
    print(f"run_notebooks: {summary['total_seconds']} s in all; records in {args.out}")
    print(f"notebooks: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
