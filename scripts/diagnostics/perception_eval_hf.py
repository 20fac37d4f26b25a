"""What does a tiny base model read off held-out pictures? (issue 6, the base model)

Scores a checkpoint's `model/` folder (or any tiny-model snapshot) with HF transformers on `base/test_perception.json`
(every perception question about the held-out scenes, lib/data/perception.rs): each question is asked on its own,
right after the picture, and the answer sentence ("The number of red circles is 2.") is teacher-forced; the answer is
right when the model's most likely token at every number position is the true number. Prints, per question family,
the held-out accuracy next to the question prior (the most frequent answer to that exact question in
`base/train_perception.json`, what a model that ignores the picture scores at best).

Usage: .venv-fixtures/bin/python scripts/diagnostics/perception_eval_hf.py MODEL_DIR DATA_DIR [--text]
(DATA_DIR: artifacts/data/embedded/base, written by `r1lab demo --chain experiments/embedded/base.chain.toml
--prepare-only`). Images must be 112 px (16 image tokens). `--text` scores the text versions instead
(`base/test_perception_text.json` against `base/train_perception_text.json`, written by the controls chain with
`perception_text = true`): each question is asked after the scene in words, with no picture.
"""
import collections
import json
import re
import sys

import torch

from tiny_hf import Pictures, load, pairs, prompt


def family(question):
    """The question with its colour, kind and size words masked: 'How many C Ks are there?'."""
    q = re.sub(r"\b(red|green|blue|yellow)\b", "C", question)
    q = re.sub(r"\b(circle|square|triangle)s\b", "Ks", q)
    return re.sub(r"\b(small|large)\b", "S", q)


def main():
    model_dir, data_dir = sys.argv[1:3]
    text = sys.argv[3:] == ["--text"]
    if sys.argv[3:] not in ([], ["--text"]):
        raise SystemExit(f"unknown arguments {sys.argv[3:]}: the only option is --text")
    suffix = "_text" if text else ""
    torch.manual_seed(0)
    model, tok, proc = load(model_dir)
    model.eval()
    train = json.load(open(f"{data_dir}/train_perception{suffix}.json"))
    test = json.load(open(f"{data_dir}/test_perception{suffix}.json"))
    prior = collections.defaultdict(collections.Counter)
    for _, q, a, _ in pairs(train):
        prior[q][a] += 1
    pictures = Pictures(proc, data_dir, test)
    right, base, total = collections.Counter(), collections.Counter(), collections.Counter()
    items = list(pairs(test))
    with torch.no_grad():
        for s in range(0, len(items), 100):
            chunk = items[s:s + 100]
            rows = [(tok.encode(prompt(asked, picture=not text)).ids, tok.encode(a).ids) for _, _, a, asked in chunk]
            width = max(len(p) + len(a) for p, a in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for k, (p, a) in enumerate(rows):  # right-padded: positions and rope indices ignore the padding
                ids[k, :len(p) + len(a)] = torch.tensor(p + a)
                mask[k, :len(p) + len(a)] = 1
            if text:
                logits = model(input_ids=ids, attention_mask=mask).logits
            else:
                px, grid = pictures.batch([i for i, _, _, _ in chunk])
                logits = model(input_ids=ids, attention_mask=mask, pixel_values=px, image_grid_thw=grid).logits
            for k, ((_, q, a, _), (p, answer)) in enumerate(zip(chunk, rows)):
                pred = logits[k, len(p) - 1:len(p) + len(answer) - 1].argmax(-1).tolist()
                digits = [j for j, t in enumerate(answer) if tok.id_to_token(t).strip("Ġ").isdigit()]
                fam = family(q)
                total[fam] += 1
                right[fam] += all(pred[j] == answer[j] for j in digits)
                base[fam] += prior[q].most_common(1)[0][0] == a if prior[q] else 0
    print(f"{'question family':<42} {'n':>5} {'held-out':>9} {'prior':>6}")
    for fam in sorted(total):
        print(f"{fam:<42} {total[fam]:>5} {right[fam] / total[fam]:>9.3f} {base[fam] / total[fam]:>6.3f}")
    n = sum(total.values())
    print(f"{'all':<42} {n:>5} {sum(right.values()) / n:>9.3f} {sum(base.values()) / n:>6.3f}")


if __name__ == "__main__":
    main()
