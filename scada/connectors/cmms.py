"""The CMMS connector: a generic REST CMMS that takes maintenance work orders.

The connectors contract names Maintenance Connection as the first CMMS and
leaves its API open, so this speaks the plainest REST there is:

* ``endpoint``: the CMMS's base URL (``https://cmms.example.com/api``);
* ``settings``: ``work_order_path`` (default ``/work-orders``), ``timeout_s``
  (default 10), ``auth_header_name`` (default ``Authorization``),
  ``health_path`` (what ``test_connection`` GETs; default the base URL itself),
  ``id_field`` (where the answer holds the CMMS's id; default: the first of
  ``id``, ``work_order_id``, ``external_id``, ``number``), ``status_field``
  (default ``status``) and ``closed_statuses`` for reading a status back;
* ``credentials``: ``auth_header_value`` (``Bearer …``, an API key), sent as the
  header named above and never written into an error, a log or an answer.

``push_data(work_order)`` POSTs the normalized work order (``asset_id``,
``asset_name``, ``description``, ``priority``, ``source_alarm_id``,
``created_by_system``, ``assignee``, ``scada_snapshot``) as JSON to
``<endpoint><work_order_path>`` with an ``Idempotency-Key`` header (the work
order's own key), so a CMMS that honours it never opens the same work order
twice when an answer was lost and the attempt is repeated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from scada.connectors.base import BaseConnector, ConnectorError, register

DEFAULT_WORK_ORDER_PATH = "/work-orders"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_AUTH_HEADER = "Authorization"
ID_FIELDS = ("id", "work_order_id", "external_id", "number")
CLOSED_STATUSES = ("closed", "completed", "complete", "done", "cancelled")
# What of a refusal's body goes into an error (the failure log is for people).
_BODY_EXCERPT = 300
_REDACTED = "[redacted]"


@dataclass(frozen=True)
class PushResult:
    """What one POST of a work order came to."""

    ok: bool
    error: str | None = None
    status_code: int | None = None
    external_id: str = ""
    duration_ms: int = 0

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed: the CMMS was unreachable, slow,
        busy or broken (5xx, 408, 425, 429). Any other 4xx refused this work
        order or these credentials, and repeating the same request will not
        change that until a person fixes it."""
        if self.ok:
            return False
        code = self.status_code
        return code is None or code >= 500 or code in {408, 425, 429}


@register
class CmmsConnector(BaseConnector):
    """A generic REST CMMS (see the module's docstring for its settings)."""

    kind: ClassVar[str] = "cmms"
    last_result: PushResult | None = None

    # --- configuration ---------------------------------------------------------------

    SETTINGS: ClassVar[frozenset[str]] = frozenset(
        {
            "work_order_path",
            "timeout_s",
            "auth_header_name",
            "health_path",
            "id_field",
            "status_field",
            "closed_statuses",
            "sync_status",
        }
    )

    @classmethod
    def settings_problem(cls, settings: Any) -> str | None:
        """Why ``settings`` do not fit a CMMS connector, or None (for the
        connectors' configuration service and admin form)."""
        if not isinstance(settings, dict):
            return "Must be an object."
        unknown = sorted(settings.keys() - cls.SETTINGS)
        if unknown:
            return (
                f"Unknown option {unknown[0]!r}; CMMS options: "
                f"{', '.join(sorted(cls.SETTINGS))}."
            )
        for key in ("work_order_path", "auth_header_name", "health_path"):
            value = settings.get(key, "")
            if not isinstance(value, str) or any(c.isspace() for c in value):
                return f"{key} must be text without spaces."
        for key in ("id_field", "status_field"):
            if not isinstance(settings.get(key, ""), str):
                return f"{key} must be text."
        timeout = settings.get("timeout_s", DEFAULT_TIMEOUT_S)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 300
        ):
            return "timeout_s must be a number of seconds from 0 to 300."
        closed = settings.get("closed_statuses", [])
        if not isinstance(closed, list) or not all(isinstance(w, str) for w in closed):
            return "closed_statuses must be a list of words."
        if not isinstance(settings.get("sync_status", False), bool):
            return "sync_status must be true or false."
        return None

    @property
    def settings(self) -> dict[str, Any]:
        settings = self.config.settings
        return settings if isinstance(settings, dict) else {}

    @property
    def credentials(self) -> dict[str, Any]:
        credentials = self.config.credentials
        return credentials if isinstance(credentials, dict) else {}

    @property
    def base_url(self) -> str:
        endpoint = (self.config.endpoint or "").strip()
        if not endpoint.startswith(("http://", "https://")):
            raise ConnectorError(
                f"A CMMS endpoint is an http(s) base URL, not {endpoint!r}."
            )
        return endpoint.rstrip("/")

    def _url(self, path: str) -> str:
        path = (path or "").strip()
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    @property
    def work_order_url(self) -> str:
        return self._url(
            self.settings.get("work_order_path") or DEFAULT_WORK_ORDER_PATH
        )

    @property
    def timeout_s(self) -> float:
        try:
            value = float(self.settings.get("timeout_s", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            return DEFAULT_TIMEOUT_S
        return value if 0 < value <= 300 else DEFAULT_TIMEOUT_S

    @property
    def _secret(self) -> str:
        value = self.credentials.get("auth_header_value") or ""
        return value if isinstance(value, str) else ""

    def _headers(self, **extra: str) -> dict[str, str]:
        headers = {"Accept": "application/json", **extra}
        if self._secret:
            name = self.settings.get("auth_header_name") or DEFAULT_AUTH_HEADER
            headers[str(name)] = self._secret
        return headers

    def _redact(self, text: str) -> str:
        """``text`` without the secret: a CMMS that echoes the request's headers
        in its error page must not put them in our failure log."""
        secret = self._secret
        if secret:
            text = text.replace(secret, _REDACTED)
            # "Bearer abc": the token alone may be echoed too.
            token = secret.split(" ", 1)[-1]
            if len(token) >= 4:
                text = text.replace(token, _REDACTED)
        return text

    def _client(self) -> httpx.Client:
        # No redirects: a redirect would carry the auth header to another host.
        return httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        kind = {
            httpx.ConnectError: "could not connect",
            httpx.TimeoutException: f"no answer within {self.timeout_s:g} s",
        }
        for cls, words in kind.items():
            if isinstance(exc, cls):
                return self._redact(f"The CMMS {words} ({type(exc).__name__}: {exc}).")
        return self._redact(f"The CMMS request failed ({type(exc).__name__}: {exc}).")

    def _refused(self, response: httpx.Response) -> str:
        body = " ".join(response.text.split())[:_BODY_EXCERPT]
        reason = response.reason_phrase or ""
        return self._redact(
            f"The CMMS answered {response.status_code} {reason}".rstrip()
            + (f": {body}" if body else ".")
        )

    # --- the contract's methods ---------------------------------------------------

    def test_connection(self) -> tuple[bool, str | None]:
        """GET the base URL (or ``settings.health_path``): any 2xx or 3xx is up."""
        try:
            url = self._url(self.settings.get("health_path") or "")
            with self._client() as client:
                response = client.get(url, headers=self._headers())
        except ConnectorError as exc:
            return False, str(exc)
        except httpx.HTTPError as exc:
            return False, self._unreachable(exc)
        if response.status_code >= 400:
            return False, self._refused(response)
        return True, None

    def create_work_order(
        self, payload: dict[str, Any], *, idempotency_key: str = ""
    ) -> PushResult:
        """POST one normalized work order; the CMMS's id comes back when it
        answers one (in the JSON body, else the ``Location`` header)."""
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            url = self.work_order_url
            with self._client() as client:
                response = client.post(
                    url, json=payload, headers=self._headers(**extra)
                )
        except ConnectorError as exc:
            return PushResult(ok=False, error=str(exc), duration_ms=took())
        except httpx.HTTPError as exc:
            return PushResult(
                ok=False, error=self._unreachable(exc), duration_ms=took()
            )
        if not response.is_success:
            return PushResult(
                ok=False,
                error=self._refused(response),
                status_code=response.status_code,
                duration_ms=took(),
            )
        return PushResult(
            ok=True,
            status_code=response.status_code,
            external_id=self._external_id(response),
            duration_ms=took(),
        )

    def push_data(self, payload: Any, **kwargs: Any) -> tuple[bool, str | None]:
        """The contract's shape of ``create_work_order``: ``(ok, error)``; the
        whole result (status code, the CMMS's id) is kept in ``last_result``."""
        if not isinstance(payload, dict):
            return False, "A CMMS work order is a JSON object."
        self.last_result = self.create_work_order(
            payload, idempotency_key=kwargs.get("idempotency_key", "")
        )
        return self.last_result.ok, self.last_result.error

    def fetch_data(self, **kwargs: Any) -> list[Any]:
        """Read work orders back from the CMMS: ``fetch_data(external_ids=[...])``
        GETs ``<work_order_path>/<id>`` for each; one that cannot be read raises
        ``ConnectorError`` naming it."""
        external_ids = kwargs.get("external_ids")
        if not external_ids:
            raise ConnectorError(
                "Name the work orders to read back: fetch_data(external_ids=[...])."
            )
        records = []
        with self._client() as client:
            for external_id in external_ids:
                url = f"{self.work_order_url}/{external_id}"
                try:
                    response = client.get(url, headers=self._headers())
                except httpx.HTTPError as exc:
                    raise ConnectorError(self._unreachable(exc)) from None
                if not response.is_success:
                    raise ConnectorError(
                        f"Work order {external_id}: {self._refused(response)}"
                    )
                body = _json(response)
                if not isinstance(body, dict):
                    raise ConnectorError(
                        f"Work order {external_id}: the CMMS answered no JSON object."
                    )
                records.append({"external_id": str(external_id), **body})
        return records

    def normalize(self, raw: list[Any]) -> list[dict[str, Any]]:
        """``{"external_id", "status", "closed"}`` per record read back."""
        status_field = self.settings.get("status_field") or "status"
        closed = {
            str(word).lower()
            for word in self.settings.get("closed_statuses") or CLOSED_STATUSES
        }
        normalized = []
        for record in raw:
            status = str(record.get(status_field) or "").strip()
            normalized.append(
                {
                    "external_id": str(record["external_id"]),
                    "status": status,
                    "closed": status.lower() in closed,
                }
            )
        return normalized

    # --- answers -----------------------------------------------------------------

    def _external_id(self, response: httpx.Response) -> str:
        body = _json(response)
        if isinstance(body, dict):
            named = self.settings.get("id_field")
            for field in (named,) if named else ID_FIELDS:
                value = body.get(field)
                if isinstance(value, str | int) and not isinstance(value, bool):
                    return str(value)[:100]
        location = response.headers.get("Location", "").rstrip("/")
        if location:
            return location.rsplit("/", 1)[-1][:100]
        return ""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
