"""How much of a shapes scene does a model's response get right? (issue 6 diagnosis)

Compares the "In row R, column C there is a SIZE COLOUR KIND." facts (or "There is a SIZE COLOUR KIND in row R,
column C.") of each held-out response with the problem's ground-truth trace: precision and recall of the occupied
cells, the accuracy of size, colour and kind on the cells both name, object counts and exact scenes. Chance for the
attributes is 0.5 / 0.25 / 0.33.

Usage: python3 scripts/diagnostics/scene_fact_recall.py RUN_DIR/eval/heldout-stepN.jsonl DATA_DIR/test_problems.jsonl
(the eval file's `uid` indexes the problems file, as `r1lab data synth` writes them).
"""
import json
import re
import sys

FACT = re.compile(r"In row (\d), column (\d) there is a (small|large) (\w+) (\w+)\.")
FACT_ATTR_FIRST = re.compile(r"There is a (small|large) (\w+) (\w+) in row (\d), column (\d)\.")


def scene(text):
    cells = {(m[0], m[1]): (m[2], m[3], m[4]) for m in FACT.findall(text)}
    cells.update({(m[3], m[4]): (m[0], m[1], m[2]) for m in FACT_ATTR_FIRST.findall(text)})
    return cells


def main():
    rows = [json.loads(line) for line in open(sys.argv[1])]
    problems = [json.loads(line) for line in open(sys.argv[2])]
    tp = fp = fn = exact = counts = 0
    attr = [0, 0, 0]
    for r in rows:
        truth = scene(" ".join(problems[r["uid"]]["trace"]["facts"]))
        got = scene(r["response"])
        both = set(truth) & set(got)
        tp, fp, fn = tp + len(both), fp + len(set(got) - set(truth)), fn + len(set(truth) - set(got))
        for cell in both:
            for i in range(3):
                attr[i] += truth[cell][i] == got[cell][i]
        exact += truth == got
        counts += len(truth) == len(got)
    n = len(rows)
    print(f"cells: precision {tp / max(1, tp + fp):.2f} recall {tp / max(1, tp + fn):.2f}")
    print("attributes on cells both name (size, colour, kind): " + ", ".join(f"{a / max(1, tp):.2f}" for a in attr))
    print(f"object count right {counts}/{n}, exact scenes {exact}/{n}, correct answers {sum(r['correct'] for r in rows)}/{n}")


if __name__ == "__main__":
    main()
