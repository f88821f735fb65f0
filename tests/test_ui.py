"""The web UI (tracking/servers/ui) in real headless Chromium, on a store filled by a real
Prefect flow.

The browser is Debian's chromium (`apt-get install -y chromium`), driven by Playwright's Python
API; every browser test fails on a console error, a page error or a JavaScript dialog. Screenshots
of the main pages land in $TRACKFLOW_SCREENSHOTS (default: a folder under the system temp folder);
`TRACKFLOW_SCREENSHOTS=docs/screenshots python -m pytest tests/test_ui.py` refreshes the README's.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect
from server_process import start_server, stop_server

import tracking
from flows import flow
from tasks import task
from tracking import state
from tracking.entities import Metric, Param, RunTag

CHROMIUM = "/usr/bin/chromium"
BENCH_UI = Path(__file__).parent.parent / "bench" / "bench_ui.py"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
SCREENSHOTS = Path(
    os.environ.get("TRACKFLOW_SCREENSHOTS") or Path(tempfile.gettempdir()) / "trackflow-screenshots"
)
XSS = "<script>alert(1)</script>"
XSS_FILE = "<img src=x onerror=alert(1)>.txt"
NOTE = "Nightly demo pipeline.\nTrains with the given learning rate; <b>not bold</b>."
EXPERIMENT = "ui-demo"
CSV_TEXT = (
    "sepal_length,sepal_width,species\n5.1,3.5,setosa\n6.2,2.9,versicolor\n7.7,3.0,virginica\n"
)


# --------------------------------------------------------------------------- the tracked flow


@task
def prepare_data(n_rows: int) -> dict:
    tracking.log_text(CSV_TEXT, "data/train.csv")
    tracking.log_dict({"model": {"kind": "forest", "depth": 4}, "seed": 7}, "config.yaml")
    tracking.log_dict({"rows": n_rows, "classes": ["setosa", "versicolor"]}, "summary.json")
    tracking.log_text("first line\nsecond line\n", "notes.txt")
    tracking.log_text("escaped file name\n", XSS_FILE)
    tracking.log_image(_gradient(), "images/sample.png")
    return {"rows": n_rows}


def _gradient() -> Any:
    import numpy as np

    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, np.full_like(x, 160)], axis=-1).astype("uint8")


@task
def evaluate(lr: float) -> dict:
    return {"val_accuracy": round(0.9 - lr, 4)}


@task
def train(lr: float, epochs: int) -> dict:
    loss = 1.0
    for step in range(epochs):
        loss *= 1 - lr * 2
        tracking.log_metric("loss", loss, step=step)
        tracking.log_metric("accuracy", 1 - loss / 2, step=step)
    evaluate(lr)  # a task inside a task: depth 2 below the flow run
    return {"final_loss": loss}


@flow(name=EXPERIMENT, run_tags={"note": XSS, "team": "vision"})
def ui_demo(lr: float = 0.1, epochs: int = 6, comment: str = XSS, seed: int = 42) -> str:
    tracking.set_tag("mlflow.note.content", NOTE)
    prepare_data(3)
    train(lr, epochs)
    for step in range(3):
        tracking.log_metric("throughput", 100 + 10 * step + lr * 100, step=step)
    return tracking.active_run().info.run_id


@dataclass
class UIStore:
    root: Path
    uri: str
    experiment_id: str
    flow_run_ids: list[str]
    safety_run_id: str


@pytest.fixture(scope="module")
def ui_store(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStore]:
    root = tmp_path_factory.mktemp("ui") / "mlruns"
    tracking.set_tracking_uri(str(root))
    try:
        flow_run_ids = [ui_demo(lr=0.1), ui_demo(lr=0.05, epochs=8, comment="second")]
        client = tracking.TrackingClient(str(root))
        experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
        _scheduled_runs(client, experiment_id)
        safety_run_id = _safety_run(client)
    finally:
        state.reset()
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield UIStore(root, str(root), experiment_id, flow_run_ids, safety_run_id)


def _scheduled_runs(client: tracking.TrackingClient, experiment_id: str) -> None:
    """Flow runs as a deployment's schedule leaves them (same tags as flows.flow_run_tags)."""
    day = 24 * 3600 * 1000
    start = int(time.time() * 1000) - 6 * day
    for i in range(6):
        moment = time.strftime("%Y-%m-%dT03:00:00+00:00", time.gmtime((start + i * day) / 1000))
        run = client.create_run(
            experiment_id,
            start_time=start + i * day,
            run_name=f"nightly-{i}",
            tags={
                "prefect.scheduled_start_time": moment,
                "prefect.deployment_name": "nightly",
                "prefect.auto_scheduled": "true",
            },
        )
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("accuracy", 0.8 + i * 0.02, start + i * day, 0)],
            params=[Param("lr", "0.1")],
        )
        client.set_terminated(run.info.run_id, "FINISHED", start + i * day + 60_000)


def _safety_run(client: tracking.TrackingClient) -> str:
    """A run whose artifact folder holds a symlink that points out of it."""
    experiment_id = client.create_experiment("ui-safety")
    run = client.create_run(experiment_id, run_name="safety")
    client.log_text(run.info.run_id, "inside\n", "inside.txt")
    artifact_dir = Path(client.get_artifact_uri(run.info.run_id).removeprefix("file://"))
    os.symlink(artifact_dir.parent / "meta.yaml", artifact_dir / "escape.txt")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


# --------------------------------------------------------------------------- server and browser


@dataclass
class Served:
    url: str
    server: Any
    thread: threading.Thread


def _serve(app: Any) -> Served:
    from tracking.servers.listen import bind
    from tracking.servers.ui.cli import make_server

    sock = bind("127.0.0.1", 0)
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)


def _stop(served: Served) -> None:
    served.server.should_exit = True
    served.thread.join(15)
    assert not served.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def ui_url(ui_store: UIStore) -> Iterator[str]:
    from tracking.servers.ui import create_ui_app

    served = _serve(create_ui_app(ui_store.uri))
    yield served.url
    _stop(served)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Problems(list):
    """Console errors, page errors and dialogs seen by a page."""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = Problems()
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else 0
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.problems = problems
    page.set_default_timeout(15_000)
    yield page
    page.wait_for_timeout(100)  # late errors of the last action
    context.close()
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


def shot(page: Any, name: str, full_page: bool = False, element: str | None = None) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"{name}.png")
    if element:
        page.locator(element).screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=full_page)


def wait_chart(page: Any, selector: str) -> None:
    page.wait_for_selector(f"{selector} .main-svg", state="attached")


# --------------------------------------------------------------------------- browser journeys


def test_experiments_list_and_search(page: Any, ui_url: str, ui_store: UIStore) -> None:
    page.goto(ui_url + "/")
    row = page.locator("#experiments tbody tr", has_text=EXPERIMENT)
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == ui_store.experiment_id
    # 2 flow runs x (flow + prepare_data + train + evaluate) + 6 scheduled runs
    assert cells.nth(2).inner_text() == "14"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells.nth(3).inner_text())
    shot(page, "experiments")

    page.fill("input[name=q]", "DEMO")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=DEMO"))
    names = page.locator("#experiments tbody td:first-child").all_inner_texts()
    assert names == [EXPERIMENT]

    page.fill("input[name=q]", "name = 'ui-safety'")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=name"))
    assert page.locator("#experiments tbody td:first-child").all_inner_texts() == ["ui-safety"]

    page.fill("input[name=q]", "name = ")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".error")
    assert "expected a value" in page.inner_text(".error")


def test_experiment_tree_filter_sort_and_escaping(
    page: Any, ui_url: str, ui_store: UIStore
) -> None:
    page.goto(ui_url + "/")
    page.click(f"#experiments a:text-is('{EXPERIMENT}')")
    page.wait_for_selector("#runs-table")
    assert page.locator("h1").inner_text() == EXPERIMENT

    top = page.locator("#runs-table tbody tr[data-depth='0']")
    assert top.count() == 8  # the 2 flow runs and the 6 scheduled runs
    nested = page.locator("#runs-table tbody tr.nested")
    assert nested.count() == 6 and all(not r.is_visible() for r in nested.all())

    flow_row = page.locator(f"tr[data-id='{ui_store.flow_run_ids[0]}']")
    flow_row.locator("button.toggle").click()
    children = page.locator(f"tr[data-parent='{ui_store.flow_run_ids[0]}']")
    assert children.count() == 2 and all(r.is_visible() for r in children.all())
    names = children.locator("td.name-col a").all_inner_texts()
    assert {n.split("-")[0] for n in names} == {"prepare_data", "train"}
    train_row = children.filter(has_text="train")
    train_row.locator("button.toggle").click()
    grandchild = page.locator(
        f"tr[data-parent='{train_row.get_attribute('data-id')}'][data-depth='2']"
    )
    assert grandchild.is_visible() and "evaluate" in grandchild.inner_text()

    # the tag value is shown as text, never run: the page fixture fails on the alert
    note_cells = page.locator("td[data-col='tag:note']")
    assert XSS in note_cells.all_inner_texts()
    assert page.locator("script", has_text="alert(1)").count() == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    page.click("#expand-all")
    shot(page, "experiment")
    page.click("#collapse-all")
    assert not grandchild.is_visible()

    # the column menu hides a column, and remembers it
    page.click("#columns-menu summary")
    page.uncheck("input[data-column='param:comment']")
    assert not page.locator("td[data-col='param:comment']").first.is_visible()
    page.reload()
    assert not page.locator("th[data-col='param:comment']").is_visible()
    page.click("#columns-menu summary")
    page.check("input[data-column='param:comment']")
    assert page.locator("th[data-col='param:comment']").is_visible()
    page.click("h1")  # closes the menu

    # sort by a metric column, both ways
    page.click("th[data-col='metric:throughput'] a")
    page.wait_for_url(re.compile(r"sort=metric%3Athroughput&dir=desc"))
    first = page.locator("#runs-table tbody tr[data-depth='0']").first
    assert first.get_attribute("data-id") == ui_store.flow_run_ids[0]  # lr 0.1: more throughput
    page.click("th[data-col='metric:throughput'] a")
    page.wait_for_url(re.compile(r"dir=asc"))
    first = page.locator("#runs-table tbody tr[data-depth='0']").first
    assert first.get_attribute("data-id") == ui_store.flow_run_ids[1]

    # the filter box takes the search grammar; errors are shown in the page
    page.fill("input[name=filter]", "params.lr = '0.05'")
    page.press("input[name=filter]", "Enter")
    page.wait_for_url(re.compile(r"filter="))
    ids = page.locator("#runs-table tbody tr[data-depth='0']").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    assert ids == [ui_store.flow_run_ids[1]]
    page.fill("input[name=filter]", "metrics.accuracy >> 1 OR x")
    page.press("input[name=filter]", "Enter")
    page.wait_for_selector(".error")
    error = page.inner_text(".error")
    assert "Invalid filter" in error and "position 18" in error and "^" in error
    page.fill("input[name=filter]", "tags.`prefect.task_name` = 'evaluate'")
    page.press("input[name=filter]", "Enter")
    page.wait_for_selector(".hint")
    page.click(".hint a")  # nested runs match: the flat view shows them
    page.wait_for_url(re.compile(r"view=flat"))
    rows = page.locator("#runs-table tbody tr[data-id]")
    assert rows.count() == 2 and "evaluate" in rows.first.inner_text()


def test_run_page(page: Any, ui_url: str, ui_store: UIStore) -> None:
    run_id = ui_store.flow_run_ids[0]
    page.goto(f"{ui_url}/experiments/{ui_store.experiment_id}")
    page.click(f"tr[data-id='{run_id}'] td.name-col a")
    page.wait_for_selector("#run-info")
    page.wait_for_load_state()  # the page's script ran: the package filter listens
    run = tracking.TrackingClient(ui_store.uri).get_run(run_id)
    assert page.locator("h1").inner_text() == run.info.run_name
    params = page.locator("table.kv", has=page.locator("caption", has_text="Parameters"))
    assert "comment" in params.inner_text() and XSS in params.inner_text()
    throughput = page.locator("#metrics-table tr", has_text="throughput").locator("td")
    assert throughput.all_inner_texts() == ["130", "110", "130", "3"]  # last, min, max, points
    assert page.inner_text("#description .note-text") == NOTE  # shown as text, not HTML
    prefect = page.locator("#prefect-link")
    assert prefect.get_attribute("href") == run.data.tags["prefect.ui_url"]
    assert "flow run" in prefect.inner_text()
    children = page.locator("#children-links a").all_inner_texts()
    assert len(children) == 2
    # the environment it ran in (tracking.run_environment), and how to run it again
    requirements = Path(
        tracking.TrackingClient(ui_store.uri).download_artifacts(
            run_id, "environment/requirements.txt", tempfile.mkdtemp()
        )
    ).read_text()
    assert page.inner_text("#env-python") == platform.python_version()
    assert page.inner_text("#env-package-count") == str(len(requirements.splitlines()))
    page.click("#env-packages summary")
    page.fill("#package-filter", "pyyaml")
    wanted = [line for line in requirements.splitlines() if "pyyaml" in line.lower()]
    assert f"PyYAML=={metadata.version('pyyaml')}" in wanted  # and types-PyYAML, if installed
    expect(page.locator("#package-list li:visible")).to_have_text(wanted)  # waits for the filter
    assert page.inner_text("#reproduce-command") == f"trackflow runs reproduce {run_id}"
    assert page.inner_text("#env-commit").startswith(run.data.tags["mlflow.source.git.commit"])
    dirty = run.data.tags["trackflow.git.dirty"] == "true"
    assert page.inner_text("#env-dirty").startswith("dirty" if dirty else "clean")
    wait_chart(page, ".chart[data-metric='throughput']")
    assert page.locator(".chart[data-metric] .main-svg").count() >= 2
    shot(page, "run", full_page=True)
    page.check("input[name=xaxis][value=time]")
    page.wait_for_function(
        "() => document.querySelector('.chart[data-metric=throughput]').layout.xaxis.type"
        " === 'date'"
    )

    # a task run: link to its task run in Prefect, derived from the flow run's URL
    page.click("#children-links a:has-text('train')")
    page.wait_for_selector("#run-info")
    task_run = tracking.TrackingClient(ui_store.uri).search_runs(
        [ui_store.experiment_id],
        f"tags.`mlflow.parentRunId` = '{run_id}' AND tags.`prefect.task_name` = 'train'",
    )[0]
    base = run.data.tags["prefect.ui_url"].split("/runs/flow-run/")[0]
    expected = f"{base}/runs/task-run/{task_run.data.tags['prefect.task_run_id']}"
    assert page.get_attribute("#prefect-link", "href") == expected
    assert page.inner_text("#parent-link") == run.info.run_name
    wait_chart(page, ".chart[data-metric='loss']")
    loss = page.locator(".chart[data-metric='loss']").evaluate("div => div.data[0].y.length")
    assert loss == 6
    page.click("#parent-link a")
    page.wait_for_url(re.compile(run_id))


def test_artifact_browser_previews(page: Any, ui_url: str, ui_store: UIStore) -> None:
    client = tracking.TrackingClient(ui_store.uri)
    prepare = client.search_runs(
        [ui_store.experiment_id],
        f"tags.`mlflow.parentRunId` = '{ui_store.flow_run_ids[0]}' "
        "AND tags.`prefect.task_name` = 'prepare_data'",
    )[0]
    page.goto(f"{ui_url}/runs/{prepare.info.run_id}")
    files = page.locator("#artifact-list")
    assert XSS_FILE in files.inner_text()  # an odd file name, escaped
    preview = page.locator("#artifact-preview")

    files.locator("a[data-preview='summary.json']").click()
    page.wait_for_selector("#artifact-preview .preview[data-kind=json]")
    assert '"classes": [\n    "setosa"' in preview.locator("pre").inner_text()
    assert "artifact=summary.json" in page.url

    files.locator("a[data-preview='config.yaml']").click()
    page.wait_for_selector("#artifact-preview .preview[data-kind=yaml]")
    assert "kind: forest" in preview.locator("pre").inner_text()

    files.locator("a[data-preview='notes.txt']").click()
    page.wait_for_selector("#artifact-preview .preview[data-kind=text]")
    assert preview.locator("pre").inner_text() == "first line\nsecond line\n"

    files.locator(f"a[data-preview='{XSS_FILE}']").click()
    page.wait_for_selector("#artifact-preview .preview[data-kind=text]")
    assert preview.locator("strong").inner_text() == XSS_FILE

    files.locator("a[data-dir='data']").click()
    page.wait_for_selector("#artifact-list a[data-preview='data/train.csv']")
    files.locator("a[data-preview='data/train.csv']").click()
    page.wait_for_selector("#artifact-preview table.csv")
    header = preview.locator("table.csv thead th").all_inner_texts()
    assert header == ["sepal_length", "sepal_width", "species"]
    assert preview.locator("table.csv tbody tr").count() == 3
    assert preview.locator("table.csv tbody tr").last.locator("td").last.inner_text() == "virginica"
    shot(page, "artifacts", element="#artifacts")

    with page.expect_download() as download_info:
        preview.locator("a:has-text('Download')").click()
    download = download_info.value
    assert download.suggested_filename == "train.csv"
    assert Path(download.path()).read_text() == CSV_TEXT

    files.locator("a[data-dir='']").first.click()
    page.wait_for_selector("#artifact-list a[data-dir='images']")
    files.locator("a[data-dir='images']").click()
    files.locator("a[data-preview='images/sample.png']").click()
    image = page.locator("#artifact-preview img.artifact-image")
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.artifact-image');"
        " return i && i.complete && i.naturalWidth === 64 && i.naturalHeight === 48 }"
    )

    # a reload keeps the previewed file; the full-page preview works without JavaScript too
    page.reload()
    page.wait_for_selector("#artifact-preview img.artifact-image")
    page.goto(f"{ui_url}/runs/{prepare.info.run_id}/artifacts/preview?path=data%2Ftrain.csv")
    assert page.locator("table.csv tbody tr").count() == 3


def test_compare_runs(page: Any, ui_url: str, ui_store: UIStore) -> None:
    first, second = ui_store.flow_run_ids
    page.goto(f"{ui_url}/experiments/{ui_store.experiment_id}")
    assert page.is_disabled("#compare-button")
    page.check(f"tr[data-id='{first}'] input[name=runs]")
    page.check(f"tr[data-id='{second}'] input[name=runs]")
    assert page.inner_text("#selected-count") == "2"
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/compare\?runs="))
    table = page.locator("#params-compare")
    lr = table.locator("tr[data-key='lr']")
    assert "diff" in (lr.get_attribute("class") or "")
    # runs in table order: newest first
    assert lr.locator("td").all_inner_texts() == ["0.05", "0.1"]
    comment = table.locator("tr[data-key='comment']")
    assert comment.locator("td").all_inner_texts() == ["second", XSS]
    same = table.locator("tbody tr.same")
    assert same.locator("th").first.inner_text() == "seed" and same.first.is_visible()
    page.check("#only-diff")
    assert not same.first.is_visible() and lr.is_visible()

    wait_chart(page, "#history-chart")
    page.wait_for_function("() => document.getElementById('history-chart').dataset.drawn")
    page.select_option("#history-metric", "throughput")
    page.wait_for_function(
        "() => document.getElementById('history-chart').dataset.drawn === 'throughput'"
    )
    traces = page.eval_on_selector("#history-chart", "d => d.data.map(t => t.y.length)")
    assert traces == [3, 3]
    wait_chart(page, "#parallel-chart")
    page.select_option("#parallel-metric", "throughput")
    page.wait_for_function(
        "() => document.getElementById('parallel-chart').dataset.drawn === 'throughput'"
    )
    dims = page.eval_on_selector("#parallel-chart", "d => d.data[0].dimensions.map(x => x.label)")
    assert dims[-1] == "throughput" and "lr" in dims and "epochs" in dims
    ticks = page.eval_on_selector(
        "#parallel-chart",
        "d => d.data[0].dimensions.find(x => x.label === 'comment').ticktext",
    )
    assert ticks == ["<script>alert(1)</scrip…", "second"]  # plain text, cut to fit
    page.uncheck("#only-diff")
    shot(page, "compare", full_page=True)


def test_scheduled_series(page: Any, ui_url: str, ui_store: UIStore) -> None:
    page.goto(f"{ui_url}/experiments/{ui_store.experiment_id}")
    page.click("a:has-text('Scheduled series')")
    page.wait_for_selector("#series-chart")
    wait_chart(page, "#series-chart")
    page.wait_for_function("() => document.getElementById('series-chart').dataset.drawn")
    values = page.eval_on_selector("#series-chart", "d => d.data[0].y")
    assert values == pytest.approx([0.8, 0.82, 0.84, 0.86, 0.88, 0.9])
    assert page.input_value("#series-metric") == "accuracy"
    shot(page, "series")
    page.goto(f"{ui_url}/experiments/{ui_store.experiment_id}/series?metric=nothing")
    assert "0 of 6 runs" in page.inner_text("main")


# --------------------------------------------------------------------------- safety over HTTP

LEAKS = re.compile(r"lifecycle_stage:|root:x:0:0|\[fonts\]")  # meta.yaml, passwd, win.ini
TRAVERSALS = [
    "../meta.yaml",
    "../../meta.yaml",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "data/../../meta.yaml",
    "..%2Fmeta.yaml",
    "%2e%2e/meta.yaml",
    "%252e%252e%252fmeta.yaml",
    "..\\meta.yaml",
    "C:/Windows/win.ini",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("route", ["preview", "raw", "download", ""])
def test_artifact_routes_never_leave_the_artifact_root(
    ui_url: str, ui_store: UIStore, route: str
) -> None:
    base = f"{ui_url}/runs/{ui_store.flow_run_ids[0]}/artifacts" + (f"/{route}" if route else "")
    http = httpx.Client()
    for path in TRAVERSALS:
        for url in (f"{base}?path={quote(path, safe='')}", f"{base}?path={path}"):
            response = http.get(url)
            assert response.status_code in (400, 404), (url, response.status_code)
            assert not LEAKS.search(response.text), url
    # a symlink inside the artifact folder that points outside it
    escape = f"{ui_url}/runs/{ui_store.safety_run_id}/artifacts"
    response = httpx.get(f"{escape}/{route or 'preview'}?path=escape.txt")
    assert response.status_code == 400 and "outside" in response.text
    assert not LEAKS.search(response.text)
    assert httpx.get(f"{escape}/raw?path=inside.txt").text == "inside\n"


def test_headers_escaping_and_errors(ui_url: str, ui_store: UIStore) -> None:
    run_page = httpx.get(f"{ui_url}/runs/{ui_store.flow_run_ids[0]}")
    assert run_page.status_code == 200
    assert XSS not in run_page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in run_page.text
    assert "script-src 'self'" in run_page.headers["content-security-policy"]
    assert "unsafe-inline" not in run_page.headers["content-security-policy"].split("style-src")[0]
    assert run_page.headers["x-content-type-options"] == "nosniff"
    assert re.match(r"app;dur=[\d.]+", run_page.headers["server-timing"])
    raw = httpx.get(f"{ui_url}/runs/{ui_store.flow_run_ids[0]}/artifacts/raw?path=x")
    assert raw.status_code == 404
    child = tracking.TrackingClient(ui_store.uri).search_runs(
        [ui_store.experiment_id], "tags.`prefect.task_name` = 'prepare_data'"
    )[0]
    html_file = httpx.get(f"{ui_url}/runs/{child.info.run_id}/artifacts/raw?path={quote(XSS_FILE)}")
    assert html_file.headers["content-type"].startswith("text/plain")
    assert html_file.headers["content-security-policy"].startswith("sandbox")
    download = httpx.get(f"{ui_url}/runs/{child.info.run_id}/artifacts/download?path=notes.txt")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.text == "first line\nsecond line\n"
    assert httpx.get(f"{ui_url}/runs/{'f' * 32}").status_code == 404
    assert httpx.get(f"{ui_url}/experiments/424242").status_code == 404
    bad_sort = httpx.get(f"{ui_url}/experiments/{ui_store.experiment_id}?sort=bogus:x")
    assert bad_sort.status_code == 200 and "Cannot sort by" in bad_sort.text
    plotly_js = httpx.get(f"{ui_url}/static/plotly.min.js")
    assert plotly_js.status_code == 200 and b"plotly" in plotly_js.content[:2000].lower()
    assert httpx.get(f"{ui_url}/static/..%2Fapp.py").status_code == 404
    assert httpx.get(f"{ui_url}/static/app.py").status_code == 404
    fragment = httpx.get(
        f"{ui_url}/runs/{child.info.run_id}/artifacts/preview?path=missing.txt&fragment=1"
    )
    assert fragment.status_code == 404 and "<html" not in fragment.text


def test_server_ui_shows_artifacts_only_under_its_roots(page: Any, tmp_path: Path) -> None:
    """`trackflow server`'s UI in the browser: a proxied run's artifacts browse and preview; a
    run whose experiment points outside the server's artifact roots (a folder chosen by a
    client) shows the refusal and nothing of what lies there."""
    backend = str(tmp_path / "mlruns")
    outside = tmp_path / "outside"
    local = tracking.TrackingClient(backend)
    planted_in = local.create_experiment("planted", artifact_location=outside.as_uri())
    planted = local.create_run(planted_in, run_name="planted", run_id=uuid.uuid4().hex)
    secret_dir = outside / planted.info.run_id / "artifacts"
    secret_dir.mkdir(parents=True)
    (secret_dir / "secret.txt").write_text("top secret")
    server = start_server(tmp_path / "srv", backend, "--artifacts-destination", str(tmp_path / "a"))
    try:
        remote = tracking.TrackingClient(server.url)
        run = remote.create_run(remote.create_experiment("proxied"), run_name="proxied")
        remote.log_text(run.info.run_id, "through the proxy\n", "notes.txt")
        page.goto(f"{server.url}/runs/{run.info.run_id}")
        page.locator("#artifact-list a[data-preview='notes.txt']").click()
        page.wait_for_selector("#artifact-preview .preview[data-kind=text]")
        assert page.locator("#artifact-preview pre").inner_text() == "through the proxy\n"

        page.goto(f"{server.url}/runs/{planted.info.run_id}")
        alert = page.locator("#artifact-list .error")
        assert "outside the locations this server serves" in alert.inner_text()
        assert page.locator("#artifact-list a[data-preview]").count() == 0
        assert "secret" not in page.locator("#artifacts").inner_text()
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log_text()


# --------------------------------------------------------------------------- stores and paths


def _nested_store(uri: str) -> tuple[tracking.TrackingClient, str, list[str]]:
    """An experiment of 30 top-level runs, each with a chain child -> grandchild."""
    client = tracking.TrackingClient(uri)
    experiment_id = client.create_experiment("tree")
    base = 1_700_000_000_000
    tops = []
    for i in range(30):
        top = client.create_run(experiment_id, start_time=base + i * 1000, run_name=f"top-{i:02d}")
        client.log_batch(
            top.info.run_id,
            metrics=[Metric("m", float(i % 7), base, 0)],
            params=[Param("p", str(i % 3))],
            tags=[RunTag("group", "odd" if i % 2 else "even")],
        )
        client.set_terminated(top.info.run_id, "FINISHED", base + i * 1000 + (i % 5) * 100)
        child = client.create_run(
            experiment_id,
            start_time=base + i * 1000 + 1,
            run_name=f"child-{i:02d}",
            tags={"mlflow.parentRunId": top.info.run_id},
        )
        client.create_run(
            experiment_id,
            start_time=base + i * 1000 + 2,
            run_name=f"grandchild-{i:02d}",
            tags={"mlflow.parentRunId": child.info.run_id},
        )
        tops.append(top.info.run_id)
    return client, experiment_id, tops


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_tree_pages_agree_across_store_paths(tmp_path: Path, kind: str) -> None:
    """The store's fast path (one pass over a file-store experiment, SQL queries) and the
    generic one every other store takes (ExperimentRuns itself: search_runs) give the same
    pages, in every order and view."""
    from tracking.servers.ui import data
    from tracking.stores.base import ExperimentRuns

    uri = str(tmp_path / "mlruns") if kind == "file" else f"sqlite:///{tmp_path}/ui.db"
    client, experiment_id, _tops = _nested_store(uri)
    store = client.store
    fast = store.experiment_runs(experiment_id)
    assert type(fast) is not ExperimentRuns  # both stores have a fast path
    generic = ExperimentRuns(store, experiment_id)
    sorts = [
        data.Sort.parse(None, None),
        data.Sort.parse("metric:m", "desc"),
        data.Sort.parse("param:p", "asc"),
        data.Sort.parse("tag:group", "asc"),
        data.Sort.parse("attr:run_name", "asc"),
        data.Sort.parse("duration", "desc"),
        data.Sort.parse("duration", "asc"),
    ]
    for sort in sorts:
        for filter_string in ("", "tags.group = 'odd'"):
            for tree in (True, False):
                pages = []
                for runs in (fast, generic):
                    page = data.runs_page(runs, filter_string, sort, 10, 8, tree)
                    pages.append(
                        [(r.run.info.run_name, r.depth, r.parent_id) for r in page.rows]
                        + [page.has_next]
                    )
                assert pages[0] == pages[1], (sort, filter_string, tree)
    default = data.runs_page(fast, "", sorts[0], 0, 2, True)
    assert [(r.run.info.run_name, r.depth) for r in default.rows] == [
        ("top-29", 0),
        ("child-29", 1),
        ("grandchild-29", 2),
        ("top-28", 0),
        ("child-28", 1),
        ("grandchild-28", 2),
    ]
    assert default.has_next
    by_duration = data.runs_page(fast, "", sorts[5], 0, 30, True)
    durations = [r.duration for r in by_duration.rows if r.depth == 0]
    assert durations == sorted(durations, reverse=True)
    for runs in (fast, generic):
        assert runs.stats() == (90, 1_700_000_000_000 + 29 * 1000 + 2)
        nested, more = runs.descendants(_tops[:3], 1, 2)
        assert [r.info.run_name for r in nested] == ["child-00", "child-01"] and more
        nested, more = runs.descendants(_tops[:2], 5, 10)
        assert [r.info.run_name for r in nested] == [
            "child-00",
            "child-01",
            "grandchild-00",
            "grandchild-01",
        ]
        assert not more
    assert store.run_stats([experiment_id, "0", "123456"]) == {
        experiment_id: (90, 1_700_000_000_000 + 29 * 1000 + 2),
        "0": (0, None),
        "123456": (0, None),
    }
    with pytest.raises(data.FilterError) as error:
        data.runs_page(fast, "params.p == 1", sorts[0], 0, 5, True)
    assert error.value.position == 10


def test_pages_on_a_sqlite_store(tmp_path: Path) -> None:
    from tracking.servers.ui import create_ui_app

    uri = f"sqlite:///{tmp_path}/ui.db"
    _client, experiment_id, tops = _nested_store(uri)
    served = _serve(create_ui_app(uri))
    try:
        http = httpx.Client(base_url=served.url)
        listing = http.get("/")
        assert listing.status_code == 200 and ">tree</a>" in listing.text and ">90<" in listing.text
        page = http.get(f"/experiments/{experiment_id}?size=25&page=2&sort=duration&dir=asc")
        assert page.status_code == 200
        assert page.text.count('data-depth="0"') == 5 and page.text.count('data-depth="2"') == 5
        flat = http.get(
            f"/experiments/{experiment_id}",
            params={"view": "flat", "filter": "attributes.run_name LIKE 'g%'", "size": 25},
        )
        assert flat.text.count('data-depth="0"') == 25 and 'rel="next"' in flat.text
        run = http.get(f"/runs/{tops[0]}")
        assert run.status_code == 200 and "child-00" in run.text
        compare = http.get("/compare", params={"runs": tops[:3]})
        assert compare.status_code == 200 and compare.text.count('data-key="p"') == 1
        history = http.get("/data/metric-history", params={"runs": tops[:2], "key": "m"})
        assert history.json()[tops[1]]["value"] == [1.0]
        assert http.get("/compare").status_code == 400
        assert http.get("/data/metric-history").json()["error"].startswith("Give a metric")
    finally:
        _stop(served)


def test_router_mounts_under_a_prefix(ui_store: UIStore) -> None:
    from fastapi import FastAPI

    from tracking.servers.ui import create_ui_router

    app = FastAPI()
    app.include_router(create_ui_router(ui_store.uri), prefix="/ui")
    served = _serve(app)
    try:
        http = httpx.Client(base_url=served.url)
        home = http.get("/ui/")
        assert home.status_code == 200
        assert f'href="/ui/experiments/{ui_store.experiment_id}"' in home.text
        assert 'src="/ui/static/app.js?v=' in home.text
        run = http.get(f"/ui/runs/{ui_store.flow_run_ids[0]}")
        assert f'href="/ui/experiments/{ui_store.experiment_id}"' in run.text
        assert http.get("/ui/static/style.css").status_code == 200
    finally:
        _stop(served)


def test_ui_command(ui_store: UIStore) -> None:
    """`python -m tracking.servers.ui` (`trackflow ui`): listens, says where, stops on ^C."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracking.servers.ui",
            "--port",
            "0",
            "--backend-store-uri",
            ui_store.uri,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("Trackflow UI for "), first + process.stderr.read()
        match = re.match(
            r"Listening on (http://127\.0\.0\.1:\d+/) \(press Ctrl\+C to stop\)", second
        )
        assert match, second
        assert EXPERIMENT in httpx.get(match.group(1), timeout=20).text
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped" in out


def test_ui_command_reports_a_busy_port(ui_store: UIStore) -> None:
    from tracking.servers.listen import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tracking.servers.ui", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MLFLOW_TRACKING_URI": ui_store.uri},
        )
    finally:
        sock.close()
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_add_ui_command_parses_its_options() -> None:
    import argparse

    from tracking.servers.ui.cli import add_ui_command, run_ui

    parser = argparse.ArgumentParser(prog="trackflow")
    add_ui_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["ui", "--host", "0.0.0.0", "--port", "8080", "--backend-store-uri", "x"]
    )
    assert (args.host, args.port, args.tracking_uri, args.handler) == ("0.0.0.0", 8080, "x", run_ui)
    defaults = parser.parse_args(["ui"])
    assert (defaults.host, defaults.port, defaults.tracking_uri) == ("127.0.0.1", 5000, None)


def test_plotly_is_served_from_the_installed_package() -> None:
    from tracking.servers.ui.app import plotly_js_path

    path = Path(plotly_js_path())
    assert path.name == "plotly.min.js" and path.parent.parent.name == "plotly"
    assert path.is_relative_to(Path(__import__("plotly").__file__).parent)
    repo = Path(__file__).resolve().parent.parent
    assert not list((repo / "tracking").rglob("*.min.js"))


def test_bench_runs_on_a_small_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python bench/bench_ui.py` (the 10,000-run figures of the report), scaled down."""
    spec = importlib.util.spec_from_file_location("bench_ui", BENCH_UI)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    assert bench.main(["--runs", "25", "--repeat", "1", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "filled" in out and "| runs tree, page 1 |" in out
    assert out.count(" ms |") >= 6 * len(bench.PAGES)


def test_runs_of_dead_processes_show_as_process_gone(tmp_path: Path) -> None:
    """Until `trackflow runs reconcile` ends it, a run whose process died says so."""
    from test_reconcile import dead_process

    from tracking import processes
    from tracking.servers.ui import create_ui_app

    uri = str(tmp_path / "mlruns")
    client = tracking.TrackingClient(uri)
    experiment_id = client.create_experiment("crashed")
    stale = client.create_run(experiment_id, tags={processes.PROCESS_TAG: dead_process()})
    live = client.create_run(
        experiment_id, tags={processes.PROCESS_TAG: processes.current().tag_value()}
    )
    served = _serve(create_ui_app(uri))
    try:
        http = httpx.Client(base_url=served.url)
        listing = http.get(f"/experiments/{experiment_id}").text
        assert listing.count("RUNNING (process gone)") == 1
        assert "RUNNING (process gone)" in http.get(f"/runs/{stale.info.run_id}").text
        assert "process gone" not in http.get(f"/runs/{live.info.run_id}").text
    finally:
        _stop(served)
