"""An in-process Grafana: the HTTP API endpoints opsloop uses, for tests and the sandbox.

emu = GrafanaEmulator(alertmanager_url=am.url + "/api/alertmanager/grafana")
async with emu.serve() as url:        # url: http://127.0.0.1:<free port>
    ...                               # OPSLOOP_GRAFANA_URL=url, OPSLOOP_GRAFANA_TOKEN=emu.token
    emu.annotations                   # what Grafana now holds (POST /api/annotations)
    emu.fail(503, times=2)            # the next two API requests answer 503, as Grafana errors
    emu.requests                      # every request, in arrival order

Grafana's built-in Alertmanager cannot run here, so /api/alertmanager/grafana/api/v2/* is a thin
shim in front of a real Prometheus Alertmanager started with
`--web.route-prefix=/api/alertmanager/grafana`: it checks Grafana's bearer token and answers
as Grafana does (202 {"silenceID"} for a new silence, 200 {"message"} for a deleted one;
pkg/services/ngalert/api/api_alertmanager_silences.go) and passes the rest through.
"""

from .emulator import GrafanaEmulator, RecordedRequest

__all__ = ["GrafanaEmulator", "RecordedRequest"]
