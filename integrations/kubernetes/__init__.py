"""Kubernetes as a deployer: an Argo Rollout, whose steps Argo runs and opsloop approves, or a
plain Deployment, canaried by a second Deployment `<name>-canary`.

- plugin.py: what the bot wires: used when a service says `deployer: kubernetes`.
- config.py: such a service's YAML (KubernetesService).
- client.py: kubernetes-asyncio behind `KubeClient` (public: get and patch any object, a
  Deployment's shortcuts for other packages), connected on first use, every call bounded.
- errors.py: the one place its failures become `IntegrationError("Kubernetes", ...)`.
- watching.py: following one object (watch, relist on 410, poll fallback).
- pods.py: a pod template's containers and the JSON patch that sets an image.
- base.py: what both deployers share; `set_image_tag` (public) sets a container's image.
- argo.py, rollouts.py: a Rollout read, the patches of `kubectl argo rollouts`, the deployer.
- canary.py, deployments.py: the canary Deployment and the plain-Deployment deployer.
- access.py: `opsloop check`'s line (SelfSubjectAccessReviews).

Importing any of these does not load kubernetes-asyncio; the first call to the cluster does.
"""
