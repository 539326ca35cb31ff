"""Drives the real Python clients (huggingface_hub, tritonclient[http], deepstack-python) against
a running cpwc-detect server, for test/server/clients-python.test.ts.

Reads a JSON list of cases on stdin and prints one JSON list of results on stdout: for each case
either {"result": ...} (what the client returned, as JSON) or {"error": {"type", "status",
"message"}} (what the client raised).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Case = dict[str, Any]


def huggingface(case: Case) -> Any:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=case["url"], token=case.get("token"))
    image = Path(case["image"]).read_bytes()
    found = client.object_detection(image, threshold=case.get("threshold"))
    return [
        {
            "label": d.label,
            "score": d.score,
            "box": {
                "xmin": d.box.xmin,
                "ymin": d.box.ymin,
                "xmax": d.box.xmax,
                "ymax": d.box.ymax,
            },
        }
        for d in found
    ]


def triton_outputs(case: Case) -> list[Any] | None:
    import tritonclient.http as triton

    requested = case.get("outputs")
    if requested is None:
        return None
    return [
        triton.InferRequestedOutput(o["name"], binary_data=o["binary"])
        for o in requested
    ]


def triton(case: Case) -> Any:
    import tritonclient.http as triton

    headers = (
        {"Authorization": f"Bearer {case['token']}"} if case.get("token") else None
    )
    client = triton.InferenceServerClient(case["host"])
    action = case.get("action", "infer")
    if action == "metadata":
        return {
            "live": client.is_server_live(headers=headers),
            "ready": client.is_server_ready(headers=headers),
            "model_ready": client.is_model_ready(case["model"], headers=headers),
            "server": client.get_server_metadata(headers=headers),
            "model": client.get_model_metadata(case["model"], headers=headers),
            "config": client.get_model_config(case["model"], headers=headers),
        }
    images = [Path(p).read_bytes() for p in case.get("images", [case.get("image")])]
    binary = case.get("binary_input", True)
    # JSON carries BYTES as text: the image goes base64-encoded (the server's documented convention)
    elements = images if binary else [base64.b64encode(i).decode() for i in images]
    tensor = triton.InferInput("IMAGE", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(elements, dtype=object), binary_data=binary)
    result = client.infer(
        case["model"],
        [tensor],
        model_version=case.get("version", ""),
        outputs=triton_outputs(case),
        parameters=case.get("parameters"),
        headers=headers,
    )
    names = [o["name"] for o in case.get("outputs") or []] or [
        "BOXES",
        "SCORES",
        "CLASS_IDS",
        "LABELS",
    ]
    answer: dict[str, Any] = {"response": result.get_response()}
    for name in names:
        array = result.as_numpy(name)
        answer[name] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "values": [v.decode() for v in array.tolist()]
            if array.dtype == object
            else array.tolist(),
        }
    return answer


def deepstack(case: Case) -> Any:
    from deepstack.core import DeepstackObject

    client = DeepstackObject(
        case["ip"],
        case["port"],
        api_key=case.get("api_key", ""),
        min_confidence=case.get("min_confidence", 0.45),
        custom_model=case.get("custom_model", ""),
    )
    return client.detect(Path(case["image"]).read_bytes())


CLIENTS: dict[str, Callable[[Case], Any]] = {
    "huggingface": huggingface,
    "triton": triton,
    "deepstack": deepstack,
}


def describe_error(err: Exception) -> dict[str, Any]:
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status is None and callable(getattr(err, "status", None)):
        raw = err.status()  # tritonclient's InferenceServerException
        status = int(raw) if raw is not None and str(raw).isdigit() else raw
    message = err.message() if callable(getattr(err, "message", None)) else str(err)
    described = {"type": type(err).__name__, "status": status, "message": message}
    if hasattr(
        err, "server_message"
    ):  # huggingface_hub: the server's own error message
        described["server_message"] = err.server_message
    return described


def run(case: Case) -> dict[str, Any]:
    try:
        return {"result": CLIENTS[case["client"]](case)}
    # every client error is reported to the test, which asserts on its type, status and message
    except Exception as err:  # noqa: BLE001
        return {"error": describe_error(err)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    cases = json.load(sys.stdin)
    json.dump([run(case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
