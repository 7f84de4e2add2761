"""Flagger as a deployer: Flagger runs a Kubernetes Canary's analysis and traffic steps, and
asks opsloop at its webhook gates (`confirm-rollout`, `confirm-traffic-increase`,
`confirm-promotion`, `rollback`), which people answer with Approve and Reject in Slack.

- plugin.py: what the bot wires: Flagger is used when a service says `deployer: flagger`; its
  `opsloop check` line says whether OPSLOOP_FLAGGER_WEBHOOK_TOKEN is set.
- config.py: a `deployer: flagger` service's YAML (FlaggerService).
- deployer.py: `FlaggerDeployer`, whose steps are the gate's: an approval opens the gate and a
  rejection opens the rollback webhook, both read from the rollout by the route
  (bot/deploys/flagger_hook.py); `/deploy` hands it a version (`hand_over`).
- target.py: what `/deploy` changes in the cluster, when the service has `image` and a cluster
  is found: the image of the Canary's target Deployment (`spec.targetRef`).

Importing any of these loads no client: the gate needs none, and the plugin makes a
`KubeClient` (integrations/kubernetes/client.py, connected on first use) only for `/deploy`.
"""
