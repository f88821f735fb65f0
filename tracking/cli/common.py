"""What every command group shares: the client from --tracking-uri, tables, formats."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable, Sequence
from typing import Any

import tracking
from tracking import stores


def format_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_value(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":  # decimal units, as rich's progress bar shows
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)  # pragma: no cover


def table(title: str, columns: list[str], rows: Sequence[Sequence[str | None]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 2)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def report(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """table, at least as wide as its title (rich would wrap it), ids never broken, and no
    header row when the columns have no names."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 2, show_header=any(columns))
    for column in columns:
        is_id = column in ("id", "run id")
        table.add_column(column, overflow="fold", no_wrap=is_id, min_width=8 if is_id else None)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def client_for(args: argparse.Namespace, must_exist: bool = True) -> tracking.TrackingClient:
    """The client of --tracking-uri; unless `must_exist` is False (commands that create
    things), a local store that does not exist is an error rather than created empty."""
    uri = args.tracking_uri or tracking.get_tracking_uri()
    if must_exist:
        stores.check_exists(uri)
    return tracking.TrackingClient(uri)


def experiment_ids(client: tracking.TrackingClient, experiment: str | None) -> list[str]:
    if experiment is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return [found.experiment_id]
    return [client.get_experiment(experiment).experiment_id]


def find_experiment(client: tracking.TrackingClient, id_or_name: str) -> Any:
    """An experiment by name (first) or id; NotFoundError naming both tries."""
    from tracking.errors import InvalidParameterError, NotFoundError

    found = client.get_experiment_by_name(id_or_name)
    if found is not None:
        return found
    try:
        return client.get_experiment(id_or_name)
    except (NotFoundError, InvalidParameterError):
        raise NotFoundError(f"No experiment with name or id {id_or_name!r}") from None


def command(
    group: Any, name: str, handler: Callable[..., int], help_text: str
) -> argparse.ArgumentParser:
    """A subcommand with --tracking-uri that runs `handler(args)`."""
    sub = group.add_parser(name, help=help_text, description=help_text)
    sub.add_argument(
        "--tracking-uri", help="store to read (default: $MLFLOW_TRACKING_URI or ./mlruns)"
    )
    sub.set_defaults(handler=handler)
    return sub
