"""An in-process Prometheus: the part of its HTTP API opsloop uses for a canary's evidence,
with plausible numbers per service and version, for the sandbox (and tests of it).

emu = PrometheusEmulator()
async with emu.serve() as url:                 # url: http://127.0.0.1:<free port>
    GET {url}/api/v1/query?query=...            # an instant vector of one sample, or none
    emu.set("api", "2", error_ratio=0.05)       # what a version of a service shows
    emu.down = True                             # every query answers 503, as a sick one would
    emu.queries                                 # every query asked, in arrival order

A query is read only as far as the sandbox's `analysis` needs: its `service="..."` (or
`app="..."`) and `version="..."` matchers pick the series, and its metric picks the number:
`http_request_duration_seconds` (a latency in seconds, read as p99) or `http_requests_total`
(the share of 5xx responses). A version whose name contains `bad` regresses: three times the
errors and twice the latency of a healthy one. Anything else answers an empty vector.
"""

from .emulator import PrometheusEmulator, Series

__all__ = ["PrometheusEmulator", "Series"]
