"""MLflow's artifact file routes outside the JSON API, which its UI and tests use:

    GET /get-artifact?run_id=...&path=...                           a run's artifact file
    GET /model-versions/get-artifact?name=...&version=...&path=...  a registered version's file
    GET /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=...
    POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=...&path=... a file (the body, <= 10 MB)
                                                                    into a run's artifacts

Files are read and written by the served-roots rule (`ServerContext.run_artifacts`); downloads
are sent as attachments with MLflow's headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tracking.errors import BAD_REQUEST, InvalidParameterError, TrackingError
from tracking.servers.api.artifacts_proxy import download_headers, media_type
from tracking.servers.api.security import contained, request_path
from tracking.servers.ui.artifacts_view import RunArtifacts

if TYPE_CHECKING:
    from tracking.servers.api.app import ServerContext

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def _context(request: Request) -> ServerContext:
    return request.app.state.trackflow


def _required(request: Request, *names: str) -> str:
    for name in names:
        value = request.query_params.get(name)
        if value:
            return value
    raise TrackingError(f'Request must include the "{names[0]}" query parameter.', BAD_REQUEST)


async def send_file(ctx: ServerContext, root: str, rel: str) -> Response:
    """The file `rel` (checked by `request_path`) under artifact root `root`, streamed as an
    attachment with MLflow's headers (its exact text/plain, no charset added)."""
    if not rel:
        raise InvalidParameterError("Name an artifact file to download, not the artifact root")
    artifacts = RunArtifacts(await run_in_threadpool(ctx.run_artifacts, root))
    info = await run_in_threadpool(artifacts.info, rel)
    if info.get("type") == "directory":
        raise InvalidParameterError(f"Artifact path refers to a directory, not a file: '{rel}'")
    headers = {**download_headers(rel), "Content-Type": media_type(rel)}
    if info.get("size") is not None:
        headers["Content-Length"] = str(info["size"])
    return StreamingResponse(artifacts.stream(rel), headers=headers)


def build_router(api_prefixes: tuple[str, ...]) -> APIRouter:
    router = APIRouter()

    @router.get("/get-artifact")
    async def get_run_artifact(request: Request) -> Response:
        ctx = _context(request)
        run_id = _required(request, "run_id", "run_uuid")
        rel = request_path(_required(request, "path"))
        run = await run_in_threadpool(ctx.store.get_run, run_id)
        return await send_file(ctx, run.info.artifact_uri, rel)

    @router.get("/model-versions/get-artifact")
    async def get_model_version_artifact(request: Request) -> Response:
        from tracking.servers.api import registry_api

        ctx = _context(request)
        name, version = _required(request, "name"), _required(request, "version")
        rel = request_path(_required(request, "path"))
        root = await run_in_threadpool(registry_api.download_uri, ctx, name, version)
        return await send_file(ctx, root, rel)

    async def get_logged_model_artifact(request: Request, model_id: str) -> Response:
        ctx = _context(request)
        rel = request_path(_required(request, "artifact_file_path"))
        model = await run_in_threadpool(ctx.store.get_logged_model, model_id)
        return await send_file(ctx, model.artifact_location, rel)

    async def upload_artifact(request: Request) -> Response:
        ctx = _context(request)
        run_id = request.query_params.get("run_uuid")
        if not run_id:
            raise InvalidParameterError("Request must specify run_uuid.")
        path = request.query_params.get("path")
        if not path:
            raise InvalidParameterError("Request must specify path.")
        rel = request_path(path)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                raise InvalidParameterError("Artifact size is too large. Max size is 10MB.")
        if not data:
            raise InvalidParameterError("Request must specify data.")
        run = await run_in_threadpool(ctx.store.get_run, run_id)
        repo = await run_in_threadpool(ctx.run_artifacts, run.info.artifact_uri)
        if repo.protocol == "file":  # no symlink in the run's folder leads out of it
            contained(ctx.real_local_root(repo), rel)
        await run_in_threadpool(repo.write_bytes, rel, bytes(data))
        return Response(b"{}", media_type="application/json")

    for prefix in api_prefixes:
        router.add_api_route(
            f"{prefix}/logged-models/{{model_id}}/artifacts/files",
            get_logged_model_artifact,
            methods=["GET"],
        )
    router.add_api_route("/ajax-api/2.0/mlflow/upload-artifact", upload_artifact, methods=["POST"])
    return router
