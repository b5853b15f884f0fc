"""edgerestore report: tables, plots, a self-contained HTML page that a real browser renders."""

import copy
import json
import re

import numpy as np
import pytest

from edgerestore.benchmarks import bench, report
from tests.bench_helpers import chromium, screenshot


@pytest.fixture(scope="module")
def results(tiny_models, small_evalset):
    """Two real runs: this machine, and the same models run again under another label (a second board)."""
    models, loaded = tiny_models, small_evalset
    out = []
    for label, threads in (("board A", 1), ("board B", 2)):
        candidates = (bench.baseline_candidates(["none", "unsharp", "bilateral"])
                      + bench.discover([models["fp32"], models["int8"], models["corrupt"]]))
        out.append(bench.run_bench(candidates, sizes=[(64, 48), (96, 64)], frames=6, warmup=1, threads=threads,
                                   evalset=loaded, label=label, command="pytest %s" % label))
    return out


@pytest.fixture(scope="module")
def rendered(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("rendered")
    paths = report.render_report(results, str(out))
    return out, paths


def test_table_has_status_size_metric_and_speed(results):
    board = report.merge(results)[0]
    header, rows = report.table_rows(board)
    assert header[:5] == ["Method", "Backend", "Precision", "Status", "Size (MB)"]
    assert "PSNR mild (dB)" in header and "PSNR gopro (dB)" in header
    assert header[-4:] == ["ms/frame 64x48", "FPS 64x48", "ms/frame 96x64", "FPS 96x64"]
    by_key = {"/".join(r[:3]): r for r in rows}
    assert [r[0] for r in rows][:3] == ["none", "unsharp", "bilateral"]  # baselines first, floor up
    assert by_key["tiny/onnxruntime/int8"][3] == "✅ ok"
    assert by_key["corrupt/onnxruntime/fp32"][3] == "❌ failed"
    assert by_key["corrupt/onnxruntime/fp32"][-1] == "❌"
    int8_row = [r for r in results[0]["rows"] if r["id"] == "tiny/onnxruntime/int8/96x64"][0]
    assert by_key["tiny/onnxruntime/int8"][-1] == report._fps(int8_row["fps"])
    assert by_key["tiny/onnxruntime/int8"][-2] == "%.2f" % int8_row["latency_ms"]["p50"]
    none_psnr = results[0]["rows"][0]["quality"]["vs_ground_truth"]["mild"]["psnr"]
    assert by_key["none/numpy/—"][5] == "%.2f" % none_psnr
    unsharp = [r for r in results[0]["rows"] if r["method"] == "unsharp"][0]["quality"]["vs_ground_truth"]["mild"]
    assert by_key["unsharp/opencv/—"][5] == "%.2f (%+.2f)" % (unsharp["psnr"], unsharp["psnr"] - none_psnr)


def test_parity_status_shows_as_warning(results):
    doc = copy.deepcopy(results[0])
    for row in doc["rows"]:
        if row["precision"] == "int8":
            row["status"] = "exported-but-failed-parity"
    header, rows = report.table_rows(report.merge([doc])[0])
    assert [r[3] for r in rows if r[2] == "int8"] == ["❎ exported-but-failed-parity"]


def test_merge_many_boards_and_runs(results):
    boards = report.merge(results)
    assert [b.label for b in boards] == ["board A", "board B"]
    # A later run of the same board replaces its rows and keeps the list of runs.
    later = copy.deepcopy(results[0])
    later["created"] = "2099-01-01T00:00:00Z"
    for row in later["rows"]:
        if row["fps"]:
            row["fps"] = 12345.0
    merged = report.merge(results + [later])
    assert len(merged) == 2 and len(merged[0].results) == 2
    assert merged[0].lines["tiny/onnxruntime/fp32"][(64, 48)]["fps"] == 12345.0
    text = report.markdown_table(results)
    assert text.count("### board") == 2


def test_pareto_front():
    points = [(100.0, 26.0), (50.0, 27.0), (60.0, 25.0), (10.0, 28.0), (10.0, 26.5), (200.0, 24.0)]
    front = report.pareto_front(points)
    assert front == [5, 0, 1, 3]  # fastest first; (60, 25) and (10, 26.5) are dominated


def test_render_writes_markdown_html_and_plots(rendered):
    out, paths = rendered
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "## board A" in md and "## board B" in md
    assert "| tiny | onnxruntime | int8 | ✅ ok" in md
    assert "`corrupt/onnxruntime/fp32`: BackendUnavailableError" in md
    for name in ("fps", "quality_speed", "latency"):
        assert "(plots/%s.png)" % name in md
    import cv2

    for path in paths["plots"]:
        image = cv2.imread(path)
        assert image is not None and image.shape[0] > 200 and image.std() > 10
    page = open(paths["html"], encoding="utf-8").read()
    assert page.count('src="data:image/png;base64,') == 3
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<table>" in page and "❌ failed" in page


def test_cli_report(cli, results, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for index, result in enumerate(results):
        bench.write_result(result, folder / ("r%d.json" % index))
    res = cli("report", folder, "--out", tmp_path / "rep", "--size", "64x48")
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "plots" / "latency.png").is_file()
    assert "### board A" in res.stdout and "wrote" in res.stdout
    (tmp_path / "bad.json").write_text(json.dumps({"format": "edgerestore-bench", "version": 1}))
    res = cli("report", tmp_path / "bad.json", check=False)
    assert res.returncode != 0 and res.stderr.startswith("error: invalid bench result")
    res = cli("report", tmp_path / "none-here.json", check=False)
    assert res.returncode == 2 and "edgerestore bench" in res.stderr


@pytest.mark.browser
def test_chromium_renders_the_page_with_its_plots(rendered, tmp_path):
    if not chromium():
        pytest.skip("chromium is not installed (apt install chromium)")
    out, paths = rendered
    shot = screenshot("file://%s" % paths["html"], tmp_path / "shot.png", tmp_path / "profile", size=(1400, 4000))
    assert shot.std() > 20, "the page rendered blank"
    # matplotlib's default blue (#1f77b4) and orange (#ff7f0e) bars and markers are on screen: the
    # base64 plots decoded and were drawn, not just the tables.
    blue = np.all(np.abs(shot.astype(int) - [0x1F, 0x77, 0xB4]) < 12, axis=2).sum()
    orange = np.all(np.abs(shot.astype(int) - [0xFF, 0x7F, 0x0E]) < 12, axis=2).sum()
    assert blue > 2000 and orange > 500, (blue, orange)
