"""``a4c webhooks``: manage webhook endpoints through the ``/v1`` API, as any client would.

An HTTP client of ``/v1/…/webhook-endpoints`` (:mod:`a4c_api.v1.webhooks`): ``--api`` is
the service (default the local stack's), ``--organization SLUG`` works on that
organization's endpoints (without it: the platform's, which only operators manage; their
``list`` shows every endpoint). The API key comes from ``A4C_API_KEY`` only, never an
argument: shells keep history, and process lists show arguments.

Listings print as ``a4c entities`` does (an aligned table), or the API's JSON with
``--json``. A signing secret is printed once, when ``create`` makes it or
``rotate-secret`` replaces it, with a line saying it will not be shown again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import httpx

from a4c_service.cli import subcommands
from a4c_service.tabular import render_text
from a4c_worker.config import DEFAULT_API_URL

API_KEY_VAR = "A4C_API_KEY"
TIMEOUT_SECONDS = 60.0
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
COLUMNS = ("name", "owner", "organization", "status", "events", "url")
# What ``show`` prints, in this order (the answer's fields).
FIELDS = (
    "name",
    "id",
    "owner",
    "organization",
    "url",
    "event_types",
    "description",
    "status",
    "disabled_reason",
    "created_at",
    "updated_at",
)
NOT_SHOWN_AGAIN = "This secret will not be shown again: store it now (e.g. in your secret manager)."


def add_parser(sub_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """``a4c webhooks ACTION ...`` under the tool's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default=DEFAULT_API_URL, help="the a4c API's URL")
    common.add_argument(
        "--organization",
        metavar="SLUG",
        help="that organization's endpoints (default: the platform's; operators only)",
    )
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")
    webhooks = sub_parser(
        "webhooks",
        help="manage webhook endpoints through the API (key in A4C_API_KEY)",
        description=f"Webhook endpoints, through the /v1 API. The API key is read from "
        f"{API_KEY_VAR}, never from an argument.",
    )
    action = subcommands(webhooks, "action", parents=[common])

    def named(name: str, help: str) -> argparse.ArgumentParser:
        found = action(name, help=help)
        found.add_argument("name", help="the endpoint's name")
        return found

    create = named("create", "create an endpoint; prints its secret, once")
    create.add_argument("--url", required=True, help="where webhooks are POSTed, https (required)")
    _settings_options(create)
    action("list", help="list endpoints (the platform's list: every endpoint)")
    named("show", "show one endpoint")
    update = named("update", "change an endpoint's URL, event types, description")
    update.add_argument("--url", help="a new URL")
    update.add_argument("--all-events", action="store_true", help="every event type from now on")
    update.add_argument(
        "--every-organization",
        action="store_true",
        help="a platform endpoint: every organization's events from now on",
    )
    _settings_options(update)
    disable = named("disable", "stop delivering to an endpoint")
    disable.add_argument("--reason", help="why (kept with the endpoint)")
    named("enable", "deliver to an endpoint again")
    named("delete", "delete an endpoint (create it again to bring it back)")
    rotate = named("rotate-secret", "a new secret, printed once; the old one signs too for a while")
    rotate.add_argument(
        "--overlap",
        type=int,
        metavar="SECONDS",
        help="how long the previous secret keeps signing too, at most 604800 (7 days); "
        "not set: the API's 86400",
    )


def _settings_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-type",
        action="append",
        dest="event_types",
        metavar="TYPE",
        help="a public event type to deliver (repeat it; default: every type)",
    )
    parser.add_argument("--description", help="a note kept with the endpoint")
    parser.add_argument(
        "--only-organization",
        metavar="SLUG",
        help="a platform endpoint: only this organization's events",
    )


# --- requests -----------------------------------------------------------------------------


def _base(args: argparse.Namespace) -> str:
    if args.organization:
        return f"/v1/organizations/{args.organization}/webhook-endpoints"
    return "/v1/webhook-endpoints"


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.url is not None:
        body["url"] = args.url
    if args.event_types:
        body["event_types"] = args.event_types
    if args.description is not None:
        body["description"] = args.description
    if args.only_organization:
        body["organization"] = args.only_organization
    return body


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and JSON body ``args`` ask for."""
    base = _base(args)
    one = f"{base}/{getattr(args, 'name', '')}"
    match args.action:
        case "create":
            return "POST", base, {"name": args.name, **_settings(args)}
        case "list":
            return "GET", base, None
        case "show":
            return "GET", one, None
        case "update":
            body = _settings(args)
            if args.all_events:
                body["event_types"] = None
            if args.every_organization:
                body["organization"] = None
            return "PATCH", one, body
        case "disable":
            return "POST", one + "/disable", {} if args.reason is None else {"reason": args.reason}
        case "enable":
            return "POST", one + "/enable", None
        case "delete":
            return "DELETE", one, None
        case "rotate-secret":
            overlap = {} if args.overlap is None else {"overlap_seconds": args.overlap}
            return "POST", one + "/rotate-secret", overlap
    raise ValueError(f"unknown action {args.action!r}")


# --- output -------------------------------------------------------------------------------


def _cell(value: Any, *, none: str = "") -> str:
    if value is None:
        return none
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _row(endpoint: Mapping[str, Any]) -> list[str]:
    return [
        _cell(endpoint["name"]),
        _cell(endpoint["owner"], none="(platform)"),
        _cell(endpoint["organization"], none="(every one)"),
        _cell(endpoint["status"]),
        _cell(endpoint["event_types"], none="(all)"),
        _cell(endpoint["url"]),
    ]


def _details(endpoint: Mapping[str, Any]) -> str:
    shown = {
        "owner": _cell(endpoint.get("owner"), none="(platform)"),
        "organization": _cell(endpoint.get("organization"), none="(every one)"),
        "event_types": _cell(endpoint.get("event_types"), none="(all)"),
    }
    rows = [[f"{name}:", shown.get(name, _cell(endpoint.get(name)))] for name in FIELDS]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in rows)


def _problem(answer: httpx.Response) -> str:
    """A refusal in one or a few lines: status, what the API said, each field's problem."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"{answer.status_code} {answer.reason_phrase}"
    lines = [f"{answer.status_code} {body.get('title', answer.reason_phrase)}"]
    if body.get("detail"):
        lines[0] += f": {body['detail']}"
    lines += [f"  {e.get('field')}: {e.get('message')}" for e in body.get("errors") or []]
    if body.get("fields"):
        lines.append("  differs: " + ", ".join(body["fields"]))
    return "\n".join(lines)


def _print(args: argparse.Namespace, answer: httpx.Response, out: TextIO) -> None:
    body = answer.json()
    if args.json:
        print(json.dumps(body, indent=2), file=out)
        return
    if args.action == "list":
        rows = [_row(e) for e in body["webhook_endpoints"]]
        print(render_text(COLUMNS, rows, "table"), file=out)
        return
    print(_details(body), file=out)
    if "secret" in body:
        print(f"secret:  {body['secret']}", file=out)
        print(NOT_SHOWN_AGAIN, file=out)
    elif args.action == "create":
        print("(it existed already with these settings: its secret is not shown again)", file=out)


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Send the request ``args`` ask for; print the answer, or why it was refused."""
    key = (os.environ if environ is None else environ).get(API_KEY_VAR, "").strip()
    where = f"a4c webhooks {args.action}"
    if not key:
        print(
            f"{where}: set {API_KEY_VAR} to an API key (it is never an argument: "
            "shells keep history)",
            file=err,
        )
        return EXIT_INVALID
    method, path, body = _request(args)
    try:
        with httpx.Client(base_url=args.api, timeout=TIMEOUT_SECONDS) as client:
            answer = client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        print(f"{where}: the API at {args.api} did not answer: {type(exc).__name__}", file=err)
        return EXIT_FAILED
    if answer.status_code >= 400:
        print(f"{where}: {_problem(answer)}", file=err)
        return EXIT_FAILED
    _print(args, answer, out)
    return EXIT_OK


__all__ = ["API_KEY_VAR", "NOT_SHOWN_AGAIN", "add_parser", "run"]
