"""Unique failures of a Schemathesis run (bench/fuzz_campaign.sh): one per
operation and check, each with the distinct answers seen (status and the
envelope's message, up to four) and a request that drew it, 5xx first.

    .venv/bin/python bench/fuzz_triage.py /tmp/fuzz/admin/ndjson-*.ndjson
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import sys

ORDER = (
    "no_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
)
ANSWERS = 4  # distinct answers kept per failure


def _text(value) -> str:
    if isinstance(value, dict) and "$base64" in value:
        try:
            return base64.b64decode(value["$base64"]).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return "?"
    return value if isinstance(value, str) else ""


def _message(body: str) -> str:
    try:
        found = json.loads(body)
    except ValueError:
        return body[:160]
    return found.get("error", body[:160]) if isinstance(found, dict) else body[:160]


def triage(paths: list[str]) -> tuple[int, dict]:
    failures: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    cases = 0
    for path in paths:
        with open(path, encoding="utf-8") as report:
            for line in report:
                event = json.loads(line)
                if "ScenarioFinished" not in event:
                    continue
                recorder = event["ScenarioFinished"]["recorder"]
                cases += len(recorder.get("cases", {}))
                interactions = recorder.get("interactions", {})
                for case_id, checks in recorder.get("checks", {}).items():
                    for check in checks:
                        if check.get("status") != "failure":
                            continue
                        seen = failures.setdefault(
                            (recorder["label"], check["name"]), {}
                        )
                        interaction = interactions.get(case_id) or {}
                        response = interaction.get("response") or {}
                        request = interaction.get("request") or {}
                        answer = (
                            f"{response.get('status_code')} "
                            f"{_message(_text(response.get('content')))}"
                        )[:200]
                        if answer not in seen and len(seen) < ANSWERS:
                            seen[answer] = (
                                request.get("uri", "")[:300],
                                _text(request.get("body"))[:300],
                            )
    return cases, failures


def main(paths: list[str]) -> None:
    cases, failures = triage(paths)
    print(f"cases {cases:,}, unique failures (operation, check) {len(failures)}")
    print(dict(collections.Counter(check for _, check in failures)))

    def rank(key: tuple[str, str]) -> tuple[int, str]:
        return (ORDER.index(key[1]) if key[1] in ORDER else 3, key[0])

    for key in sorted(failures, key=rank):
        print(f"- [{key[1]}] {key[0]}")
        for answer, (uri, body) in failures[key].items():
            print(f"    {answer}\n        {uri} {body}")


if __name__ == "__main__":
    main(sys.argv[1:])
