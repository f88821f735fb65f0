"""`trackflow artifacts list|download`, with a progress bar for big downloads."""

from __future__ import annotations

import argparse
import os
from typing import Any

import tracking
from tracking.cli.common import client_for, command, format_size, report
from tracking.entities import FileInfo
from tracking.progress import progress_bar

#: Downloads at least this big (bytes) or with this many files show a progress bar.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


PROGRESS_MIN_FILES = 50


def artifacts_list(args: argparse.Namespace) -> int:
    client = client_for(args)
    infos = client.list_artifacts(args.run_id, args.path)
    where = f" under {args.path.strip('/')}/" if args.path and args.path.strip("/") else ""
    rows = [
        [
            i.path + ("/" if i.is_dir else ""),
            "dir" if i.is_dir else "file",
            format_size(i.file_size),
        ]
        for i in infos
    ]
    report(f"{len(infos)} artifacts of run {args.run_id}{where}", ["path", "type", "size"], rows)
    return 0


def _artifact_files(client: tracking.TrackingClient, run_id: str, path: str | None) -> list[Any]:
    """Every file below `path` (recursively)."""
    files: list[FileInfo] = []
    folders = [path]
    while folders:
        for info in client.list_artifacts(run_id, folders.pop()):
            if info.is_dir:
                folders.append(info.path)
            else:
                files.append(info)
    return sorted(files, key=lambda info: info.path)


def artifacts_download(args: argparse.Namespace) -> int:
    import tempfile

    from tracking.errors import StorageError

    client = client_for(args)
    path = (args.path or "").strip("/")
    files = _artifact_files(client, args.run_id, path or None)  # a missing run fails here
    dst = os.path.abspath(args.dst) if args.dst else ""
    try:
        dst = dst or tempfile.mkdtemp(prefix="trackflow-artifacts-")
        os.makedirs(dst, exist_ok=True)
        return _download(client, args, path, dst, files)
    except OSError as e:  # the local side: a read-only or missing --dst, a full disk, ...
        raise StorageError(f"Cannot write the download to {dst}: {e.strerror or e}") from None


def _download(
    client: tracking.TrackingClient,
    args: argparse.Namespace,
    path: str,
    dst: str,
    files: list[Any],
) -> int:
    from concurrent.futures import ThreadPoolExecutor

    if not files:  # a single file, an empty folder, or nothing: let the client tell
        local = client.download_artifacts(args.run_id, path, dst)
        count = 1 if os.path.isfile(local) else 0
        size = os.path.getsize(local) if count else 0
    else:
        total = sum(info.file_size or 0 for info in files)
        show = not args.no_progress and (
            total >= PROGRESS_MIN_BYTES or len(files) >= PROGRESS_MIN_FILES
        )
        with (
            progress_bar(
                "downloading",
                total or None,
                enabled=show,
                transfer=True,
                extra="{task.fields[done]}/{task.fields[files]} files",
                files=len(files),
                done=0,
            ) as bar,
            ThreadPoolExecutor(8) as pool,
        ):
            jobs = [
                pool.submit(client.download_artifacts, args.run_id, info.path, dst)
                for info in files
            ]
            try:
                for done, (info, job) in enumerate(zip(files, jobs, strict=True), 1):
                    job.result()
                    bar.update(info.file_size or 0, done=done)
            except BaseException:  # a failed file or Ctrl+C: do not start the others
                for job in jobs:
                    job.cancel()
                raise
        local = os.path.join(dst, *path.split("/")) if path else dst
        count, size = len(files), total
    report(
        f"Downloaded {args.path or 'all artifacts'} of run {args.run_id}",
        ["", ""],
        [["files", str(count)], ["size", format_size(size)], ["to", local]],
    )
    return 0


def register(commands: Any) -> None:
    """Add this group's commands to the `trackflow` parser."""
    artifacts = commands.add_parser("artifacts", help="list and download run artifacts")
    artifact_commands = artifacts.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(artifact_commands, "list", artifacts_list, "List a run's artifacts.")
    listing.add_argument("run_id")
    listing.add_argument("path", nargs="?", help="folder inside the run's artifacts")
    download = command(
        artifact_commands,
        "download",
        artifacts_download,
        "Download a run's artifacts (a file, a folder, or all of them).",
    )
    download.add_argument("run_id")
    download.add_argument("path", nargs="?", help="file or folder (default: all artifacts)")
    download.add_argument("--dst", metavar="DIR", help="local folder (default: a new temp dir)")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
