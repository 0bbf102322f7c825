#!/usr/bin/python3
"""scripts/experiments/report.py: Markdown tables and bound plots of the experiment results.

    report.py [--results experiments/results] [--out docs/experiments] [--groups text8,synthetic]
              [--samples experiments/samples] [--embed docs/experiments.md]

(the default directories are those of the project root, wherever the script is run from)

Input layout (written by scripts/experiments/run_one.sh):
  RESULTS/<group>/<run>/metrics.jsonl  the `discdiff train` log (events start, resume, train, val,
                                       interrupted, end; see docs/usage.md "Files: metrics.jsonl")
  RESULTS/<group>/<run>/eval.jsonl     `discdiff eval --json` lines, {"event":"eval", "split",
                                       "bound", "bpc", "bpc_se", ...}, the headline bound
                                       first (optional)
  RESULTS/<group>/<run>/run.json       {"run", "group", "order", "command", "eval_command",
                                       "commit", "wall_s", "machine", "date"} (optional)
A group is a subdirectory of RESULTS holding at least one run directory; a run is a subdirectory
of a group. Names starting with "." are skipped. Rows are sorted by run.json's "order" (runs
without one come last), then by directory name.

Output, for each group found (or each of --groups that is present):
  OUT/<group>_table.md  one Markdown table, columns
      run | objective | generator | schedule | params | steps | train tokens | headline bound |
      bpc (+- se) | [source bits/token | gap %] | other bounds | ms/step | tokens/s | wall time
    then one line "Commands: see run.json of each run; commit(s): ...; machine: ...".
    * headline bound and bpc: the first "eval" line of eval.jsonl (a split other than "valid" is
      named in brackets); without eval lines, the "end" event of metrics.jsonl (marked "(val)":
      the training run's own final validation), else its last "val" event (marked "(last val)").
    * other bounds: the remaining eval lines ("j1 1.6200 +- 0.0100; test nll ..."), or the end
      event's bpc_<name> / bpc_se_<name> keys; bpc values have 4 decimals.
    * steps and train tokens: the end event, else the largest step / tokens logged.
    * ms/step: 1000 x the mean "step_s" of the train events with step > 10% of the run's steps
      (all train events if none qualifies); tokens/s: batch x seq_len / that mean step time, the
      training throughput without validation and checkpoint time.
    * wall time: run.json's wall_s as 45s, 1m23s or 2h5m.
    * source bits/token and gap % (group "synthetic", or any group whose start events carry
      window_entropy_bpc): the exact entropy per token of a seq_len window, and
      gap % = 100 (bpc / window entropy - 1), 1 decimal.
    Missing values are "-".
  OUT/<group>_bounds.png  validation bpc ("val" events, bpc_se error bars) against training
    tokens, one line per run labelled "run (bound)", legend right of the axes; for runs that log
    the synthetic source's entropy a dashed line "source entropy per window" (window_entropy_bpc)
    and a dotted line "source entropy rate" (entropy_rate_bpc). 1200 x 600 pixels (10 x 5 in at
    120 dpi).
  Prints each written path on stdout.

  For each group of sample sets under SAMPLES (--samples; default: the directory "samples" beside
  RESULTS, skipped when missing): OUT/<group>_genppl.md (generative perplexity and network
  evaluations per model, sampler and step count), OUT/<group>_genppl.png (generative perplexity
  against steps) and OUT/<group>_samples.md (a sample of every model and sampler); see genppl.py.
  With --embed, the table's block is '<!-- table: <group>-genppl -->' (the samples page is linked,
  not embedded).

Errors exit 2 with "report.py: error: ..." on stderr: the results directory missing, a run
directory without metrics.jsonl, malformed JSON (file:line), a non-numeric or non-finite value a
column needs (file:line and key), no groups found, an unwritable output directory, matplotlib
missing.
Standard library + matplotlib (Agg backend) only.
"""

import argparse
import os
import sys

import genppl
from report_io import (ReportError, distinct, finish_figure, fmt_duration, md_cell, number,
                       read_json, read_jsonl, text, write_text)

PROG = "report.py"


# ----------------------------------------------------------------------------------------------
# Reading


class RunData:
    """Everything the report needs about one run directory."""

    def __init__(self, group, name, path):
        self.group = group
        self.name = name
        self.path = path
        self.metrics_path = os.path.join(path, "metrics.jsonl")
        self.start = {}          # the last start/resume event (resume may change "steps")
        self.start_where = None
        self.meta = {}           # keys merged from every start/resume event, later ones win
        self.train = {}          # step -> (where, event); a re-logged step keeps the last
        self.val = {}
        self.end = None          # (where, event)
        self.evals = []          # [(where, event)] eval lines of eval.jsonl
        self.info = {}           # run.json
        self.info_path = None

    def where(self, lineno):
        return "%s:%d" % (self.metrics_path, lineno)

    # -- metrics.jsonl --
    def load_metrics(self):
        if not os.path.isfile(self.metrics_path):
            raise ReportError("%s: run directory without metrics.jsonl (an unfinished run? "
                              "wait for it or remove the directory)" % self.path)
        lines = read_jsonl(self.metrics_path)
        for lineno, ev in lines:
            kind = ev.get("event")
            w = self.where(lineno)
            if kind == "start":
                # A fresh start (the program truncates the log, but be safe): forget before it.
                self.train, self.val, self.end, self.meta = {}, {}, None, {}
            if kind in ("start", "resume"):
                self.start, self.start_where = ev, w
                self.meta.update(ev)
            elif kind in ("train", "val"):
                step = number(w, ev, "step", optional=False)
                (self.train if kind == "train" else self.val)[step] = (w, ev)
            elif kind == "end":
                self.end = (w, ev)
        if not (self.meta or self.train or self.val or self.end):
            raise ReportError("%s: no start, train, val or end events" % self.metrics_path)

    # -- eval.jsonl, run.json --
    def load_eval(self):
        p = os.path.join(self.path, "eval.jsonl")
        if os.path.isfile(p):
            self.evals = [("%s:%d" % (p, ln), ev) for ln, ev in read_jsonl(p)
                          if ev.get("event") == "eval"]

    def load_info(self):
        p = os.path.join(self.path, "run.json")
        if os.path.isfile(p):
            self.info = read_json(p)
            self.info_path = p

    def order_key(self):
        if self.info:
            o = number(self.info_path + ":1", self.info, "order")
            if o is not None:
                return (0, o, self.name)
        return (1, 0.0, self.name)

    # -- derived values --
    def meta_number(self, key):
        return number(self.start_where or self.metrics_path, self.meta, key)

    def total_steps(self):
        s = self.meta_number("steps")
        if s is not None:
            return s
        if self.end:
            s = number(self.end[0], self.end[1], "step")
            if s is not None:
                return s
        steps = list(self.train) + list(self.val)
        return max(steps) if steps else None

    def steps_and_tokens(self):
        steps = tokens = None
        events = list(self.train.values()) + list(self.val.values())
        if self.end:
            events.append(self.end)
        for w, ev in events:
            s, t = number(w, ev, "step"), number(w, ev, "tokens")
            if s is not None:
                steps = s if steps is None else max(steps, s)
            if t is not None:
                tokens = t if tokens is None else max(tokens, t)
        return steps, tokens

    def step_time(self):
        """Mean step_s over the train events after the first 10% of the steps (None if none)."""
        total = self.total_steps()
        timed = []
        for step in sorted(self.train):
            w, ev = self.train[step]
            dt = number(w, ev, "step_s")
            if dt is not None:
                if dt < 0:
                    raise ReportError("%s: \"step_s\" is negative (%r)" % (w, dt))
                timed.append((step, dt))
        if not timed:
            return None
        late = [dt for step, dt in timed if total is None or step > 0.1 * total]
        use = late if late else [dt for _, dt in timed]
        return sum(use) / len(use)

    def tokens_per_step(self):
        b, l = self.meta_number("batch"), self.meta_number("seq_len")
        return b * l if b is not None and l is not None else None

    def headline(self):
        """(bound label, bpc, se, [other bound strings]); bpc None when nothing is known."""
        if self.evals:
            first_w, first = self.evals[0]
            split = text(first, "split") or "valid"
            bound = text(first, "bound") or "?"
            label = bound if split == "valid" else "%s (%s)" % (bound, split)
            bpc = number(first_w, first, "bpc", optional=False)
            se = _nonneg(first_w, number(first_w, first, "bpc_se"), "bpc_se")
            others = []
            for w, ev in self.evals[1:]:
                s = text(ev, "split") or "valid"
                name = text(ev, "bound") or "?"
                if s != split:
                    name = "%s %s" % (s, name)
                others.append(fmt_bound(name, number(w, ev, "bpc", optional=False),
                                        _nonneg(w, number(w, ev, "bpc_se"), "bpc_se")))
            return label, bpc, se, others
        src, mark = None, None
        if self.end and "bpc" in self.end[1]:
            src, mark = self.end, "val"
        elif self.val:
            src, mark = self.val[max(self.val)], "last val"
        if src is None:
            return None, None, None, []
        w, ev = src
        bound = text(ev, "bound") or "?"
        bpc = number(w, ev, "bpc", optional=False)
        se = _nonneg(w, number(w, ev, "bpc_se"), "bpc_se")
        others = []
        for key in sorted(ev):
            if key.startswith("bpc_") and not key.startswith("bpc_se"):
                name = key[len("bpc_"):]
                se_key = "bpc_se_" + name
                others.append(fmt_bound(name, number(w, ev, key, optional=False),
                                        _nonneg(w, number(w, ev, se_key), se_key)))
        return "%s (%s)" % (bound, mark), bpc, se, others

    def val_bound(self):
        """The bound the val events report (the last one's name), or None."""
        return text(self.val[max(self.val)][1], "bound") if self.val else None

    def val_series(self):
        xs, ys, es = [], [], []
        for step in sorted(self.val):
            w, ev = self.val[step]
            xs.append(number(w, ev, "tokens", optional=False))
            ys.append(number(w, ev, "bpc", optional=False))
            se = _nonneg(w, number(w, ev, "bpc_se"), "bpc_se")
            es.append(se if se is not None else 0.0)
        return xs, ys, es


def _nonneg(where, v, key):
    if v is not None and v < 0:
        raise ReportError("%s: \"%s\" is negative (%r)" % (where, key, v))
    return v


def discover(results, wanted):
    """{group: [run directory names]} for the groups to report, in report order."""
    if not os.path.isdir(results):
        raise ReportError("results directory %s does not exist (run scripts/experiments/*.sh "
                          "first, or pass --results)" % results)
    groups = {}
    for g in sorted(os.listdir(results)):
        gp = os.path.join(results, g)
        if g.startswith(".") or not os.path.isdir(gp):
            continue
        runs = sorted(r for r in os.listdir(gp)
                      if not r.startswith(".") and os.path.isdir(os.path.join(gp, r)))
        if runs:
            groups[g] = runs
    if wanted is not None:
        missing = [g for g in wanted if g not in groups]
        for g in missing:
            print("%s: note: group %s not found under %s, skipped" % (PROG, g, results),
                  file=sys.stderr)
        groups = {g: groups[g] for g in wanted if g in groups}
    if not groups:
        among = "" if wanted is None else " among --groups " + ",".join(wanted)
        raise ReportError("no groups found under %s%s (a group is a directory of run directories)"
                          % (results, among))
    return groups


def load_group(results, group, names):
    runs = []
    for name in names:
        r = RunData(group, name, os.path.join(results, group, name))
        r.load_metrics()
        r.load_eval()
        r.load_info()
        runs.append(r)
    runs.sort(key=RunData.order_key)
    return runs


# ----------------------------------------------------------------------------------------------
# Formatting


def fmt_bound(name, bpc, se):
    return "%s %s" % (name, fmt_bpc(bpc, se))


def fmt_bpc(bpc, se):
    if bpc is None:
        return "-"
    return "%.4f" % bpc if se is None else "%.4f +- %.4f" % (bpc, se)


def fmt_int(v, sep=False):
    if v is None:
        return "-"
    if float(v).is_integer():
        return "{:,}".format(int(v)) if sep else str(int(v))
    return "%g" % v


def is_synthetic(group, runs):
    return group == "synthetic" or any("window_entropy_bpc" in r.meta for r in runs)


def table(group, runs):
    """The Markdown text of <group>_table.md."""
    synth = is_synthetic(group, runs)
    header = ["run", "objective", "generator", "schedule", "params", "steps", "train tokens",
              "headline bound", "bpc (+- se)"]
    align = ["---"] * 4 + ["---:"] * 3 + ["---", "---:"]
    if synth:
        header += ["source bits/token", "gap %"]
        align += ["---:", "---:"]
    header += ["other bounds", "ms/step", "tokens/s", "wall time"]
    align += ["---", "---:", "---:", "---:"]
    lines = ["<!-- generated by scripts/experiments/report.py from experiments/results/%s; "
             "do not edit by hand -->" % group, "",
             "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    fallback = False
    for r in runs:
        steps, tokens = r.steps_and_tokens()
        label, bpc, se, others = r.headline()
        if not r.evals and label is not None:
            fallback = True
        dt = r.step_time()
        tps = r.tokens_per_step()
        wall = number(r.info_path + ":1", r.info, "wall_s") if r.info else None
        cells = [r.name, text(r.meta, "objective") or "-", text(r.meta, "generator") or "-",
                 text(r.meta, "schedule") or "-", fmt_int(r.meta_number("params"), sep=True),
                 fmt_int(steps), fmt_int(tokens, sep=True), label or "-", fmt_bpc(bpc, se)]
        if synth:
            h = r.meta_number("window_entropy_bpc")
            if h is not None and h <= 0:
                raise ReportError("%s: \"window_entropy_bpc\" must be positive, got %r"
                                  % (r.start_where, h))
            gap = 100.0 * (bpc / h - 1.0) if h is not None and bpc is not None else None
            cells += ["%.4f" % h if h is not None else "-",
                      "%.1f" % gap if gap is not None else "-"]
        cells += ["; ".join(others) if others else "-",
                  "%.1f" % (1000.0 * dt) if dt is not None else "-",
                  "%.0f" % (tps / dt) if dt and tps is not None else "-",
                  fmt_duration(wall)]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    commits = distinct(text(r.info, "commit") for r in runs)
    machines = distinct(text(r.info, "machine") for r in runs)
    foot = ("Commands: see run.json of each run; commit(s): %s; machine: %s"
            % (", ".join(commits) if commits else "unknown",
               " / ".join(machines) if machines else "unknown"))
    if fallback:
        foot += ("; \"(val)\" / \"(last val)\": no eval.jsonl, the bound is the training run's "
                 "final validation")
    lines += ["", md_cell(foot)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Plot


def plot(group, runs, out):
    series = [(r.name, r.val_bound()) + r.val_series() for r in runs]
    windows = distinct(r.meta_number("window_entropy_bpc") for r in runs)
    rates = distinct(r.meta_number("entropy_rate_bpc") for r in runs)

    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    markers = "osd^v<>ph*"
    handles = []  # in this order in the legend: runs, then the entropy lines
    for i, (name, bound, xs, ys, es) in enumerate(series):
        if xs:
            handles.append(ax.errorbar(
                xs, ys, yerr=es, color=colors[i % len(colors)],
                marker=markers[(i // len(colors)) % len(markers)], markersize=3.5, capsize=2.5,
                linewidth=1.3, label=name if bound is None else "%s (%s)" % (name, bound)))
    for h in windows:
        handles.append(ax.axhline(
            h, color="0.25", linestyle="--", linewidth=1.2,
            label="source entropy per window" + ("" if len(windows) == 1 else " (%.4g)" % h)))
    for h in rates:
        handles.append(ax.axhline(
            h, color="0.25", linestyle=":", linewidth=1.4,
            label="source entropy rate" + ("" if len(rates) == 1 else " (%.4g)" % h)))
    ax.set_title("%s: validation bound vs training tokens" % group)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation bound (bits per token)")
    ax.grid(True, alpha=0.3)
    if not handles:
        ax.text(0.5, 0.5, "no validation events", transform=ax.transAxes, ha="center", va="center")
    finish_figure(fig, ax, handles, out)


# ----------------------------------------------------------------------------------------------
# Main


def embed_table(path, group, content):
    """Replaces the block between the group's begin / end markers in `path` with `content`
    (without its leading HTML comment line)."""
    begin, end = "<!-- table: %s -->" % group, "<!-- end table: %s -->" % group
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ReportError("%s: cannot read: %s" % (path, e))
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ReportError("%s: no '%s' ... '%s' block" % (path, begin, end))
    body = "\n".join(l for l in content.splitlines() if not l.startswith("<!--")).strip("\n")
    text = text[:i + len(begin)] + "\n\n" + body + "\n\n" + text[j:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Markdown tables (<group>_table.md) and validation-bound plots "
                    "(<group>_bounds.png) of the experiment results.",
        epilog="Errors exit with status 2. See the module docstring for the columns.")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="results tree RESULTS/<group>/<run>/ (default: experiments/results "
                        "of the project root)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory, created if missing (default: docs/experiments of "
                        "the project root)")
    p.add_argument("--groups", default=None, metavar="a,b",
                   help="comma-separated groups to report (default: every group found)")
    p.add_argument("--embed", default=None, metavar="FILE.md",
                   help="also replace the text between '<!-- table: G -->' and "
                        "'<!-- end table: G -->' in FILE.md with group G's table")
    p.add_argument("--samples", default=None, metavar="DIR",
                   help="sample sets SAMPLES/<group>/<model>.<sampler>.<steps>/ (default: "
                        "'samples' beside the results directory; skipped when missing)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Defaults are relative to the project root (two levels above this script), not the cwd.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if args.results is None:
        args.results = os.path.relpath(os.path.join(root, "experiments", "results"))
    if args.out is None:
        args.out = os.path.relpath(os.path.join(root, "docs", "experiments"))
    if args.samples is None:
        args.samples = os.path.join(os.path.dirname(os.path.abspath(args.results)), "samples")
        args.samples = os.path.relpath(args.samples)
    try:
        wanted = None
        if args.groups is not None:
            wanted = [g.strip() for g in args.groups.split(",")]
            if not all(wanted):
                raise ReportError("--groups has an empty entry: %r" % args.groups)
        groups = discover(args.results, wanted)
        try:
            os.environ.setdefault("MPLBACKEND", "Agg")
            import matplotlib  # noqa: F401  (checked before anything is written)
        except ImportError:
            raise ReportError("%s cannot import matplotlib (apt-get install python3-matplotlib, "
                              "and run the script with /usr/bin/python3)" % sys.executable)
        loaded = {g: load_group(args.results, g, names) for g, names in groups.items()}
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as e:
            raise ReportError("%s: cannot create the output directory: %s" % (args.out, e))

        def emit(name, content):
            path = os.path.join(args.out, name)
            write_text(path, content)
            print(path)

        def embed(block, content):
            if args.embed:
                embed_table(args.embed, block, content)
                print("%s: table %s" % (args.embed, block))

        for g, runs in loaded.items():
            content = table(g, runs)
            emit("%s_table.md" % g, content)
            png = os.path.join(args.out, "%s_bounds.png" % g)
            plot(g, runs, png)
            print(png)
            embed(g, content)
        for g, names in genppl.discover_sets(args.samples, wanted).items():
            sets = genppl.load_sets(args.samples, args.results, g, names)
            ref = genppl.reference_ppl(args.results, g)
            content = genppl.genppl_table(g, sets, ref)
            emit("%s_genppl.md" % g, content)
            embed(g + "-genppl", content)
            emit("%s_samples.md" % g, genppl.samples_md(g, sets))
            png = os.path.join(args.out, "%s_genppl.png" % g)
            genppl.genppl_plot(g, sets, ref, png)
            print(png)
    except ReportError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
