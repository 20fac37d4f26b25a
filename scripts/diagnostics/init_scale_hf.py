"""Does the tiny model's initialisation scale decide whether it can learn to read the image? (issue 6 diagnosis)

Trains the tiny Qwen2.5-VL with HF transformers (the reference implementation r1lab's model is proven equal to) on
single-turn perception questions taken from `base/train_perception.json` (lib/data/perception.rs), loss on the
answer's first number only (the answers are sentences, "The number of red shapes is 2."; the numbers below were
measured when they were bare numbers), after re-drawing every text weight of rank >= 2 from N(0, STD) and, when
VISION_STD is given, every vision weight of rank >= 2 from N(0, VISION_STD) (biases and norms untouched; 0 keeps the checkpoint's
weights). Every 100 steps it prints the held-out loss and accuracy on that number (the last 400 pictures are
held out) next to the floor a model reaches from the question alone.

Measured with this script (issue 6 note; MODEL_DIR the tiny revision c99b1d99, whose weights were drawn at std 0.02;
300 steps, 74 held-out questions, prior accuracy 54 %):
- "How many red shapes are there?", STD 0 (the checkpoint's 0.02): held-out accuracy 54 % at steps 100, 200, 299,
  loss 1.14 (floor 1.22); STD 0.08: 42 %, 66 %, 100 % (loss 0.03).
- The four colour-count questions together (an earlier version of this loop, right-padded, 2,824 train and 300
  held-out questions, prior accuracy 40 %): with the vision tower at the checkpoint's 0.02, at the floor after
  1,400 steps with the text at 0.02 (lr 2e-3 and 5e-3), 400 at 0.15 and 1,100 at 0.08; with VISION_STD 0.08 too,
  held-out accuracy 71 % at step 700, 81 % at 1,100, 90 % at 1,500. All 41 question types together, both at 0.08:
  at the prior (52 %) after 1,800 steps.

Usage: .venv-fixtures/bin/python scripts/diagnostics/init_scale_hf.py MODEL_DIR DATA_DIR QUESTION_REGEX STD STEPS
[VISION_STD]
(MODEL_DIR: a tiny-model snapshot in the Hub cache; DATA_DIR: artifacts/data/embedded/base, written by
`r1lab demo --chain experiments/embedded/base.chain.toml --prepare-only`; STD 0 keeps the checkpoint's weights).
Batch 32, AdamW lr 1e-3, 5 % warm-up then cosine, grad clip 1.0, seed 0. Images must be 112 px (16 image tokens).
"""
import collections
import json
import math
import random
import re
import sys
import time

import torch

from tiny_hf import Pictures, load, pairs, prompt

BATCH, LR, HELD_OUT = 32, 1e-3, 400


def first_number(ids, tok):
    """(the ids before the answer's first number token, that token): the number is predicted at the last position."""
    j = next(j for j, t in enumerate(ids) if tok.id_to_token(t).strip("Ġ").isdigit())
    return ids[:j], ids[j]


def main():
    model_dir, data_dir, pattern = sys.argv[1:4]
    std, steps = float(sys.argv[4]), int(sys.argv[5])
    vision_std = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    torch.manual_seed(0)
    random.seed(0)
    model, tok, proc = load(model_dir)
    with torch.no_grad():
        for module, scale in [(model.model.language_model, std), (model.model.visual, vision_std)]:
            for p in module.parameters():
                if scale > 0 and p.dim() >= 2:
                    p.normal_(0, scale)
    records = json.load(open(f"{data_dir}/train_perception.json"))
    pictures = Pictures(proc, data_dir, records)
    question = re.compile(pattern)
    examples = [e[:3] for e in pairs(records) if question.search(e[1])]
    train = [e for e in examples if e[0] < len(records) - HELD_OUT]
    test = [e for e in examples if e[0] >= len(records) - HELD_OUT]
    by = collections.defaultdict(collections.Counter)
    for _, q, a in train:
        by[q][a] += 1
    floor = sum(-v / len(train) * math.log(v / sum(c.values())) for c in by.values() for v in c.values())
    prior = sum(by[q].most_common(1)[0][0] == a for _, q, a in test) / len(test)
    print(f"{len(train)} train, {len(test)} held-out; floor {floor:.4f} nats; prior accuracy {prior:.3f}", flush=True)

    def batch(items):
        rows = [first_number(tok.encode(prompt(q) + a).ids, tok) for _, q, a in items]
        width = max(len(p) for p, _ in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for k, (p, _) in enumerate(rows):  # left-padded: the answer is predicted at the last position
            ids[k, width - len(p):] = torch.tensor(p)
            mask[k, width - len(p):] = 1
        px, grid = pictures.batch([i for i, _, _ in items])
        out = model(input_ids=ids, attention_mask=mask, pixel_values=px, image_grid_thw=grid)
        return out.logits[:, -1], torch.tensor([t for _, t in rows])

    def evaluate():
        model.eval()
        with torch.no_grad():
            logits, target = zip(*(batch(test[s:s + 100]) for s in range(0, len(test), 100)))
        model.train()
        logits, target = torch.cat(logits), torch.cat(target)
        loss = torch.nn.functional.cross_entropy(logits, target).item()
        return loss, (logits.argmax(-1) == target).float().mean().item()

    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = LR * min(1.0, (step + 1) / (0.05 * steps)) * 0.5 * (1 + math.cos(math.pi * step / steps))
        logits, target = batch(random.sample(train, BATCH))
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            held_loss, acc = evaluate()
            print(f"step {step} train {loss.item():.4f} held-out loss {held_loss:.4f} accuracy {acc:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
