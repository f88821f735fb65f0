"""The MLproject's command: `python train.py --data D --alpha A --epochs N --label L`."""

import argparse

import fit

import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--alpha", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--label", default="baseline")
args = parser.parse_args()

rows = fit.load(args.data)
with tracking.start_run():  # under `trackflow run`: the project's run
    w = 0.0
    for epoch in range(args.epochs):
        w, loss = fit.step(w, rows, args.alpha)
        tracking.log_metric("loss", loss, step=epoch)
    tracking.log_metric("w", w)
    tracking.set_tag("label", args.label)
