"""The model scoring server (`trackflow models serve`): MLflow's /invocations protocol.

A real sklearn model is logged, registered with an alias and served by uvicorn on a free port
(in a thread); every input format must give the model's own predictions.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import tracking
import tracking.pyfunc
import tracking.sklearn
from tracking import config
from tracking.cli import main
from tracking.servers.scoring import create_scoring_app, jsonable

MODEL = "iris-scoring"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    http: httpx.Client
    tracking_uri: str
    run_id: str
    X: pd.DataFrame
    expected: list[int]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(tracking URI, run id, X): a LogisticRegression fit on named iris columns, registered
    as version 1 of MODEL with the alias 'champion' and in stage Production."""
    uri = str(tmp_path_factory.mktemp("scoring") / "mlruns")
    iris = load_iris(as_frame=True)
    X = iris.data
    tracking.set_tracking_uri(uri)
    try:
        with tracking.start_run() as run:
            model = LogisticRegression(max_iter=500).fit(X, iris.target)
            tracking.sklearn.log_model(model, "model", registered_model_name=MODEL)
        client = tracking.TrackingClient(uri)
        client.set_registered_model_alias(MODEL, "champion", 1)
        client.transition_model_version_stage(MODEL, 1, "Production")
    finally:
        config.reset_tracking_uri()
    yield uri, run.info.run_id, X


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[tuple[str, httpx.Client]]:
    """`app` served by uvicorn in a thread on a free port; stopped afterwards."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the scoring server did not start"
        assert thread.is_alive(), "the scoring server thread died"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, timeout=30)
    try:
        yield url, http
    finally:
        http.close()
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def served(logged: tuple[str, str, pd.DataFrame]) -> Iterator[Served]:
    """The model served by uvicorn in a thread on a free port; stopped afterwards."""
    uri, run_id, X = logged
    app = create_scoring_app(f"models:/{MODEL}@champion", tracking_uri=uri)
    with _serving(app) as (url, http):
        expected = app.state.model.get_raw_model().predict(X).tolist()
        yield Served(url, http, uri, run_id, X, expected)


def _post(served: Served, body: Any, content_type: str = "application/json") -> httpx.Response:
    if isinstance(body, str | bytes):
        return served.http.post(
            "/invocations", content=body, headers={"Content-Type": content_type}
        )
    return served.http.post("/invocations", json=body)


def test_ping_health_version(served: Served) -> None:
    ping = served.http.get("/ping")
    assert ping.status_code == 200 and ping.json() == {"status": "ok"}
    health = served.http.get("/health")
    assert health.status_code == 200
    assert health.json()["model_uri"] == f"models:/{MODEL}@champion"
    assert health.json()["model_type"] == "LogisticRegression"
    assert health.json()["flavors"] == ["python_function", "sklearn"]
    assert health.json()["signature"] is None
    assert served.http.get("/version").json() == {"trackflow": tracking.__version__}


def test_every_input_format_gives_the_models_predictions(served: Served) -> None:
    X, expected = served.X, served.expected
    rows = X.values.tolist()
    records = X.to_dict(orient="records")
    shuffled = [dict(reversed(list(r.items()))) for r in records]  # column order must not matter
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": list(X.columns), "data": rows}},
        "dataframe_split with index": {
            "dataframe_split": {"columns": list(X.columns), "data": rows, "index": list(X.index)}
        },
        "dataframe_records": {"dataframe_records": records},
        "dataframe_records, other column order": {"dataframe_records": shuffled},
        "instances rows": {"instances": rows},
        "instances objects": {"instances": records},
        "inputs rows": {"inputs": rows},
        "inputs columns": {"inputs": {c: X[c].tolist() for c in X.columns}},
    }
    for name, body in bodies.items():
        response = _post(served, body)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"predictions": expected}, name
    csv = _post(served, X.to_csv(index=False), "text/csv")
    assert csv.status_code == 200, csv.text
    assert csv.json() == {"predictions": expected}
    utf8 = _post(served, X.head(3).to_csv(index=False), "text/csv; charset=utf-8")
    assert utf8.json() == {"predictions": expected[:3]}
    one = _post(served, {"inputs": [rows[0]]})
    assert one.json() == {"predictions": expected[:1]}


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        ("{not json", "application/json", 400, ["not valid JSON", "dataframe_split"]),
        ("[[1, 2, 3, 4]]", "application/json", 400, ["JSON object", "got a JSON array"]),
        ("", "application/json", 400, ["empty"]),
        ('{"inputs": [[1,2,3,4]], "instances": [[1,2,3,4]]}', None, 400, ["exactly one"]),
        ('{"data": [[1,2,3,4]]}', None, 400, ["Unknown field", "'data'", "dataframe_records"]),
        ('{"params": {}}', None, 400, ["exactly one", "none of them"]),
        ('{"inputs": [[1, 2, 3, 4], [1, 2]]}', None, 400, ["same length"]),
        ('{"inputs": 5}', None, 400, ["list of rows"]),
        ('{"inputs": [[1, 2]]}', None, 400, ["could not score", "features"]),
        ('{"dataframe_split": {"columns": ["a"]}}', None, 400, ["no 'data'"]),
        ('{"dataframe_split": [[1, 2]]}', None, 400, ["must be an object"]),
        ('{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}', None, 400, ["row 0"]),
        ('{"dataframe_records": [[1, 2, 3, 4]]}', None, 400, ["list of objects"]),
        ('{"inputs": [[1,2,3,4]], "params": {"k": 1}}', None, 400, ["no inference params"]),
        ('{"inputs": [[1,2,3,4]], "params": 3}', None, 400, ['"params" must be']),
        ("a,b\n", "text/csv", 400, ["no rows"]),
        (b"\xff\xfe", "application/json", 400, ["UTF-8"]),
        ("x", "text/plain", 415, ["application/json", "text/csv"]),
        ("x", "application/json; charset=latin-1", 415, ["UTF-8"]),
    ],
)
def test_bad_input_is_a_400_json_error(
    served: Served, body: str | bytes, content_type: str | None, status: int, words: list[str]
) -> None:
    response = _post(served, body, content_type or "application/json")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["error_code"] in ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE")
    for word in words:
        assert word in error["message"], (word, error["message"])


def test_every_model_uri_form_serves_the_same_model(served: Served) -> None:
    for uri in (
        f"runs:/{served.run_id}/model",
        f"models:/{MODEL}/1",
        f"models:/{MODEL}/Production",
        f"models:/{MODEL}/latest",
    ):
        app = create_scoring_app(uri, tracking_uri=served.tracking_uri)
        assert app.state.model.predict(served.X).tolist() == served.expected, uri


def test_mlflows_own_scoring_client_gets_the_predictions(served: Served) -> None:
    """MLflow's ScoringServerClient (what `mlflow models predict`-style tooling uses)."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    port = int(served.url.rsplit(":", 1)[1])
    client = ScoringServerClient("127.0.0.1", port)
    client.wait_server_ready(timeout=10)
    frame = client.invoke(served.X).get_predictions()  # dataframe_split with an index
    assert frame.iloc[:, 0].tolist() == served.expected
    rows = client.invoke(served.X.values).get_predictions()  # {"inputs": [[...]]}
    assert rows.iloc[:, 0].tolist() == served.expected


def test_jsonable_predictions() -> None:
    frame = pd.DataFrame({"a": [1.0, float("nan")], "b": ["x", "y"]})
    assert jsonable(frame) == [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}]
    assert jsonable(np.array([[1, 2]], dtype=np.int64)) == [[1, 2]]
    assert jsonable(np.float32(0.5)) == 0.5
    assert jsonable(np.array([np.inf, 1.5])) == [None, 1.5]


def test_cli_serve_prints_where_it_listens(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: calls.append(server.config))
    port = _free_port()
    uri = f"models:/{MODEL}@champion"
    args = ["models", "serve", "-m", uri, "--port", str(port)]
    assert main([*args, "--tracking-uri", served.tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in out and "/invocations" in out and "Ctrl+C" in out
    assert calls[0].host == "127.0.0.1" and calls[0].port == port  # loopback by default
    assert calls[0].app.state.model_uri == uri


def test_cli_serve_errors_are_one_line(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uvicorn.Server, "run", lambda *args, **kw: pytest.fail("must not serve"))
    uri = served.tracking_uri
    assert main(["models", "serve", "-m", f"models:/{MODEL}@nope", "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no alias 'nope'" in err and "champion" in err
    taken = served.url.rsplit(":", 1)[1]  # the fixture's server holds this port
    args = ["models", "serve", "-m", f"models:/{MODEL}/1", "--port", taken, "--tracking-uri", uri]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Cannot listen" in err and "--port" in err


def test_serve_command_end_to_end(served: Served, tmp_path: Path) -> None:
    """`python -m tracking.cli models serve` in a subprocess, stopped with SIGTERM."""
    port = _free_port()
    command = [sys.executable, "-m", "tracking.cli", "models", "serve"]
    command += ["-m", f"models:/{MODEL}@champion", "--port", str(port)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": served.tracking_uri}
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - read after the process ends
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited early"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /ping"
            time.sleep(0.1)
        rows = served.X.head(5).values.tolist()
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": rows})
        assert answer.json() == {"predictions": served.expected[:5]}
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.seek(0)
        output = log.read()
        log.close()
    assert f"on http://127.0.0.1:{port}" in output and "Press Ctrl+C to stop." in output


# --- signatures, other flavors, batch scoring ----------------------------------------------------
class Pricer(tracking.pyfunc.PythonModel):
    """price * qty * (1 - discount), rounded to `digits` (an inference param)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        total = model_input["price"] * model_input["qty"] * (1 - (params or {})["discount"])
        return total.round((params or {})["digits"]).tolist()


PRICES = pd.DataFrame(
    {
        "price": np.array([2.5, 4.0], dtype="float32"),
        "qty": np.array([2, 3], dtype="int64"),
        "item": ["tea", "jam"],
    }
)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client, Any]]:
    """A custom model whose signature has a float32 column and params, served."""
    folder = tmp_path_factory.mktemp("signed") / "pricer"
    tracking.pyfunc.save_model(
        folder, python_model=Pricer(), input_example=(PRICES, {"discount": 0.0, "digits": 2})
    )
    app = create_scoring_app(str(folder))
    with _serving(app) as (_, http):
        yield str(folder), http, app.state.model


def _split(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    body = {"columns": list(frame.columns), "data": frame.astype(object).values.tolist()}
    return {"dataframe_split": body, **extra}


def test_signature_is_enforced_with_400s(signed: tuple[str, httpx.Client, Any]) -> None:
    _, http, _ = signed
    ok = http.post("/invocations", json=_split(PRICES, params={"discount": 0.5}))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"predictions": [2.5, 6.0]}  # float32 column from JSON numbers
    extra = http.post("/invocations", json=_split(PRICES.assign(note="x")))
    assert extra.status_code == 200 and extra.json() == {"predictions": [5.0, 12.0]}
    csv = http.post(
        "/invocations", content=PRICES.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert csv.json() == {"predictions": [5.0, 12.0]}
    for body, words in [
        (_split(PRICES.drop(columns=["qty"])), ["missing column(s) ['qty']", "'price'"]),
        (_split(PRICES.assign(qty=[1.5, 2.0])), ["column 'qty'", "float64 to long"]),
        (_split(PRICES.assign(item=[1, 2])), ["column 'item'", "to string"]),
        (_split(PRICES, params={"discount": "half"}), ["Param 'discount'", "double"]),
        (_split(PRICES, params={"rebate": 0.1}), ["Unknown inference param", "'discount'"]),
    ]:
        response = http.post("/invocations", json=body)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["error_code"] == "BAD_REQUEST"
        for word in words:
            assert word in error["message"], (word, error["message"])


def test_health_reports_the_signature(signed: tuple[str, httpx.Client, Any]) -> None:
    _, http, model = signed
    health = http.get("/health").json()
    assert health["flavors"] == ["python_function"]
    assert health["loader_module"] == "mlflow.pyfunc.model"
    assert health["signature"]["inputs"] == json.loads(model.metadata["signature"]["inputs"])
    assert [p["name"] for p in health["signature"]["params"]] == ["discount", "digits"]
    assert http.get("/version").json() == {"trackflow": tracking.__version__}


def test_lightgbm_and_xgboost_models_are_served(tmp_path: Path) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    import tracking.lightgbm
    import tracking.xgboost

    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    models = {
        "lgb": (tracking.lightgbm, lgb.LGBMClassifier(n_estimators=5, verbose=-1)),
        "xgb": (tracking.xgboost, xgb.XGBClassifier(n_estimators=5)),
    }
    for name, (flavor, model) in models.items():
        model.fit(X, iris.target)
        flavor.save_model(model, tmp_path / name, input_example=X.head(2))
        with _serving(create_scoring_app(str(tmp_path / name))) as (_, http):
            answer = http.post("/invocations", json=_split(X.head(6)))
            assert answer.json() == {"predictions": model.predict(X.head(6)).tolist()}, name
            bad = http.post("/invocations", json=_split(X.head(6).drop(columns=["sepal_width"])))
            assert bad.status_code == 400 and "['sepal_width']" in bad.json()["message"]


def test_models_predict_scores_files(
    signed: tuple[str, httpx.Client, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = signed[0]
    rows = pd.concat([PRICES] * 12_500, ignore_index=True)  # 25,000 rows: 3 batches
    rows.to_csv(tmp_path / "in.csv", index=False)
    rows.to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.json").write_text(
        json.dumps(_split(PRICES, params={"discount": 0.5, "digits": 0}))
    )
    assert main(["models", "predict", "-m", folder, "-i", str(tmp_path / "in.csv")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["predictions"] == [5.0, 12.0] * 12_500
    assert "scoring" in err and "25000/25000" in err  # the progress bar, on stderr
    args = ["-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.csv")]
    assert main(["models", "predict", "-m", folder, *args, "--batch-size", "7000"]) == 0
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == ["prediction"] and len(written) == 25_000
    args = ["-i", str(tmp_path / "in.json"), "-t", "json", "-o", str(tmp_path / "out.parquet")]
    assert main(["models", "predict", "-m", folder, *args, "--no-progress"]) == 0
    assert pd.read_parquet(tmp_path / "out.parquet")["prediction"].tolist() == [2.0, 6.0]
    capsys.readouterr()
    PRICES.drop(columns=["item"]).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "in.txt").write_text("x")
    for args, words in [
        (["-i", str(tmp_path / "bad.csv")], "missing column(s) ['item']"),
        (["-i", str(tmp_path / "in.txt")], "Cannot tell the format"),
        (["-i", str(tmp_path / "nope.csv")], "does not exist"),
        (["-i", str(tmp_path / "in.txt"), "-t", "json"], "not valid JSON"),
        (["-i", str(tmp_path / "in.csv"), "--batch-size", "0"], "at least 1"),
    ]:
        assert main(["models", "predict", "-m", folder, *args]) == 1, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, (args, err)
