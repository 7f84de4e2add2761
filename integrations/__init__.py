"""The outside systems opsloop works with, one package each, and the list of their plugins.

Each package holds everything shaped by its system: the client, the one place its errors become
the bot's, its shapes, the adapters it provides for the ports (bot/<family>/ports.py), its part
of the YAML file (config.py) and its plugin (plugin.py: when it is configured, what a started
one provides, its `opsloop check` line and `/ops status` words; bot/plugins.py).

PLUGINS is the only place that names the systems. Adding one is a package and a line here.
Importing this module loads no system's SDK: each plugin's `start` imports its client.
"""

from __future__ import annotations

from integrations.alertmanager.plugin import PLUGIN as ALERTMANAGER
from integrations.docker.plugin import PLUGIN as DOCKER
from integrations.flagger.plugin import PLUGIN as FLAGGER
from integrations.gitlab.plugin import PLUGIN as GITLAB
from integrations.grafana.plugin import PLUGIN as GRAFANA
from integrations.jenkins.plugin import PLUGIN as JENKINS
from integrations.jira.plugin import PLUGIN as JIRA
from integrations.kubernetes.plugin import PLUGIN as KUBERNETES
from integrations.prometheus.plugin import PLUGIN as PROMETHEUS

PLUGINS = (GITLAB, DOCKER, ALERTMANAGER, KUBERNETES, FLAGGER, PROMETHEUS, JENKINS, GRAFANA, JIRA)

__all__ = ["PLUGINS"]
