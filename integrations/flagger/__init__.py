"""Flagger as a deployer: Flagger runs a Kubernetes Canary's analysis and traffic steps, and
asks opsloop at its webhook gates (`confirm-rollout`, `confirm-traffic-increase`,
`confirm-promotion`, `rollback`), which people answer with Approve and Reject in Slack.

- plugin.py: what the bot wires: Flagger is used when a service says `deployer: flagger`; its
  `opsloop check` line says whether OPSLOOP_FLAGGER_WEBHOOK_TOKEN is set.
- config.py: a `deployer: flagger` service's YAML (FlaggerService).
- deployer.py: `FlaggerDeployer`, whose steps are the gate's: opsloop changes nothing in the
  cluster; an approval opens the gate and a rejection opens the rollback webhook, both read
  from the rollout by the route (bot/deploys/flagger_hook.py).

Importing any of these loads no client: the gate needs none.
"""
