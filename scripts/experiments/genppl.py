"""scripts/experiments/genppl.py: the sample-quality part of report.py (imported by it).

Input layout (written by scripts/experiments/shakespeare.sh):
  SAMPLES/<group>/<model>.<sampler>.<steps>/samples.jsonl  `discdiff sample --out` lines
                                       {"text", "tokens", "nfe", "sample", ...}
  SAMPLES/<group>/<model>.<sampler>.<steps>/genppl.jsonl   `discdiff eval --samples --ar --json`:
                                       {"event": "genppl", "gen_ppl", "gen_ppl_se",
                                       "nats_per_token", "nats_per_token_se", "tokens", ...}
  SAMPLES/<group>/<model>.<sampler>.<steps>/run.json       {"model", "sampler", "steps",
                                       "samples", "wall_s", "command", "commit", "machine"}
The set with model "ar" holds the autoregressive scorer's own samples (the reference line).

Output for each group:
  OUT/<group>_genppl.md   one Markdown table, a row per set: model | sampler | steps |
      NFE per sample (mean of the sets' "nfe") | generative perplexity (+- se) | bits/char |
      character entropy (bits, of the characters of all samples pooled) | wall time; rows ordered by the models' training order (RESULTS/<group>/<model>/run.json
      "order"), then sampler name, then steps. A footer names the scorer's perplexity on the
      validation text (first eval line of RESULTS/<group>/ar/eval.jsonl) when present, the
      commits and the machine.
  OUT/<group>_genppl.png  generative perplexity against steps (log axes), one line per
      model/sampler with +- se bars; a dashed line for the AR samples and a dotted line for the
      validation text under the AR model. 1200 x 600 pixels.
  OUT/<group>_samples.md  the first 240 characters of sample 0 of every set at the largest step
      count, in fenced blocks.
"""

import math
import os

from report_io import (ReportError, distinct, finish_figure, fmt_duration, md_cell, number,
                       read_json, read_jsonl, text)


class SampleSet:
    def __init__(self, group, name, path):
        self.group, self.name, self.path = group, name, path
        info_path = os.path.join(path, "run.json")
        gen_path = os.path.join(path, "genppl.jsonl")
        smp_path = os.path.join(path, "samples.jsonl")
        for p in (info_path, gen_path, smp_path):
            if not os.path.isfile(p):
                raise ReportError("%s: sample set without %s (an unfinished run? wait for it or "
                                  "remove the directory)" % (path, os.path.basename(p)))
        self.info = read_json(info_path)
        w = info_path + ":1"
        self.model = text(self.info, "model")
        self.sampler = text(self.info, "sampler")
        if self.model is None or self.sampler is None:
            raise ReportError("%s: \"model\" and \"sampler\" must be non-empty strings" % w)
        self.steps = number(w, self.info, "steps", optional=False)
        self.wall = number(w, self.info, "wall_s")
        gens = [(ln, ev) for ln, ev in read_jsonl(gen_path) if ev.get("event") == "genppl"]
        if not gens:
            raise ReportError("%s: no \"genppl\" line" % gen_path)
        ln, g = gens[0]
        gw = "%s:%d" % (gen_path, ln)
        nats = number(gw, g, "nats_per_token", optional=False)
        nats_se = number(gw, g, "nats_per_token_se")
        if nats < 0 or (nats_se is not None and nats_se < 0):
            raise ReportError("%s: negative nats_per_token or its se" % gw)
        self.ppl = math.exp(nats)
        # delta method: se(exp(m)) = exp(m) se(m)
        self.ppl_se = self.ppl * nats_se if nats_se is not None else None
        self.bits = nats / math.log(2.0)
        self.bits_se = nats_se / math.log(2.0) if nats_se is not None else None
        lines = read_jsonl(smp_path)
        if not lines:
            raise ReportError("%s: no samples" % smp_path)
        nfes = [number("%s:%d" % (smp_path, ln), ev, "nfe", optional=False) for ln, ev in lines]
        self.nfe = sum(nfes) / len(nfes)
        self.first_text = text(lines[0][1], "text") or ""
        # entropy of the characters of all samples: a generative perplexity that is low because
        # the samples repeat a few characters shows up here as a low entropy
        counts = {}
        for _, ev in lines:
            for c in text(ev, "text") or "":
                counts[c] = counts.get(c, 0) + 1
        n = float(sum(counts.values()))
        self.char_entropy = (-sum(k / n * math.log2(k / n) for k in counts.values())
                             if n > 0 else None)
        self.commit = text(self.info, "commit")
        self.machine = text(self.info, "machine")


def discover_sets(samples, wanted=None):
    """{group: [set directory names]} under SAMPLES (empty when the directory is missing)."""
    if samples is None or not os.path.isdir(samples):
        return {}
    out = {}
    for g in sorted(os.listdir(samples)):
        gp = os.path.join(samples, g)
        if g.startswith(".") or not os.path.isdir(gp) or (wanted is not None and g not in wanted):
            continue
        sets = sorted(s for s in os.listdir(gp)
                      if not s.startswith(".") and os.path.isdir(os.path.join(gp, s)))
        if sets:
            out[g] = sets
    return out


def _model_order(results, group, model):
    p = os.path.join(results, group, model, "run.json") if results else None
    if p and os.path.isfile(p):
        o = number(p + ":1", read_json(p), "order")
        if o is not None:
            return (0, o)
    return (1, 0.0)


def load_sets(samples, results, group, names):
    sets = [SampleSet(group, n, os.path.join(samples, group, n)) for n in names]
    order = {m: _model_order(results, group, m) for m in {s.model for s in sets}}
    sets.sort(key=lambda s: (order[s.model], s.model, s.sampler, s.steps))
    return sets


def reference_ppl(results, group):
    """(perplexity, bits/char, se) of the validation text under RESULTS/<group>/ar, or None."""
    p = os.path.join(results, group, "ar", "eval.jsonl") if results else None
    if not p or not os.path.isfile(p):
        return None
    for ln, ev in read_jsonl(p):
        if ev.get("event") == "eval":
            w = "%s:%d" % (p, ln)
            bpc = number(w, ev, "bpc", optional=False)
            return 2.0 ** bpc, bpc, number(w, ev, "bpc_se")
    return None


def _steps(v):
    return "%d" % v if v == int(v) else "%g" % v


def genppl_table(group, sets, ref):
    lines = ["<!-- generated by scripts/experiments/report.py from experiments/samples/%s; "
             "do not edit by hand -->" % group, "",
             "| model | sampler | steps | NFE per sample | generative perplexity (+- se) | "
             "bits/char | character entropy | wall time |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in sets:
        ppl = "%.2f" % s.ppl if s.ppl_se is None else "%.2f +- %.2f" % (s.ppl, s.ppl_se)
        bits = "%.3f" % s.bits if s.bits_se is None else "%.3f +- %.3f" % (s.bits, s.bits_se)
        nfe = "%d" % round(s.nfe) if abs(s.nfe - round(s.nfe)) < 1e-9 else "%.1f" % s.nfe
        ent = "-" if s.char_entropy is None else "%.3f" % s.char_entropy
        cells = [s.model, s.sampler, "-" if s.model == "ar" else _steps(s.steps), nfe, ppl, bits,
                 ent, fmt_duration(s.wall)]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    foot = []
    if ref is not None:
        foot.append("validation text under the AR model: perplexity %.2f (%.4f bits/char)"
                    % (ref[0], ref[1]))
    commits = distinct(s.commit for s in sets)
    machines = distinct(s.machine for s in sets)
    foot.append("commands: run.json of each set; commit(s): %s; machine: %s"
                % (", ".join(commits) or "unknown", " / ".join(machines) or "unknown"))
    foot = "; ".join(foot)
    lines += ["", md_cell(foot[:1].upper() + foot[1:])]
    return "\n".join(lines) + "\n"


def samples_md(group, sets):
    top = {}
    for s in sets:
        if s.model == "ar" or s.steps >= top.get((s.model, s.sampler), (-1, None))[0]:
            top[(s.model, s.sampler)] = (s.steps, s)
    lines = ["<!-- generated by scripts/experiments/report.py from experiments/samples/%s; "
             "do not edit by hand -->" % group, ""]
    for (model, sampler), (steps, s) in top.items():
        head = "AR model, ancestral" if model == "ar" else "%s, %s, %s steps" % (
            model, sampler, _steps(steps))
        body = s.first_text[:240].replace("```", "'''")
        lines += ["**%s** (generative perplexity %.1f):" % (head, s.ppl), "", "```", body, "```", ""]
    return "\n".join(lines)


def genppl_plot(group, sets, ref, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(10, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    markers = "osd^v<>ph*"
    curves = {}
    for s in sets:
        if s.model != "ar":
            curves.setdefault((s.model, s.sampler), []).append(s)
    # colour by model, marker and line style by sampler
    models = distinct(m for m, _ in curves)
    samplers = distinct(k for _, k in curves)
    styles = ["-", "--", "-.", ":"]
    handles = []
    for (model, sampler), ss in curves.items():
        ss.sort(key=lambda s: s.steps)
        i, j = models.index(model), samplers.index(sampler)
        handles.append(ax.errorbar(
            [s.steps for s in ss], [s.ppl for s in ss],
            yerr=[s.ppl_se or 0.0 for s in ss], color=colors[i % len(colors)],
            marker=markers[j % len(markers)], linestyle=styles[j % len(styles)], markersize=4.5,
            capsize=2.5, linewidth=1.3, label="%s / %s" % (model, sampler)))
    for s in sets:
        if s.model == "ar":
            handles.append(ax.axhline(s.ppl, color="0.25", linestyle="--", linewidth=1.2,
                                      label="AR model's own samples"))
            break
    if ref is not None:
        handles.append(ax.axhline(ref[0], color="0.25", linestyle=":", linewidth=1.4,
                                  label="validation text"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted({s.steps for s in sets if s.model != "ar"}))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lo, hi = ax.get_ylim()
    ax.set_yticks([v for v in (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500,
                               700, 1000) if lo <= v <= hi])
    ax.set_title("%s: generative perplexity under the AR model vs sampling steps" % group)
    ax.set_xlabel("sampling steps")
    ax.set_ylabel("generative perplexity")
    ax.grid(True, which="both", alpha=0.3)
    finish_figure(fig, ax, handles, out)
