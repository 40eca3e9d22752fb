#!/usr/bin/python3
"""Trains the bundled demonstration model (model.py) on the King James Bible (data.py).

Usage: /usr/bin/python3 train.py [--steps N] [--max-minutes M] [--out DIR] [--log FILE]

Writes DIR/last.pt every --ckpt-minutes and DIR/best.pt whenever the validation loss improves;
--resume continues from DIR/last.pt. Logs step, learning rate, train loss, validation loss,
tokens/s and elapsed time to --log. Stops after --steps or --max-minutes, whichever comes
first (the cosine learning-rate decay ends at whichever comes first). Deterministic for a given seed and thread
count, apart from floating-point summation order across thread counts.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from model import Config, Llama  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--tokenizer", default=os.path.join(REPO, "models/kjv/tokenizer.model"))
    p.add_argument("--verses", help="output of `bible -f Gen1:1-Rev22:21` (default: run it)")
    p.add_argument("--out", default=os.path.join(REPO, "build/kjv-model"))
    p.add_argument("--log", default=os.path.join(REPO, "models/kjv/training.log"))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=55.0)
    p.add_argument("--batch", type=int, default=16, help="sequences per step")
    p.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--ckpt-minutes", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--resume", action="store_true")
    return p.parse_args()


def learning_rate(step, elapsed_s, args):
    """Linear warmup to --lr, then cosine decay to --min-lr. The decay ends at --steps or at
    --max-minutes, whichever comes first, so a slow machine still ends at the low rate."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    by_steps = (step - args.warmup) / max(1, args.steps - args.warmup)
    by_time = elapsed_s / max(1e-9, args.max_minutes * 60)
    progress = min(1.0, max(by_steps, by_time))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


def sample_batch(ids, batch, seq, rng):
    starts = rng.integers(0, len(ids) - seq - 1, size=batch)
    window = np.stack([ids[s:s + seq + 1] for s in starts]).astype(np.int64)
    window = torch.from_numpy(window)
    return window[:, :-1], window[:, 1:]


@torch.no_grad()
def evaluate(model, val_ids, seq, batch):
    """Mean next-token loss over the whole validation stream, in non-overlapping windows."""
    model.eval()
    n = (len(val_ids) - 1) // seq
    x_all = torch.from_numpy(val_ids[:n * seq].astype(np.int64)).view(n, seq)
    y_all = torch.from_numpy(val_ids[1:n * seq + 1].astype(np.int64)).view(n, seq)
    total = 0.0
    for i in range(0, n, batch):
        logits = model(x_all[i:i + batch])
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y_all[i:i + batch].reshape(-1),
            reduction="sum").item()
    model.train()
    return total / (n * seq)


def save(path, model, optimizer, step, best_val, tokens_seen, elapsed, args):
    tmp = path + ".tmp"
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "step": step, "best_val": best_val,
                "tokens_seen": tokens_seen, "elapsed_s": elapsed, "args": vars(args)}, tmp)
    os.replace(tmp, path)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train_ids, val_ids = data.encode_corpus(args.tokenizer, args.verses)

    cfg = Config(context_length=args.seq)
    model = Llama(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    step, best_val, tokens_seen, elapsed_before = 0, float("inf"), 0, 0.0
    last_path, best_path = os.path.join(args.out, "last.pt"), os.path.join(args.out, "best.pt")
    if args.resume and os.path.exists(last_path):
        ckpt = torch.load(last_path, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, best_val = ckpt["step"], ckpt["best_val"]
        tokens_seen, elapsed_before = ckpt["tokens_seen"], ckpt["elapsed_s"]
    rng = np.random.default_rng(args.seed + step)

    log = open(args.log, "a" if args.resume else "w", buffering=1)
    def say(line):
        print(line, flush=True)
        log.write(line + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    say(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} config {cfg.to_dict()} params {n_params} "
        f"train_tokens {len(train_ids)} val_tokens {len(val_ids)} "
        f"batch {args.batch}x{args.seq} steps {args.steps} lr {args.lr}->{args.min_lr} "
        f"warmup {args.warmup} wd {args.weight_decay} threads {args.threads} seed {args.seed}"
        + (f" resumed_at_step {step}" if step else ""))
    say("# step lr train_loss val_loss tokens_per_s elapsed_s tokens_seen")

    start = time.time()
    last_ckpt = start
    window_t, window_tokens, window_loss, window_n = time.time(), 0, 0.0, 0
    model.train()
    while step < args.steps:
        elapsed = elapsed_before + time.time() - start
        if elapsed > args.max_minutes * 60:
            say(f"# stopped at the time budget ({args.max_minutes} min) at step {step}")
            break
        lr = learning_rate(step, elapsed, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = sample_batch(train_ids, args.batch, args.seq, rng)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += x.numel()
        window_tokens += x.numel()
        window_loss += loss.item()
        window_n += 1

        if step % args.eval_every == 0 or step == args.steps:
            now = time.time()
            val = evaluate(model, val_ids, args.seq, args.batch)
            tps = window_tokens / (now - window_t)
            elapsed = elapsed_before + now - start
            say(f"{step} {lr:.6f} {window_loss / window_n:.4f} {val:.4f} {tps:.0f} "
                f"{elapsed:.0f} {tokens_seen}")
            if val < best_val:
                best_val = val
                save(best_path, model, optimizer, step, best_val, tokens_seen, elapsed, args)
            window_t, window_tokens, window_loss, window_n = time.time(), 0, 0.0, 0
        elif step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} "
                  f"{window_tokens / (time.time() - window_t):.0f} tok/s", flush=True)
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            save(last_path, model, optimizer, step, best_val, tokens_seen,
                 elapsed_before + time.time() - start, args)
            last_ckpt = time.time()
    if step % args.eval_every != 0 and step != args.steps:
        # Stopped by the time budget between evaluations: evaluate the final weights too.
        elapsed = elapsed_before + time.time() - start
        val = evaluate(model, val_ids, args.seq, args.batch)
        train_loss = f"{window_loss / window_n:.4f}" if window_n else "-"
        tps = f"{window_tokens / (time.time() - window_t):.0f}" if window_n else "-"
        say(f"{step} {learning_rate(step, elapsed, args):.6f} {train_loss} {val:.4f} {tps} "
            f"{elapsed:.0f} {tokens_seen}")
        if val < best_val:
            best_val = val
            save(best_path, model, optimizer, step, best_val, tokens_seen, elapsed, args)
    save(last_path, model, optimizer, step, best_val, tokens_seen,
         elapsed_before + time.time() - start, args)
    say(f"# done: step {step} best_val {best_val:.4f} tokens_seen {tokens_seen} "
        f"elapsed_s {elapsed_before + time.time() - start:.0f}")


if __name__ == "__main__":
    main()
