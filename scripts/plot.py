#!/usr/bin/python3
"""scripts/plot.py: plot or tabulate the JSONL metric logs written by `discdiff train`.

Input: one or more JSONL files, one JSON object per line with an "event" key:
  start  run metadata: run, objective, generator, schedule, params, seq_len, batch,
         entropy_rate_bpc (optional; only for the synthetic source)
  train  step, tokens, loss_nats_per_token (loss_per_token before 2026-12), lr, grad_norm,
         tokens_per_s, elapsed_s
  val    step, tokens, bound, nats_per_token, bpc, bpc_se, ppl, elapsed_s; since 2026-12 also
         bits_per_byte, bits_per_byte_se, bytes (absent from older logs)
  end    step, ... (final summary)
Unknown keys and unknown event names are ignored; empty lines are skipped. A file may hold
several runs: each "start" event begins a new run (events before the first start belong to
a run named after the file stem). Only the keys a mode needs are checked; a missing or
non-numeric needed key is an error naming file and line.

Modes:
  plot.py LOG.jsonl [LOG2.jsonl ...] -o OUT.png [--x tokens|step|time] [--title T]
          [--labels a,b,...] [--smooth 0.9]
      Two panels: left, training loss per token (EMA-smoothed with debiasing, raw curve
      faint); right, validation bits per character with standard-error bars, plus a dashed
      "source entropy rate" line for each distinct entropy_rate_bpc among the start events.
      One colour per run; the label is taken from --labels, else the start event's "run",
      else the file stem. Writes a PNG at 120 dpi and prints its path.
  plot.py --table LOG.jsonl [...] [--labels a,b,...]
      Prints a Markdown table: run, objective, generator, schedule, steps, tokens, final
      val bound name, bpc +- se (final val event; bits per token), bits/byte +- se (final val
      event; "-" for logs without it), mean tokens/s over train events.

Errors (missing/unreadable file, malformed line, a run without train or val events, bad
--x, bad --smooth, mismatched --labels count, unwritable output) print
"plot.py: error: ..." on stderr and exit with status 2.

Standard library + matplotlib (Agg backend) only.
"""

import argparse
import json
import math
import os
import sys

X_KEYS = {"tokens": "tokens", "step": "step", "time": "elapsed_s"}
X_LABELS = {"tokens": "training tokens", "step": "training step", "time": "elapsed time (s)"}


class PlotError(Exception):
    """An input or usage error; reported on stderr with exit status 2."""


class Run:
    """Events of one training run (from one start event up to the next)."""

    def __init__(self, path, index_in_file, start=None, start_line=None):
        self.path = path
        self.index_in_file = index_in_file
        self.start = start if start is not None else {}
        self.start_line = start_line
        self.train = []  # (line number, event dict)
        self.val = []
        self.end = None  # (line number, event dict)

    def has_events(self):
        return bool(self.train or self.val)

    def default_label(self, runs_in_file):
        name = self.start.get("run")
        if isinstance(name, str) and name:
            return name
        stem = os.path.splitext(os.path.basename(self.path))[0]
        if runs_in_file > 1:
            return "%s#%d" % (stem, self.index_in_file + 1)
        return stem


def _reject_constant(token):
    # json accepts NaN/Infinity/-Infinity, which are not JSON; treat them as malformed.
    raise ValueError("non-JSON constant %s" % token)


def read_log(path):
    """Parse one JSONL log into a list of Run objects."""
    if not os.path.exists(path):
        raise PlotError("%s: no such file" % path)
    if os.path.isdir(path):
        raise PlotError("%s: is a directory, not a JSONL log" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise PlotError("%s: cannot read: %s" % (path, e))

    runs = []
    current = None
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except ValueError as e:
            raise PlotError("%s:%d: malformed JSON line: %s" % (path, lineno, e))
        if not isinstance(obj, dict):
            raise PlotError("%s:%d: malformed line: expected a JSON object, got %s"
                            % (path, lineno, type(obj).__name__))
        if "event" not in obj:
            raise PlotError("%s:%d: malformed line: no \"event\" key" % (path, lineno))
        event = obj["event"]
        if not isinstance(event, str):
            raise PlotError("%s:%d: malformed line: \"event\" must be a string, got %r"
                            % (path, lineno, event))
        if event == "start":
            current = Run(path, len(runs), obj, lineno)
            runs.append(current)
            continue
        if event not in ("train", "val", "end"):
            continue  # unknown event kinds are ignored
        if current is None:
            current = Run(path, len(runs))
            runs.append(current)
        if event == "train":
            current.train.append((lineno, obj))
        elif event == "val":
            current.val.append((lineno, obj))
        else:
            current.end = (lineno, obj)

    if not runs:
        raise PlotError("%s: no train or val events (empty log)" % path)
    for run in runs:
        if not run.has_events():
            where = ("run starting at line %d" % run.start_line) if run.start_line else "log"
            raise PlotError("%s: %s has no train or val events" % (path, where))
    return runs


def number(path, lineno, obj, key, optional=False):
    """obj[key] as a finite float; error naming file, line and key otherwise."""
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise PlotError("%s:%d: %s event lacks the key \"%s\"" % (path, lineno, obj["event"], key))
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlotError("%s:%d: \"%s\" must be a number, got %r" % (path, lineno, key, v))
    v = float(v)
    if not math.isfinite(v):
        raise PlotError("%s:%d: \"%s\" is not finite (%r)" % (path, lineno, key, v))
    return v


def ema(values, alpha):
    """Debiased exponential moving average: m_t = alpha*m_{t-1} + (1-alpha)*x_t,
    reported as m_t / (1 - alpha^(t+1)); alpha = 0 returns the input unchanged."""
    if not 0.0 <= alpha < 1.0:
        raise PlotError("--smooth must be in [0, 1), got %r" % alpha)
    out = []
    m = 0.0
    weight = 1.0
    for x in values:
        m = alpha * m + (1.0 - alpha) * x
        weight *= alpha
        out.append(m / (1.0 - weight))
    return out


def load_runs(paths, labels_arg):
    runs = []
    for p in paths:
        file_runs = read_log(p)
        for r in file_runs:
            r.label = r.default_label(len(file_runs))
        runs.extend(file_runs)
    if labels_arg is not None:
        labels = labels_arg.split(",")
        if len(labels) != len(runs):
            raise PlotError("--labels has %d label(s) but the logs hold %d run(s)"
                            % (len(labels), len(runs)))
        for i, lab in enumerate(labels):
            if not lab.strip():
                raise PlotError("--labels entry %d is empty" % (i + 1))
            runs[i].label = lab.strip()
    return runs


def entropy_rates(runs):
    """Distinct entropy_rate_bpc values of the start events, in order of appearance."""
    rates = []
    for r in runs:
        if "entropy_rate_bpc" in r.start and r.start["entropy_rate_bpc"] is not None:
            v = number(r.path, r.start_line, r.start, "entropy_rate_bpc")
            if v not in rates:
                rates.append(v)
    return rates


def make_plot(runs, out, xmode, title, smooth):
    xkey = X_KEYS[xmode]
    # Extract (and validate) everything before touching matplotlib.
    series = []
    for r in runs:
        tx, ty = [], []
        for lineno, ev in r.train:
            tx.append(number(r.path, lineno, ev, xkey))
            # loss_nats_per_token; metrics files written before the key named its unit have
            # the same value as loss_per_token
            key = "loss_per_token" if "loss_nats_per_token" not in ev and "loss_per_token" in ev \
                else "loss_nats_per_token"
            ty.append(number(r.path, lineno, ev, key))
        vx, vy, ve = [], [], []
        for lineno, ev in r.val:
            vx.append(number(r.path, lineno, ev, xkey))
            vy.append(number(r.path, lineno, ev, "bpc"))
            se = number(r.path, lineno, ev, "bpc_se", optional=True)
            if se is not None and se < 0:
                raise PlotError("%s:%d: \"bpc_se\" is negative (%r)" % (r.path, lineno, se))
            ve.append(se if se is not None else 0.0)
        series.append((r, tx, ty, ema(ty, smooth), vx, vy, ve))
    rates = entropy_rates(runs)

    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise PlotError("%s: output directory %s does not exist" % (out, out_dir))

    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, (r, tx, ty, ts, vx, vy, ve) in enumerate(series):
        c = colors[i % len(colors)]
        if tx:
            ax_l.plot(tx, ty, color=c, alpha=0.25, linewidth=0.8)
            ax_l.plot(tx, ts, color=c, linewidth=1.6, label=r.label)
        if vx:
            ax_r.errorbar(vx, vy, yerr=ve, color=c, marker="o", markersize=3.5,
                          capsize=3, linewidth=1.4, label=r.label)
    for j, rate in enumerate(rates):
        lab = "source entropy rate" if len(rates) == 1 else "source entropy rate (%.4g)" % rate
        ax_r.axhline(rate, color="0.3", linestyle="--", linewidth=1.2, label=lab)

    ax_l.set_title("training loss per token" + (" (EMA %.3g)" % smooth if smooth > 0 else ""))
    ax_l.set_xlabel(X_LABELS[xmode])
    ax_l.set_ylabel("loss per token (nats)")
    ax_r.set_title("validation bits per character")
    ax_r.set_xlabel(X_LABELS[xmode])
    ax_r.set_ylabel("bpc")
    for ax in (ax_l, ax_r):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120, format="png")
    except OSError as e:
        raise PlotError("%s: cannot write: %s" % (out, e))
    finally:
        plt.close(fig)
    print(out)


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt_int(v):
    return str(int(v)) if v is not None and float(v).is_integer() else ("%g" % v if v is not None else "-")


def table_rows(runs):
    """One dict per run with the table fields (None where unknown)."""
    rows = []
    for r in runs:
        steps = tokens = None
        for lineno, ev in r.train + r.val + ([r.end] if r.end else []):
            s = number(r.path, lineno, ev, "step", optional=True)
            t = number(r.path, lineno, ev, "tokens", optional=True)
            if s is not None:
                steps = s if steps is None else max(steps, s)
            if t is not None:
                tokens = t if tokens is None else max(tokens, t)
        bound = bpc = se = bpb = bpb_se = None
        if r.val:
            lineno, ev = r.val[-1]
            bpc = number(r.path, lineno, ev, "bpc")
            se = number(r.path, lineno, ev, "bpc_se", optional=True)
            bpb = number(r.path, lineno, ev, "bits_per_byte", optional=True)
            bpb_se = number(r.path, lineno, ev, "bits_per_byte_se", optional=True)
            b = ev.get("bound")
            bound = str(b) if b is not None else None
        speeds = [number(r.path, ln, ev, "tokens_per_s", optional=True) for ln, ev in r.train]
        speeds = [v for v in speeds if v is not None]
        rows.append({
            "run": r.label,
            "objective": r.start.get("objective"),
            "generator": r.start.get("generator"),
            "schedule": r.start.get("schedule"),
            "steps": steps, "tokens": tokens, "bound": bound, "bpc": bpc, "bpc_se": se,
            "bpb": bpb, "bpb_se": bpb_se,
            "tokens_per_s": (sum(speeds) / len(speeds)) if speeds else None,
        })
    return rows


def print_table(runs):
    header = ["run", "objective", "generator", "schedule", "steps", "tokens",
              "val bound", "bpc +- se", "bits/byte +- se", "mean tokens/s"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 4 + ["---:"] * 2 + ["---"] + ["---:"] * 3) + "|"]

    def pm(v, e):
        if v is None:
            return "-"
        return "%.4f" % v if e is None else "%.4f +- %.4f" % (v, e)

    for row in table_rows(runs):
        bpc = pm(row["bpc"], row["bpc_se"])
        bpb = pm(row["bpb"], row["bpb_se"])
        cells = [row["run"],
                 row["objective"] if row["objective"] is not None else "-",
                 row["generator"] if row["generator"] is not None else "-",
                 row["schedule"] if row["schedule"] is not None else "-",
                 _fmt_int(row["steps"]), _fmt_int(row["tokens"]),
                 row["bound"] if row["bound"] is not None else "-",
                 bpc, bpb,
                 "%.1f" % row["tokens_per_s"] if row["tokens_per_s"] is not None else "-"]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    print("\n".join(lines))


def build_parser():
    p = argparse.ArgumentParser(
        prog="plot.py",
        description="Plot (or tabulate with --table) discdiff training logs (JSONL).",
        epilog="Errors exit with status 2. Example: plot.py a.jsonl b.jsonl -o cmp.png --x step")
    p.add_argument("logs", nargs="+", metavar="LOG.jsonl", help="metric logs written by `discdiff train`")
    p.add_argument("-o", "--output", metavar="OUT.png", help="output PNG (required unless --table)")
    p.add_argument("--x", choices=sorted(X_KEYS), default="tokens",
                   help="x axis: training tokens (default), step, or elapsed time")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--labels", default=None, metavar="a,b,...",
                   help="comma-separated run labels, one per run in order")
    p.add_argument("--smooth", type=float, default=0.9, metavar="A",
                   help="EMA factor in [0, 1) for the training loss (default 0.9; 0 = none)")
    p.add_argument("--table", action="store_true",
                   help="print a Markdown summary table instead of plotting")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (0.0 <= args.smooth < 1.0) or math.isnan(args.smooth):
        parser.error("--smooth must be in [0, 1), got %r" % args.smooth)
    if args.table and args.output:
        parser.error("--table prints to stdout; -o/--output is only for plots")
    if not args.table and not args.output:
        parser.error("-o/--output OUT.png is required (or use --table)")
    try:
        runs = load_runs(args.logs, args.labels)
        if args.table:
            print_table(runs)
        else:
            make_plot(runs, args.output, args.x, args.title, args.smooth)
    except PlotError as e:
        print("plot.py: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
