"""A mean-opinion-score (MOS) kit: a blind rating page that works offline, and the scoring of it.

**prepare** runs every method (students, baselines, and the clean picture as a hidden reference)
on the evaluation images and writes:

* ``<out>/page/index.html`` + ``<out>/page/stimuli/<random id>.png`` - the folder to give raters
  (zip it, or open it from a USB stick: it works from ``file://`` with no network). The page shows
  one picture at a time in an order shuffled for every rater, asks for an absolute category rating
  (ITU-T P.910 ACR: 5 Excellent, 4 Good, 3 Fair, 2 Poor, 1 Bad; keys 1-5 work), keeps the ratings
  in the browser's local storage (a reload resumes), and exports them as CSV (download button, and
  a text box to copy from). Nothing in the folder names a method: stimuli have random ids and the
  list in the page is shuffled too.
* ``<out>/key.json`` - which method and image each stimulus id is. Keep it; do not send it.

**score** reads one or more ratings CSVs with the key and gives per method the MOS, the number
of ratings and raters, the standard deviation and the 95% confidence interval of the mean
(Student's t with n - 1 degrees of freedom over all ratings of the method, as ITU-R BT.500 does).
Pure Python + numpy/OpenCV; the t quantile is computed here (no scipy). Python 3.6-safe.
"""

import csv
import json
import math
import os
import random

from edgerestore.errors import InputNotFoundError, UnsupportedInputError

SCALE = ((5, "Excellent"), (4, "Good"), (3, "Fair"), (2, "Poor"), (1, "Bad"))
REFERENCE = "reference"  # the clean picture, rated blind like any method (a hidden reference)
KEY_FORMAT = "edgerestore-mos-key"


# --------------------------------------------------------------------------- prepare


def prepare(out_dir, pairs, methods, seed=0, include_reference=True, title="Picture quality test"):
    """Write the rating page, its stimuli and the key; returns the key dict.

    ``pairs``: evaluation pairs (``.subset``, ``.name``, ``.degraded``, ``.clean``);
    ``methods``: ``[(name, restore)]`` with ``restore(rgb uint8) -> rgb uint8``.
    """
    from edgerestore.benchmarks.evalset import write_rgb

    if not pairs:
        raise InputNotFoundError("no images to rate")
    if not methods and not include_reference:
        raise InputNotFoundError("no methods to rate")
    names = [name for name, _ in methods]
    if len(set(names)) != len(names):
        raise UnsupportedInputError("method names must be unique, got %s" % ", ".join(names))
    rng = random.Random(seed)
    page = os.path.join(out_dir, "page")
    stimuli_dir = os.path.join(page, "stimuli")
    if not os.path.isdir(stimuli_dir):
        os.makedirs(stimuli_dir)
    used = set()
    stimuli = {}
    jobs = list(methods) + ([(REFERENCE, None)] if include_reference else [])
    for pair in pairs:
        image_name = "%s/%s" % (pair.subset, pair.name)
        for name, restore in jobs:
            picture = pair.clean if restore is None else restore(pair.degraded)
            ident = "%08x" % rng.getrandbits(32)
            while ident in used:
                ident = "%08x" % rng.getrandbits(32)
            used.add(ident)
            write_rgb(os.path.join(stimuli_dir, ident + ".png"), picture)
            stimuli[ident] = {"method": name, "image": image_name}
    order = sorted(stimuli)
    rng.shuffle(order)
    session = "%08x" % rng.getrandbits(32)
    key = {"format": KEY_FORMAT, "version": 1, "session": session, "seed": seed, "title": title,
           "methods": names + ([REFERENCE] if include_reference else []),
           "images": ["%s/%s" % (p.subset, p.name) for p in pairs], "stimuli": stimuli}
    with open(os.path.join(page, "index.html"), "w", encoding="utf-8") as handle:
        handle.write(rating_page(session, title, ["stimuli/%s.png" % i for i in order]))
    with open(os.path.join(out_dir, "key.json"), "w") as handle:
        json.dump(key, handle, indent=1)
    return key


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%(title)s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#777;color:#111}
.panel{max-width:820px;margin:40px auto;background:#fff;padding:24px 32px;border-radius:8px}
#trial{text-align:center;padding:12px}
#stimulus{max-width:96vw;max-height:78vh;display:block;margin:8px auto;background:#555}
#scale button{font-size:17px;margin:6px 4px;padding:10px 16px;border-radius:6px;border:1px solid #444;cursor:pointer}
#scale button.chosen{background:#2b6;color:#fff}
#progress{color:#fff;font-size:14px}
textarea{width:100%%;height:160px;font-family:monospace;font-size:12px}
.hidden{display:none}
</style></head>
<body>
<div id="intro" class="panel">
<h1>%(title)s</h1>
<p>You will see %(count)d pictures, one at a time, in a random order. Rate the <b>overall quality</b> of each:
how sharp it is, how much noise, blur or blockiness you see. There are no right answers; go with your first impression.</p>
<p>Click a rating or press a key: <b>5</b> Excellent, <b>4</b> Good, <b>3</b> Fair, <b>2</b> Poor, <b>1</b> Bad.
Your ratings stay in this browser (a reload resumes); at the end, download them as a CSV file and send it back.</p>
<p><label>Your name or initials: <input id="rater" autocomplete="off"></label></p>
<p><button id="start">Start</button></p>
</div>
<div id="trial" class="hidden">
<div id="progress"></div>
<img id="stimulus" alt="picture to rate">
<div id="scale"></div>
<button id="back">&larr; back</button>
</div>
<div id="done" class="panel hidden">
<h1>Thank you!</h1>
<p>Please download your ratings and send the file back.</p>
<p><button id="download">Download ratings (CSV)</button></p>
<p>Or copy them from here:</p>
<textarea id="csv" readonly></textarea>
</div>
<script>
"use strict";
var SESSION = %(session)s;
var STIMULI = %(stimuli)s;
var SCALE = %(scale)s;
var store = "edgerestore-mos-" + SESSION;
var state = JSON.parse(localStorage.getItem(store) || "null");
var shown = 0;
function $(id) { return document.getElementById(id); }
function save() { try { localStorage.setItem(store, JSON.stringify(state)); } catch (e) {} }
function shuffled(items) {
  var a = items.slice();
  for (var i = a.length - 1; i > 0; i--) { var j = Math.floor(Math.random() * (i + 1)); var t = a[i]; a[i] = a[j]; a[j] = t; }
  return a;
}
function csvField(v) { v = String(v); return /[",\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
function toCsv() {
  var lines = ["session,rater,stimulus,score,position,seconds,time"];
  state.order.forEach(function (src, k) {
    var r = state.ratings[src];
    if (!r) return;
    var id = src.replace(/^.*\\//, "").replace(/\\.png$/, "");
    lines.push([SESSION, state.rater, id, r.score, k + 1, r.seconds.toFixed(1), r.time].map(csvField).join(","));
  });
  return lines.join("\\n") + "\\n";
}
function refreshCsv() { $("csv").value = toCsv(); }
function show(k) {
  state.index = k; save(); refreshCsv();
  if (k >= state.order.length) { $("trial").className = "hidden"; $("done").className = "panel"; return; }
  $("intro").className = "hidden"; $("done").className = "panel hidden"; $("trial").className = "";
  $("progress").textContent = (k + 1) + " / " + state.order.length;
  $("stimulus").src = state.order[k];
  if (k + 1 < state.order.length) { new Image().src = state.order[k + 1]; }
  var r = state.ratings[state.order[k]];
  Array.prototype.forEach.call($("scale").children, function (b) {
    b.className = r && Number(b.getAttribute("data-score")) === r.score ? "chosen" : "";
  });
  shown = Date.now();
}
function rate(score) {
  if (!state || state.index >= state.order.length) return;
  state.ratings[state.order[state.index]] = {score: score, seconds: (Date.now() - shown) / 1000, time: new Date().toISOString()};
  show(state.index + 1);
}
SCALE.forEach(function (s) {
  var b = document.createElement("button");
  b.setAttribute("data-score", s[0]); b.textContent = s[0] + " " + s[1];
  b.onclick = function () { rate(s[0]); };
  $("scale").appendChild(b);
});
$("start").onclick = function () {
  var rater = $("rater").value.trim() || "anonymous";
  if (!state || state.rater !== rater) { state = {rater: rater, order: shuffled(STIMULI), ratings: {}, index: 0}; }
  show(state.index);
};
$("back").onclick = function () { if (state.index > 0) show(state.index - 1); };
$("download").onclick = function () {
  var blob = new Blob([toCsv()], {type: "text/csv"});
  var a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = "ratings-" + SESSION + "-" + state.rater.replace(/\\W+/g, "_") + ".csv";
  document.body.appendChild(a); a.click(); a.remove();
};
document.addEventListener("keydown", function (e) {
  if ($("trial").className === "hidden") return;
  var n = Number(e.key); if (n >= 1 && n <= 5) rate(n);
});
if (state) { $("rater").value = state.rater; }
</script>
</body></html>
"""


def rating_page(session, title, sources):
    """The HTML of the rating page: ``sources`` are the stimuli's relative paths, already shuffled."""
    import html

    return _PAGE % {
        "title": html.escape(title),
        "count": len(sources),
        "session": json.dumps(session),
        "stimuli": json.dumps(sources),
        "scale": json.dumps([list(s) for s in SCALE]),
    }


# --------------------------------------------------------------------------- statistics


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a, b, x):
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 9)`` = 2.262), by bisection."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def mean_ci(values, confidence=0.95):
    """``(mean, half width of the confidence interval, sample std)``; the width is None for n < 2."""
    n = len(values)
    mean = sum(values) / float(n)
    if n < 2:
        return mean, None, None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n), std


# --------------------------------------------------------------------------- score


def load_key(path):
    """The key written by :func:`prepare`."""
    if not os.path.isfile(str(path)):
        raise InputNotFoundError("MOS key %s does not exist — it is the key.json that `edgerestore mos prepare` "
                                 "wrote next to page/" % path)
    with open(str(path)) as handle:
        key = json.load(handle)
    if key.get("format") != KEY_FORMAT:
        raise UnsupportedInputError("%s is not a MOS key (format %r)" % (path, key.get("format")))
    return key


def find_key(csv_paths):
    """key.json beside the first CSV or one folder up, or None."""
    folder = os.path.dirname(os.path.abspath(str(csv_paths[0])))
    for candidate in (os.path.join(folder, "key.json"), os.path.join(os.path.dirname(folder), "key.json")):
        if os.path.isfile(candidate):
            return candidate
    return None


def read_ratings(paths, key):
    """``[{rater, stimulus, score, method, image}]`` from ratings CSVs; the last rating of a rater for a
    stimulus wins. Bad lines raise with the file and line number."""
    latest = {}
    for path in paths:
        if not os.path.isfile(str(path)):
            raise InputNotFoundError("ratings file %s does not exist" % path)
        with open(str(path), newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(("stimulus", "score")) - set(reader.fieldnames or ())
            if missing:
                raise UnsupportedInputError("%s has no %s column(s) — is it a ratings CSV from the MOS page?"
                                            % (path, ", ".join(sorted(missing))))
            for line, record in enumerate(reader, start=2):
                session = (record.get("session") or "").strip()
                if session and session != key["session"]:
                    raise UnsupportedInputError("%s line %d: session %s, but the key is for session %s — pass the "
                                                "key.json of that session" % (path, line, session, key["session"]))
                stimulus = (record.get("stimulus") or "").strip()
                if stimulus not in key["stimuli"]:
                    raise UnsupportedInputError("%s line %d: stimulus %r is not in the key" % (path, line, stimulus))
                try:
                    score = int(float(record["score"]))
                except (TypeError, ValueError):
                    score = None
                if score is None or not 1 <= score <= 5:
                    raise UnsupportedInputError("%s line %d: score %r is not 1-5" % (path, line, record["score"]))
                rater = (record.get("rater") or "").strip() or os.path.basename(str(path))
                info = key["stimuli"][stimulus]
                latest[(rater, stimulus)] = {"rater": rater, "stimulus": stimulus, "score": score,
                                             "method": info["method"], "image": info["image"]}
    if not latest:
        raise UnsupportedInputError("no ratings in %s" % ", ".join(map(str, paths)))
    return list(latest.values())


def score(ratings, confidence=0.95):
    """Per method: MOS, 95% CI half width and bounds, std, ratings, raters; best MOS first."""
    by_method = {}
    for r in ratings:
        by_method.setdefault(r["method"], []).append(r)
    out = []
    for method, rows in by_method.items():
        mean, half, std = mean_ci([r["score"] for r in rows], confidence)
        out.append({
            "method": method, "mos": mean, "ci95": half, "low": None if half is None else mean - half,
            "high": None if half is None else mean + half, "std": std, "ratings": len(rows),
            "raters": len(set(r["rater"] for r in rows)), "images": len(set(r["image"] for r in rows)),
        })
    out.sort(key=lambda row: (-row["mos"], row["method"]))
    return out


def format_scores(rows):
    """A Markdown table of :func:`score`'s rows."""
    lines = ["| Method | MOS | 95% CI | ± | std | ratings | raters |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = "—" if r["ci95"] is None else "%.2f – %.2f" % (r["low"], r["high"])
        pm = "—" if r["ci95"] is None else "%.2f" % r["ci95"]
        std = "—" if r["std"] is None else "%.2f" % r["std"]
        lines.append("| %s | %.2f | %s | %s | %s | %d | %d |" % (r["method"], r["mos"], ci, pm, std, r["ratings"],
                                                                   r["raters"]))
    return "\n".join(lines)
