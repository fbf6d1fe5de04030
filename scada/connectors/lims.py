"""The LIMS connector: quality results from a laboratory system's REST API.

A ``Connector`` of kind ``lims`` names the LIMS: ``endpoint`` is its base URL
(``https://lims.example.com/api``); ``settings`` may hold

* ``results_path`` (default ``/results``): appended to the endpoint;
* ``timeout_s`` (default 10): connect and read timeout, in seconds;
* ``since_param`` (default ``since``): the query parameter that asks for results
  tested at or after a time (ISO 8601, UTC); the fetch sends the newest
  ``tested_at`` already kept, less an overlap (``scada.quality``);

and ``credentials`` the auth header: ``auth_header`` (default
``Authorization``) and ``auth_value`` (``Bearer …``, an API key).

``GET {endpoint}{results_path}?{since_param}=…`` answers a JSON list of results
(or an object whose ``results`` is that list). Each result is an object with
``id`` (or ``key``), ``serial``, ``test_name`` (or ``test``), ``passed`` (a
boolean, or ``result``: pass/fail), ``values`` (an object) and ``tested_at``
(ISO 8601 with a time zone). ``normalize`` maps these names onto the ones
``scada.quality.lims_results_apply`` checks; it refuses nothing itself, so a
malformed result is reported by row there rather than dropping the batch.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from django.utils.dateparse import parse_datetime

from scada.connectors.base import BaseConnector, ConnectorError, register

DEFAULT_RESULTS_PATH = "/results"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SINCE_PARAM = "since"
# A LIMS answering more than this in one fetch is asked again next time (the
# ``since`` cursor moves on); it keeps one fetch's memory and transaction count bounded.
MAX_RESULTS_PER_FETCH = 5_000
# An answer is read into memory whole: bounded, whatever the LIMS sends.
MAX_BODY_BYTES = 20 * 1024 * 1024

# The words a result may be given in, in any case (a CSV's ``result`` column, a
# LIMS's ``result`` field); a JSON ``passed`` may also be a boolean.
PASS_WORDS = frozenset({"pass", "passed"})
FAIL_WORDS = frozenset({"fail", "failed"})


def passed_from(value: Any) -> Any:
    """``True``/``False`` for a boolean or a known pass/fail word; anything
    else unchanged (the apply step reports it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in PASS_WORDS:
            return True
        if word in FAIL_WORDS:
            return False
    return value


def tested_at_from(value: Any) -> Any:
    """An aware ``datetime`` from ISO 8601 text, when it parses; otherwise the
    value unchanged (the apply step reports it, naive times included)."""
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:  # well formed, but no such date
            return value
        return parsed if parsed is not None else value
    return value


@register
class LimsConnector(BaseConnector):
    """A REST LIMS (see the module docstring for its settings and answers)."""

    kind = "lims"

    @property
    def url(self) -> str:
        path = str(self.settings.get("results_path") or DEFAULT_RESULTS_PATH)
        return self.config.endpoint.rstrip("/") + "/" + path.lstrip("/")

    @property
    def timeout_s(self) -> float:
        try:
            timeout = float(self.settings.get("timeout_s", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            return DEFAULT_TIMEOUT_S
        return timeout if 0 < timeout <= 300 else DEFAULT_TIMEOUT_S

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        value = self.credentials.get("auth_value")
        if value:
            name = str(self.credentials.get("auth_header") or "Authorization")
            headers[name] = str(value)
        return headers

    def _get(self, params: dict[str, str]) -> bytes:
        """The body of a 200 answer (at most ``MAX_BODY_BYTES``), or why not."""
        try:
            with httpx.stream(
                "GET",
                self.url,
                params=params,
                headers=self._headers(),
                timeout=self.timeout_s,
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise ConnectorError(
                        f"The LIMS at {self.url} answered HTTP {response.status_code}."
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise ConnectorError(
                            f"The LIMS at {self.url} answered more than "
                            f"{MAX_BODY_BYTES:,} bytes."
                        )
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"The LIMS at {self.url} could not be reached: {exc}"
            ) from exc
        return bytes(body)

    def test_connection(self) -> tuple[bool, str | None]:
        """Ask for the results since now: reachable, authorised and JSON."""
        try:
            self.fetch_data(since=datetime.now(UTC))
        except ConnectorError as exc:
            return False, str(exc)
        return True, None

    def fetch_data(self, *, since: datetime | None = None, **kwargs: Any) -> list[Any]:
        """The LIMS's results (tested at or after ``since``, when given), raw."""
        params: dict[str, str] = {}
        if since is not None:
            name = str(self.settings.get("since_param") or DEFAULT_SINCE_PARAM)
            params[name] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        raw = self._get(params)
        try:
            body = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ConnectorError(
                f"The LIMS at {self.url} did not answer JSON."
            ) from exc
        if isinstance(body, dict) and isinstance(body.get("results"), list):
            body = body["results"]
        if not isinstance(body, list):
            raise ConnectorError(
                f"The LIMS at {self.url} answered {type(body).__name__}, "
                "not a list of results."
            )
        return body[:MAX_RESULTS_PER_FETCH]

    def normalize(self, raw: list[Any]) -> list[dict[str, Any]]:
        """Each raw result as ``{key, serial, test_name, passed, values,
        tested_at}`` (``passed`` a bool and ``tested_at`` an aware datetime
        when the LIMS sent something readable; see the module docstring)."""
        normalized = []
        for item in raw:
            if not isinstance(item, dict):
                normalized.append({"error": "A result must be a JSON object."})
                continue
            key = item.get("id", item.get("key"))
            passed = item["passed"] if "passed" in item else item.get("result")
            normalized.append(
                {
                    "key": str(key) if isinstance(key, int | str) else key,
                    "serial": item.get("serial"),
                    "test_name": item.get("test_name", item.get("test")),
                    "passed": passed_from(passed),
                    "values": item.get("values", {}),
                    "tested_at": tested_at_from(item.get("tested_at")),
                }
            )
        return normalized
