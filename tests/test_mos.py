"""The MOS kit: a blind rating page that real Chromium runs offline, and MOS with a t-based 95% CI."""

import csv
import functools
import http.server
import json
import math
import re
import shutil
import threading

import pytest

from edgerestore.benchmarks import evalset, mos
from edgerestore.benchmarks.baselines import create_baseline
from edgerestore.errors import InputNotFoundError, UnsupportedInputError
from tests.bench_helpers import chromium, dump_dom, make_small_evalset, screenshot

# Student's t 0.975 quantiles from statistical tables.
T975 = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 29: 2.045, 120: 1.980}


@pytest.mark.parametrize("df, expected", sorted(T975.items()))
def test_t_quantile_matches_the_tables(df, expected):
    assert mos.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert mos.t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-3)


def test_t_quantile_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 7, 25, 400):
        for p in (0.6, 0.9, 0.975, 0.995):
            assert mos.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-7)


def test_mean_ci():
    mean, half, std = mos.mean_ci([4, 5, 3, 4, 4, 5, 2, 4, 3, 4])
    assert mean == pytest.approx(3.8)
    assert std == pytest.approx(math.sqrt(sum((v - 3.8) ** 2 for v in [4, 5, 3, 4, 4, 5, 2, 4, 3, 4]) / 9))
    assert half == pytest.approx(2.262157 * std / math.sqrt(10))
    assert mos.mean_ci([3]) == (3.0, None, None)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, data_dir):
    base = tmp_path_factory.mktemp("mos")
    folder = str(make_small_evalset(base / "eval", data_dir, crop=96))
    pairs = evalset.load_evalset(folder)
    methods = [(name, create_baseline(name).infer) for name in ("none", "unsharp", "bilateral")]
    key = mos.prepare(str(base / "kit"), pairs, methods, seed=3, title="Test rating")
    return base / "kit", key, pairs


def test_prepare_writes_a_blind_page_and_a_key(kit):
    out, key, pairs = kit
    stimuli = sorted(p.stem for p in (out / "page" / "stimuli").glob("*.png"))
    assert stimuli == sorted(key["stimuli"])
    assert len(stimuli) == len(pairs) * 4  # three methods + the hidden reference
    assert key["methods"] == ["none", "unsharp", "bilateral", "reference"]
    assert {v["method"] for v in key["stimuli"].values()} == set(key["methods"])
    page = (out / "page" / "index.html").read_text()
    # Blind: no method or image name anywhere in what raters get (the CSS keyword display:none aside).
    text = page.replace("display:none", "")
    for word in ("none", "unsharp", "bilateral", "reference", "chelsea", "gopro", "Flower", "Istanbul"):
        assert not re.search(r"\b%s\b" % word, text), word
    assert not (out / "page" / "key.json").exists()
    # The stimuli are what the methods produce.
    import cv2

    for ident, info in key["stimuli"].items():
        if info["method"] == "reference":
            pair = [p for p in pairs if "%s/%s" % (p.subset, p.name) == info["image"]][0]
            got = cv2.imread(str(out / "page" / "stimuli" / (ident + ".png")))[:, :, ::-1]
            assert (got == pair.clean).all()


def test_prepare_refuses_duplicate_names(tmp_path, kit):
    _, _, pairs = kit
    fn = create_baseline("none").infer
    with pytest.raises(UnsupportedInputError):
        mos.prepare(str(tmp_path), pairs, [("a", fn), ("a", fn)])
    with pytest.raises(InputNotFoundError):
        mos.prepare(str(tmp_path), [], [("a", fn)])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


HARNESS = """<!DOCTYPE html><html><body><iframe id="f" src="index.html" width="900" height="700"></iframe>
<pre id="out">pending</pre><script>
var f = document.getElementById("f");
f.onload = function () {
  var d = f.contentDocument;
  d.getElementById("rater").value = "tester one";
  d.getElementById("start").click();
  var n = 0;
  while (d.getElementById("trial").className !== "hidden" && n < 500) {
    var img = d.getElementById("stimulus").getAttribute("src");
    // Each score derives from the stimulus id, so the test can check every rating came through.
    var score = (parseInt(img.replace(/^.*\\//, "").slice(0, 8), 16) % 5) + 1;
    d.querySelector('#scale button[data-score="' + score + '"]').click();
    n++;
  }
  document.getElementById("out").textContent = "CSV-START\\n" + d.getElementById("csv").value + "CSV-END";
};
</script></body></html>"""


@pytest.mark.browser
def test_rating_in_chromium_exports_a_csv_that_scores(kit, tmp_path):
    if not chromium():
        pytest.skip("chromium is not installed (apt install chromium)")
    out, key, _ = kit
    served = tmp_path / "served"
    shutil.copytree(out / "page", served)
    (served / "harness.html").write_text(HARNESS)
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dom = dump_dom("http://127.0.0.1:%d/harness.html" % server.server_address[1], tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()
    match = re.search(r"<pre id=\"out\">CSV-START\n(.*?)CSV-END</pre>", dom, re.S)
    assert match, dom[-2000:]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(match.group(1))
    records = list(csv.DictReader(ratings.open()))
    assert len(records) == len(key["stimuli"]), match.group(1)
    assert {r["stimulus"] for r in records} == set(key["stimuli"])
    assert {r["session"] for r in records} == {key["session"]} and {r["rater"] for r in records} == {"tester one"}
    assert sorted(int(r["position"]) for r in records) == list(range(1, len(records) + 1))
    for r in records:
        assert int(r["score"]) == int(r["stimulus"], 16) % 5 + 1
    # Scoring the browser's CSV gives each method the mean of the scores its stimuli got.
    rows = {r["method"]: r for r in mos.score(mos.read_ratings([str(ratings)], key))}
    for method in key["methods"]:
        scores = [int(i, 16) % 5 + 1 for i, v in key["stimuli"].items() if v["method"] == method]
        assert rows[method]["mos"] == pytest.approx(sum(scores) / float(len(scores)))
        assert rows[method]["ratings"] == len(scores) and rows[method]["raters"] == 1


@pytest.mark.browser
def test_rating_page_renders_offline_from_file(kit, tmp_path):
    if not chromium():
        pytest.skip("chromium is not installed (apt install chromium)")
    out, _, _ = kit
    shot = screenshot("file://%s" % (out / "page" / "index.html"), tmp_path / "page.png", tmp_path / "profile",
                      size=(900, 700))
    assert shot.std() > 20  # the intro panel on its grey background, not a blank page


def _write_csv(path, rows, header=("session", "rater", "stimulus", "score")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_score_two_raters_with_ci(kit, tmp_path):
    _, key, _ = kit
    by_method = {}
    for ident, info in sorted(key["stimuli"].items()):
        by_method.setdefault(info["method"], []).append(ident)
    wanted = {"reference": [5, 4], "none": [2, 2], "unsharp": [3, 2], "bilateral": [3, 4]}
    rows_a, rows_b = [], []
    for method, (a, b) in wanted.items():
        for ident in by_method[method]:
            rows_a.append((key["session"], "ann", ident, a))
            rows_b.append((key["session"], "bob", ident, b))
    rows_a.append((key["session"], "ann", by_method["none"][0], 1))  # a changed mind: the last one counts
    files = [_write_csv(tmp_path / "a.csv", rows_a), _write_csv(tmp_path / "b.csv", rows_b)]
    scored = {r["method"]: r for r in mos.score(mos.read_ratings([str(f) for f in files], key))}
    n = len(by_method["reference"])
    ref = scored["reference"]
    assert ref["mos"] == pytest.approx(4.5) and ref["ratings"] == 2 * n and ref["raters"] == 2
    values = [5] * n + [4] * n
    mean, half, _ = mos.mean_ci(values)
    assert ref["ci95"] == pytest.approx(half) and ref["low"] == pytest.approx(4.5 - half)
    none_scores = [1] + [2] * (n - 1) + [2] * n
    assert scored["none"]["mos"] == pytest.approx(sum(none_scores) / float(len(none_scores)))
    assert [r["method"] for r in mos.score(mos.read_ratings([str(f) for f in files], key))][0] == "reference"
    table = mos.format_scores(list(scored.values()))
    assert "| reference | 4.50 |" in table


def test_score_rejects_bad_files(kit, tmp_path):
    _, key, _ = kit
    ident = sorted(key["stimuli"])[0]
    cases = [
        ([(key["session"], "x", "deadbeef", 3)], "not in the key"),
        ([(key["session"], "x", ident, 7)], "not 1-5"),
        ([(key["session"], "x", ident, "good")], "not 1-5"),
        ([("0badcafe", "x", ident, 3)], "session"),
    ]
    for rows, message in cases:
        path = _write_csv(tmp_path / "bad.csv", rows)
        with pytest.raises(UnsupportedInputError, match=message):
            mos.read_ratings([str(path)], key)
    path = _write_csv(tmp_path / "nocol.csv", [("a", "b")], header=("rater", "value"))
    with pytest.raises(UnsupportedInputError, match="stimulus"):
        mos.read_ratings([str(path)], key)


def test_cli_mos_prepare_and_score(cli, kit, tmp_path, data_dir):
    folder = make_small_evalset(tmp_path / "eval", data_dir, crop=64)
    out = tmp_path / "kit"
    res = cli("mos", "prepare", "--evalset", folder, "--baselines", "none,unsharp", "--subset", "gopro", "--out", out,
              "--seed", "5")
    key = json.loads((out / "key.json").read_text())
    from edgerestore.weights import shipped_presets

    methods = ["none", "unsharp"] + shipped_presets() + ["reference"]  # MODELS default: the shipped presets
    assert "%d stimuli (2 images x %d methods: %s)" % (2 * len(methods), len(methods), ", ".join(methods)) in res.stdout
    rows = [(key["session"], "cli", ident, 5 if info["method"] == "reference" else 2)
            for ident, info in key["stimuli"].items()]
    _write_csv(out / "ratings.csv", rows)
    res = cli("mos", "score", out / "ratings.csv", "--json", tmp_path / "scores.json")  # key.json found beside
    assert "| reference | 5.00 |" in res.stdout and "| none | 2.00 |" in res.stdout
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert saved["methods"][0]["method"] == "reference"
    res = cli("mos", "score", tmp_path / "missing.csv", "--key", out / "key.json", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error:")
    res = cli("mos", "prepare", "no-such-model", "--evalset", folder, "--out", tmp_path / "x", check=False)
    assert res.returncode == 2 and "unknown preset 'no-such-model'" in res.stderr
