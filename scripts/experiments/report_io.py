"""scripts/experiments/report_io.py: reading and formatting helpers shared by report.py and
genppl.py: strict JSON / JSONL readers (file:line in every error; NaN and Infinity rejected),
finite-number access, Markdown cell escaping, durations as the program prints them."""

import json
import math


class ReportError(Exception):
    """An input or usage error; reported on stderr with exit status 2."""


def _reject_constant(token):
    # json accepts NaN/Infinity/-Infinity, which are not JSON.
    raise ValueError("non-JSON constant %s" % token)


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError("%s: cannot read: %s" % (path, e))


def read_jsonl(path):
    """[(line number, dict)] of a JSONL file; every non-empty line must be a JSON object."""
    out = []
    for lineno, raw in enumerate(_read_text(path).split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except ValueError as e:
            raise ReportError("%s:%d: malformed JSON: %s" % (path, lineno, e))
        if not isinstance(obj, dict):
            raise ReportError("%s:%d: malformed line: expected a JSON object, got %s"
                              % (path, lineno, type(obj).__name__))
        out.append((lineno, obj))
    return out


def read_json(path):
    """The single JSON object of a file such as run.json."""
    text = _read_text(path)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ReportError("%s:%d: malformed JSON: %s" % (path, e.lineno, e.msg))
    except ValueError as e:
        raise ReportError("%s:1: malformed JSON: %s" % (path, e))
    if not isinstance(obj, dict):
        raise ReportError("%s:1: expected a JSON object, got %s" % (path, type(obj).__name__))
    return obj


def number(where, obj, key, optional=True):
    """obj[key] as a finite float, None when absent and optional; `where` is "file:line"."""
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise ReportError("%s: \"%s\" lacks the key \"%s\""
                          % (where, obj.get("event", "object"), key))
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ReportError("%s: \"%s\" must be a number, got %r" % (where, key, v))
    v = float(v)
    if not math.isfinite(v):
        raise ReportError("%s: \"%s\" is not finite (%r)" % (where, key, v))
    return v


def text(obj, key):
    v = obj.get(key)
    return v if isinstance(v, str) and v else None


def fmt_duration(s):
    """45s, 1m23s, 2h5m (seconds rounded to the nearest integer), as the program prints."""
    if s is None:
        return "-"
    t = int(s + 0.5)
    if t >= 3600:
        return "%dh%dm" % (t // 3600, (t % 3600) // 60)
    if t >= 60:
        return "%dm%ds" % (t // 60, t % 60)
    return "%ds" % t


def md_cell(v):
    return str(v).replace("|", "\\|").replace("\n", " ")


def distinct(values):
    out = []
    for v in values:
        if v is not None and v not in out:
            out.append(v)
    return out


def write_text(path, content):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    except OSError as e:
        raise ReportError("%s: cannot write: %s" % (path, e))


def finish_figure(fig, ax, handles, out):
    """The legend (if any handles) right of the axes, the layout of every report plot, the PNG
    written to `out` (1200 x 600 pixels at 120 dpi for a 10 x 5 in figure); closes the figure."""
    import matplotlib.pyplot as plt
    if handles:
        ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)
    fig.subplots_adjust(left=0.08, right=0.74, top=0.92, bottom=0.11)
    try:
        fig.savefig(out, dpi=120, format="png")
    except OSError as e:
        raise ReportError("%s: cannot write: %s" % (out, e))
    finally:
        plt.close(fig)
