"""``edgerestore report``: many bench results (many boards) -> Markdown + one self-contained HTML page.

The table follows Ultralytics' benchmark table: one line per method x backend x precision, with a
status (✅ ok, ❎ ran but failed parity against its FP32 reference, ❌ failed), the file size, the
quality metric (PSNR per evaluation subset, with the gain over no restoration) and ms/frame + FPS
at every benched size. Plots (matplotlib, imported only when plotting): FPS per backend per
board, quality vs speed with the Pareto front, and latency distributions. The HTML page embeds
the plots as base64 PNGs and needs nothing else; the Markdown links PNG files written beside it.

The table functions need only the standard library (``edgerestore bench`` prints the table on a
board); Python 3.6-safe.
"""

import base64
import glob
import html
import io
import json
import math
import os

from edgerestore.benchmarks.schema import validate
from edgerestore.errors import InputNotFoundError, UnsupportedInputError

STATUS_MARK = {"ok": "✅", "exported-but-failed-parity": "❎", "failed": "❌"}
KIND_ORDER = {"baseline": 0, "student": 1, "teacher": 2}
# Baselines from the floor up, then presets from the cheapest.
METHOD_ORDER = {"none": 0, "unsharp": 1, "bilateral": 2, "nlmeans": 3, "pico": 10, "nano": 11, "small": 12, "large": 13}
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}
SIZE_NAMES = {(640, 360): "360p", (854, 480): "480p", (960, 540): "540p", (1280, 720): "720p",
              (1920, 1080): "1080p", (2560, 1440): "1440p", (3840, 2160): "4K"}
NO_RESTORATION = "none"


# --------------------------------------------------------------------------- loading and merging


def load_results(paths):
    """Read and validate bench results from files, folders (every ``*.json`` inside) or glob patterns."""
    files = []
    for spec in paths:
        spec = str(spec)
        if os.path.isdir(spec):
            files.extend(sorted(glob.glob(os.path.join(spec, "*.json"))))
        elif os.path.isfile(spec):
            files.append(spec)
        else:
            matched = sorted(glob.glob(spec))
            if not matched:
                raise InputNotFoundError("bench result %s does not exist — make one with `edgerestore bench`" % spec)
            files.extend(matched)
    if not files:
        raise InputNotFoundError("no bench results (*.json) in %s" % ", ".join(map(str, paths)))
    results = []
    for path in files:
        try:
            with open(path) as handle:
                data = json.load(handle)
        except ValueError as exc:
            raise UnsupportedInputError("%s is not JSON (%s)" % (path, exc))
        if not isinstance(data, dict) or data.get("format") != "edgerestore-bench":
            raise UnsupportedInputError("%s is not an edgerestore bench result" % path)
        validate(data)
        data["_path"] = path
        results.append(data)
    return results


def size_name(width, height):
    return SIZE_NAMES.get((width, height), "%dx%d" % (width, height))


def config_key(row):
    """The row's method x backend x precision (its id without the size)."""
    return row["id"].rsplit("/", 1)[0]


class Board(object):
    """The merged rows of one board label: ``lines[key][(w, h)] = row`` (the latest run wins)."""

    def __init__(self, label):
        self.label = label
        self.results = []
        self.lines = {}
        self.first = {}

    def add(self, result):
        self.results.append(result)
        for row in result["rows"]:
            key = config_key(row)
            self.lines.setdefault(key, {})[(row["width"], row["height"])] = row
            self.first.setdefault(key, row)

    @property
    def latest(self):
        return max(self.results, key=lambda r: r["created"])

    def sizes(self):
        sizes = set()
        for cells in self.lines.values():
            sizes.update(cells)
        return sorted(sizes, key=lambda s: (s[0] * s[1], s))

    def subsets(self):
        subsets = set()
        for row in self.first.values():
            quality = row.get("quality") or {}
            subsets.update((quality.get("vs_ground_truth") or {}).keys())
        return sorted(subsets, key=lambda s: (s != "mild", s))

    def ordered_keys(self):
        def rank(key):
            row = self.first[key]
            return (KIND_ORDER.get(row["kind"], 9), METHOD_ORDER.get(row["method"], 50), row["method"],
                    row["backend"], PRECISION_ORDER.get(row["precision"], 9), key)

        return sorted(self.lines, key=rank)

    def quality(self, key):
        """The quality block of a line (the same at every size; the first that has one)."""
        for row in self.lines[key].values():
            if row.get("quality"):
                return row["quality"]
        return None

    def status(self, key):
        statuses = [row["status"] for row in self.lines[key].values()]
        if all(s == "failed" for s in statuses):
            return "failed"
        if "exported-but-failed-parity" in statuses:
            return "exported-but-failed-parity"
        return "ok"

    def baseline_psnr(self, subset):
        for key in self.lines:
            if self.first[key]["method"] == NO_RESTORATION and self.first[key]["kind"] == "baseline":
                metrics = ((self.quality(key) or {}).get("vs_ground_truth") or {}).get(subset)
                return metrics["psnr"] if metrics else None
        return None


def merge(results):
    """Boards by label, in the order they first appear."""
    boards = {}
    order = []
    for result in sorted(results, key=lambda r: r["created"]):
        if result["label"] not in boards:
            boards[result["label"]] = Board(result["label"])
            order.append(result["label"])
        boards[result["label"]].add(result)
    return [boards[label] for label in order]


# --------------------------------------------------------------------------- tables


def _fmt(value, digits=1, none="—"):
    return none if value is None else "%.*f" % (digits, value)


def _fps(value):
    if value is None:
        return "—"
    if value >= 1000:
        return "%.0f" % value
    return "%.1f" % value


def table_rows(board):
    """``(header, rows)`` of a board's table, cells as plain strings."""
    sizes = board.sizes()
    subsets = board.subsets()
    header = ["Method", "Backend", "Precision", "Status", "Size (MB)"]
    header += ["PSNR %s (dB)" % s for s in subsets]
    header += ["SSIM %s" % subsets[0]] if subsets else []
    video = any((board.quality(key) or {}).get("video") for key in board.ordered_keys())
    if video:  # over the evaluation clips: mean PSNR, geometric mean of the flicker ratios (1.0 = as steady
        # as the real video; a still camera's ratios are large, a plain mean would be that clip alone)
        header += ["PSNR clips (dB)", "flicker clips"]
    header += ["vs FP32 (dB)"]
    for width, height in sizes:
        name = size_name(width, height)
        header += ["ms/frame %s" % name, "FPS %s" % name]
    rows = []
    for key in board.ordered_keys():
        first = board.first[key]
        quality = board.quality(key) or {}
        truth = quality.get("vs_ground_truth") or {}
        size = first.get("size_mb")
        # A second file of the same model/backend/precision (another bundle) is "nano #2".
        method = first["method"] + (" #" + key.rsplit("#", 1)[1] if "#" in key.rsplit("/", 1)[-1] else "")
        cells = [method, first["backend"], first["precision"] or "—",
                 "%s %s" % (STATUS_MARK[board.status(key)], board.status(key)),
                 "—" if size is None else ("%.2f" % size if size < 10 else "%.1f" % size)]
        for subset in subsets:
            metrics = truth.get(subset)
            if not metrics:
                cells.append("—")
                continue
            base = board.baseline_psnr(subset)
            gain = "" if base is None or first["method"] == NO_RESTORATION else " (%+.2f)" % (metrics["psnr"] - base)
            cells.append("%.2f%s" % (metrics["psnr"], gain))
        if subsets:
            metrics = truth.get(subsets[0])
            cells.append(_fmt(metrics and metrics["ssim"], 4))
        if video:
            clips = [c for c in (quality.get("video") or {}).values() if c]
            cells.append(_fmt(sum(c["psnr"] for c in clips) / len(clips) if clips else None, 2))
            flicker = [c["flicker"] for c in clips if c.get("flicker")]
            cells.append(_fmt(math.exp(sum(math.log(f) for f in flicker) / len(flicker)) if flicker else None, 3))
        vs = quality.get("vs_reference")
        cells.append(_fmt(vs and vs["psnr"], 1))
        for size_key in sizes:
            row = board.lines[key].get(size_key)
            if row is None:
                cells += ["", ""]
            elif row["status"] == "failed":
                cells += ["❌", "❌"]
            else:
                cells += [_fmt(row["latency_ms"]["p50"], 2), _fps(row["fps"])]
        rows.append(cells)
    return header, rows


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def failures(board):
    """``[(key, error)]`` of lines with failed or parity-failed rows (one per line)."""
    out = []
    for key in board.ordered_keys():
        errors = sorted(set(r["error"] for r in board.lines[key].values() if r["error"]))
        if errors:
            out.append((key, "; ".join(errors)))
    return out


def board_facts(board):
    """``[(label, value)]`` describing a board and how it was benched."""
    result = board.latest
    b = result["board"]
    cpu = b.get("cpu") or {}
    facts = [("board", b["name"] + (" (%s)" % b["soc"] if b.get("soc") else ""))]
    facts.append(("CPU", "%s, %s cores, governor %s" % (cpu.get("model"), cpu.get("cores"), cpu.get("governor") or "n/a")))
    if b.get("l4t"):
        mode = b.get("nvpmodel") or {}
        facts.append(("JetPack", "%s (L4T %s), nvpmodel %s" % (b.get("jetpack") or "?", b["l4t"],
                                                               mode.get("name") or mode.get("id") or "n/a")))
    facts.append(("RAM / OS", "%s MB, %s, Python %s" % (b.get("ram_mb"), b.get("os"), b.get("python"))))
    soft = result.get("software") or {}
    facts.append(("software", ", ".join("%s %s" % (k, v) for k, v in sorted(soft.items()) if v)))
    s = result["settings"]
    facts.append(("settings", "%d frames after %d warm-up (cap %s s), threads %s, parity bar %.0f dB" % (
        s["frames"], s["warmup"], _fmt(s.get("max_seconds"), 0, "none"), s.get("threads") or "default",
        s["parity_db"])))
    if s.get("deblur", "none") != "none":
        facts.append(("deblur", "the students ran with `--deblur %s`; frames: %s" % (
            s["deblur"], s.get("frames_source") or "?")))
    env = result["environment"]
    facts.append(("thermal", "%s °C before, %s °C after; load average %s -> %s; throttled: %s" % (
        _fmt(env["before"].get("temperature_c")), _fmt(env["after"].get("temperature_c")),
        env["before"].get("load_avg"), env["after"].get("load_avg"),
        (env["after"].get("throttled") or {}).get("raw", "not exposed"))))
    if s.get("evalset"):
        facts.append(("evaluation set", ", ".join("%s: %d images" % kv for kv in sorted(s["evalset"]["subsets"].items()))))
    facts.append(("runs", ", ".join("%s (%s)" % (r["created"], r.get("command") or "?") for r in board.results)))
    return facts


def markdown_table(results):
    """The tables of ``results`` (one per board) as Markdown: what ``edgerestore bench`` prints."""
    parts = []
    for board in merge(results):
        header, rows = table_rows(board)
        parts.append("### %s\n\n%s" % (board.label, _md_table(header, rows)))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def display_name(key):
    """``nano/onnxruntime/int8`` -> ``nano · onnxruntime · int8``; ``unsharp/opencv/-`` -> ``unsharp (opencv)``."""
    parts = key.split("/")
    if len(parts) == 3 and parts[2] == "-":
        return "%s (%s)" % (parts[0], parts[1])
    return " · ".join(parts)


def _ok_rows(board, size):
    out = []
    for key in board.ordered_keys():
        row = board.lines[key].get(size)
        if row is not None and row["status"] != "failed" and row["fps"]:
            out.append((key, row))
    return out


def plot_fps(boards):
    """Horizontal bars of FPS per method/backend/precision, one bar per board, one panel per size."""
    plt = _plt()
    sizes = sorted(set(s for b in boards for s in b.sizes()), key=lambda s: s[0] * s[1])
    keys = []
    for board in boards:
        for key in board.ordered_keys():
            if board.first[key]["method"] != NO_RESTORATION and key not in keys:
                keys.append(key)
    height = max(3.0, 0.28 * len(keys) * max(1, len(boards)) + 1.5)
    fig, axes = plt.subplots(1, len(sizes), figsize=(6.5 * len(sizes), height), squeeze=False)
    bar = 0.8 / max(1, len(boards))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, size in zip(axes[0], sizes):
        for b_index, board in enumerate(boards):
            ys, values = [], []
            for k_index, key in enumerate(keys):
                row = board.lines.get(key, {}).get(size)
                if row is not None and row["status"] != "failed" and row["fps"]:
                    ys.append(k_index + (b_index - (len(boards) - 1) / 2.0) * bar)
                    values.append(row["fps"])
            ax.barh(ys, values, height=bar, color=colors[b_index % len(colors)], label=board.label)
            for y, v in zip(ys, values):
                ax.text(v, y, " %s" % _fps(v), va="center", fontsize=7)
            for k_index, key in enumerate(keys):
                row = board.lines.get(key, {}).get(size)
                if row is not None and row["status"] == "failed":
                    y = k_index + (b_index - (len(boards) - 1) / 2.0) * bar
                    ax.text(0.01, y, "failed", va="center", fontsize=7, color="#b00", transform=ax.get_yaxis_transform())
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels([display_name(k) for k in keys], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("FPS (median), log scale")
        ax.set_title("FPS at %s" % size_name(*size))
        ax.axvline(30, color="grey", lw=0.8, ls="--")
        ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[i % len(colors)], label=b.label) for i, b in enumerate(boards)]
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=min(4, len(boards)), frameon=False)
    return fig


def pareto_front(points):
    """Indices of the points no other point beats on both speed and quality, fastest first.

    ``points`` are ``(fps, psnr)``; a point is on the front when every faster point has lower PSNR.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _plot_size(board, size):
    sizes = board.sizes()
    return size if size in sizes else (sizes[-1] if sizes else None)


MARKERS = ("o", "^", "v", "D", "P", "X", "<", ">", "h", "*")


def plot_quality_speed(boards, size=None):
    """PSNR (first subset) vs FPS per board: colour = method, marker = backend and precision; the
    Pareto front is drawn and named (the other points would pile their labels on each other, as
    quantised variants score within hundredths of a dB), no restoration is the dashed line."""
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, len(boards), figsize=(7.5 * len(boards), 5.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, board in zip(axes[0], boards):
        chosen = _plot_size(board, size)
        subsets = board.subsets()
        if not subsets or chosen is None:
            ax.text(0.5, 0.5, "no quality block", ha="center", transform=ax.transAxes)
            continue
        subset = subsets[0]
        points, keys, rows = [], [], []
        for key, row in _ok_rows(board, chosen):
            metrics = ((board.quality(key) or {}).get("vs_ground_truth") or {}).get(subset)
            if metrics is None or row["method"] == NO_RESTORATION:
                continue
            points.append((row["fps"], metrics["psnr"]))
            keys.append(key)
            rows.append(row)
        methods, variants = [], []
        for row in rows:
            variant = "%s · %s" % (row["backend"], row["precision"]) if row["kind"] != "baseline" else "OpenCV"
            if row["method"] not in methods:
                methods.append(row["method"])
            if variant not in variants:
                variants.append(variant)
        marker_of = dict((v, "s" if v == "OpenCV" else MARKERS[i % len(MARKERS)]) for i, v in enumerate(variants))
        for (x, y), row in zip(points, rows):
            variant = "%s · %s" % (row["backend"], row["precision"]) if row["kind"] != "baseline" else "OpenCV"
            ax.scatter([x], [y], marker=marker_of[variant], s=42, zorder=3,
                       color=colors[methods.index(row["method"]) % len(colors)])
        front = pareto_front(points)
        if front:
            xs, ys = [points[i][0] for i in front], [points[i][1] for i in front]
            ax.plot(xs, ys, "-", color="crimson", lw=1.2, drawstyle="steps-post", zorder=2)
            ax.scatter(xs, ys, s=150, facecolors="none", edgecolors="crimson", lw=1.2, zorder=4)
            for i in front:
                ax.annotate(display_name(keys[i]), points[i], fontsize=7, xytext=(5, 4), textcoords="offset points",
                            color="crimson")
        handles = [Line2D([], [], ls="", marker="o", color=colors[i % len(colors)], label=m)
                   for i, m in enumerate(methods)]
        handles += [Line2D([], [], ls="", marker=marker_of[v], color="dimgrey", label=v) for v in variants]
        handles.append(Line2D([], [], color="crimson", marker="o", mfc="none", label="Pareto front (named)"))
        base = board.baseline_psnr(subset)
        if base is not None:
            ax.axhline(base, color="grey", ls="--", lw=0.9)
            handles.append(Line2D([], [], color="grey", ls="--", label="no restoration"))
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.1)  # room for the front's names
        ax.set_xlabel("FPS at %s (median), log scale" % size_name(*chosen))
        ax.set_ylabel("PSNR on %s (dB)" % subset)
        ax.set_title(board.label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def plot_latency(boards, size=None):
    """Box plots of per-frame latency per method/backend/precision, one panel per board."""
    plt = _plt()
    counts = [len(_ok_rows(b, _plot_size(b, size))) for b in boards]
    fig, axes = plt.subplots(len(boards), 1, figsize=(9, sum(max(2.2, 0.32 * c + 1.2) for c in counts)),
                             squeeze=False)
    for ax, board in zip(axes[:, 0], boards):
        chosen = _plot_size(board, size)
        data, labels = [], []
        for key, row in _ok_rows(board, chosen):
            samples = row["latency_ms"]["samples"]
            if row["method"] != NO_RESTORATION and samples:
                data.append(samples)
                labels.append(key)
        if not data:
            ax.text(0.5, 0.5, "no latency samples", ha="center", transform=ax.transAxes)
            continue
        import inspect

        # matplotlib >= 3.10 spells it orientation=; older ones (a board's distro) vert=.
        horizontal = ({"orientation": "horizontal"} if "orientation" in inspect.signature(ax.boxplot).parameters
                      else {"vert": False})
        ax.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 2}, **horizontal)
        ax.set_yticks(range(1, len(labels) + 1))
        ax.set_yticklabels([display_name(k) for k in labels], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("ms per frame at %s (whiskers p1-p99), log scale" % size_name(*chosen))
        ax.set_title(board.label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


PLOTS = (
    ("fps", "FPS per backend per board", plot_fps),
    ("quality_speed", "Quality vs speed (Pareto front)", plot_quality_speed),
    ("latency", "Latency distributions", plot_latency),
)


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _plt().close(fig)
    return buffer.getvalue()


# --------------------------------------------------------------------------- documents


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1400px;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td:nth-child(-n+4){text-align:left} tr:nth-child(even){background:#fafafa}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px} dt{font-weight:600}
td.ok{background:#e3f5e1} td.parity{background:#fff2cc} td.fail{background:#fbe0e0;color:#900}
img{max-width:100%;border:1px solid #eee;margin:6px 0} .err{font-family:monospace;font-size:12px;color:#a00}
"""


def _html_table(header, rows):
    out = ["<table><thead><tr>" + "".join("<th>%s</th>" % html.escape(h) for h in header) + "</tr></thead><tbody>"]
    # Status colours too: a browser without an emoji font still shows which rows failed.
    classes = {"✅": " class=ok", "❎": " class=parity", "❌": " class=fail"}
    for row in rows:
        out.append("<tr>" + "".join("<td%s>%s</td>" % (classes.get(c[:1], ""), html.escape(c)) for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def render_report(results, out_dir, size=None, title="edgerestore benchmark report"):
    """Write ``report.md``, ``report.html`` (self-contained) and ``plots/*.png`` into ``out_dir``.

    ``size``: ``(width, height)`` for the quality-vs-speed and latency plots (default: the largest).
    Returns ``{"markdown", "html", "plots": [...]}`` paths.
    """
    boards = merge(results)
    plots_dir = os.path.join(out_dir, "plots")
    if not os.path.isdir(plots_dir):
        os.makedirs(plots_dir)
    images = []
    for name, caption, fn in PLOTS:
        fig = fn(boards) if fn is plot_fps else fn(boards, size)
        data = _png(fig)
        path = os.path.join(plots_dir, name + ".png")
        with open(path, "wb") as handle:
            handle.write(data)
        images.append((name, caption, path, data))

    md = ["# %s" % title, "",
          "Status: ✅ ok · ❎ ran, but below the parity bar against its FP32 reference · ❌ failed. "
          "PSNR in dB against the ground truth (gain over no restoration in brackets); "
          "ms/frame is the median latency, FPS = 1000 / median ms.", ""]
    body = ["<h1>%s</h1>" % html.escape(title),
            "<p>Status: ✅ ok · ❎ ran, but below the parity bar against its FP32 reference · ❌ failed. PSNR in dB "
            "against the ground truth (gain over no restoration in brackets); ms/frame is the median latency, "
            "FPS = 1000 / median ms.</p>"]
    for board in boards:
        header, rows = table_rows(board)
        facts = board_facts(board)
        md += ["## %s" % board.label, ""] + ["- **%s**: %s" % f for f in facts] + ["", _md_table(header, rows), ""]
        body += ["<h2>%s</h2>" % html.escape(board.label),
                 "<dl>" + "".join("<dt>%s</dt><dd>%s</dd>" % (html.escape(k), html.escape(str(v))) for k, v in facts)
                 + "</dl>", _html_table(header, rows)]
        errors = failures(board)
        if errors:
            md += ["Failures:", ""] + ["- `%s`: %s" % e for e in errors] + [""]
            body.append("<p>Failures:</p><ul>" + "".join(
                "<li><b>%s</b>: <span class=err>%s</span></li>" % (html.escape(k), html.escape(e)) for k, e in errors)
                + "</ul>")
        notes = [n for r in board.results for n in r.get("notes") or []]
        if notes:
            md += ["Notes:", ""] + ["- %s" % n for n in notes] + [""]
            body.append("<ul>" + "".join("<li>%s</li>" % html.escape(n) for n in notes) + "</ul>")
    md.append("## Plots\n")
    body.append("<h2>Plots</h2>")
    for name, caption, _, data in images:
        md += ["### %s" % caption, "", "![%s](plots/%s.png)" % (caption, name), ""]
        body.append("<h3>%s</h3><img id=\"plot-%s\" alt=\"%s\" src=\"data:image/png;base64,%s\">" % (
            html.escape(caption), name, html.escape(caption), base64.b64encode(data).decode("ascii")))
    md_path = os.path.join(out_dir, "report.md")
    html_path = os.path.join(out_dir, "report.html")
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(md) + "\n")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style>"
            "</head><body>%s</body></html>\n" % (html.escape(title), _CSS, "\n".join(body)))
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return {"markdown": md_path, "html": html_path, "plots": [p for _, _, p, _ in images]}
