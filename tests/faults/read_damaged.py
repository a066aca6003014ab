"""Run every read path over damaged copies of a trace; one JSON line per case on stdout.

    python tests/faults/read_damaged.py TRACE --seed S --cases N [--first K] [--memory-mib M] [--seconds T]

Each case (``damage.damaged(trace, seed, case)``) is loaded, summarised
(document and text), profiled in every pprof type, exported to Perfetto and
Chrome's JSON and served through every viewer API route. Its outcome is ``ok`` (all of that worked), ``refused``
(``load`` raised a one-line ``TraceFormatError``), ``error`` (anything else
escaped: the detail names it), ``timeout`` (over ``--seconds``) or
``memory`` (``MemoryError`` under the ``--memory-mib`` address-space
limit). A case is made again from its seed and number alone: ``--first K
--cases 1``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.export import chrome, perfetto, pprof
from exectracer.export.timeline import Timeline
from exectracer.reader import TraceFormatError, TraceWarning
from exectracer.report import render
from exectracer.web.api import BadRequest, Download, NotFound, ViewerAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from damage import damaged


class CaseTimeout(Exception):
    """The case ran over its time."""


def read_everything(data: bytes) -> int:
    """Every read path over ``data``; the number of events loaded. TraceFormatError if it is not a trace."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        trace = exectracer.load(data)
    doc = trace.analysis.summary()
    render(doc, "damaged.xtrace", 100)
    json.dumps(doc, allow_nan=False)
    for kind in PROFILE_TYPES:
        pprof.to_proto(trace.analysis.profile(kind)).SerializeToString()
    perfetto.write(Timeline(trace.analysis), io.BytesIO())
    with contextlib.suppress(chrome.TooLarge):
        chrome.write(Timeline(trace.analysis), io.BytesIO())
    api = ViewerAPI(trace)
    lanes = api.lane_list({})
    for route, params in _requests(api, lanes):
        try:
            answer = api.routes[route](params)
        except (BadRequest, NotFound):
            continue
        if not isinstance(answer, Download):  # a pprof file
            json.dumps(answer, allow_nan=False, default=_plain)
    return trace.event_count


def _requests(api: ViewerAPI, lanes: dict) -> list[tuple[str, dict[str, str]]]:
    """A request to every route, and to a few lanes and goroutines."""
    end = str(max(api.trace.duration_ns, 1))
    requests = [
        ("/api/info", {}),
        ("/api/summary", {}),
        ("/api/goroutines", {}),
        ("/api/mmu", {}),
        ("/api/latency", {"what": "tasks"}),
        ("/api/latency", {"what": "regions"}),
        ("/api/logs", {}),
        ("/api/range", {"start": "0", "end": end}),
        *(("/api/profile", {"type": kind}) for kind in PROFILE_TYPES),
        ("/api/pprof", {"type": "net"}),
    ]
    goroutines = [int(g) for g in api.analysis.goroutines.ids[:5]]
    for g in goroutines:
        requests += [
            ("/api/spans", {"lanes": f"g:{g}", "start": "0", "end": end, "width": "200"}),
            ("/api/span", {"g": str(g), "t": str(int(end) // 2)}),
            ("/api/related", {"g": str(g)}),
        ]
    for loop in lanes.get("loops", [])[:2]:
        requests.append(("/api/spans", {"lanes": f"loop:{loop['id']}", "start": "0", "end": end, "width": "200"}))
    return requests


def _plain(value: object) -> object:
    tolist = getattr(value, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return tolist()


def run_case(original: bytes, seed: int, case: int, seconds: float) -> dict[str, object]:
    name, data = damaged(original, seed, case)
    outcome: dict[str, object] = {"case": case, "damage": name, "bytes": len(data)}
    began = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        outcome["events"] = read_everything(data)
        outcome["outcome"] = "ok"
    except TraceFormatError as exc:
        message = str(exc)
        outcome["outcome"] = "refused" if "\n" not in message and "Traceback" not in message else "error"
        outcome["detail"] = message[:300]
    except CaseTimeout:
        outcome["outcome"] = "timeout"
    except MemoryError:
        outcome["outcome"] = "memory"
    except Exception:
        outcome["outcome"] = "error"
        outcome["detail"] = traceback.format_exc()[-2000:]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    outcome["seconds"] = round(time.perf_counter() - began, 3)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--memory-mib", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    limit = args.memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def timed_out(signum: int, frame: object) -> None:
        raise CaseTimeout

    signal.signal(signal.SIGALRM, timed_out)
    original = args.trace.read_bytes()
    for case in range(args.first, args.first + args.cases):
        print(json.dumps(run_case(original, args.seed, case, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
