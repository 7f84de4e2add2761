"""An in-process Kubernetes API server: Deployments, ReplicaSets, Argo Rollouts, for tests
and the sandbox. kubectl and kubernetes-asyncio talk to it as to a real cluster (HTTPS with a
CA it makes, a bearer token, discovery, watch, Kubernetes `Status` errors).

emu = KubernetesEmulator()                     # namespace `default`; ready_seconds=0.3
emu.add_deployment("shop", "cart", image="cart:1", replicas=2)     # available at once
emu.add_rollout("shop", "shop", image="shop:1", replicas=5,
                steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
async with emu.serve() as url:                 # https://127.0.0.1:<free port>
    emu.kubeconfig(path, context="opsloop-emulator", namespace="shop")  # CA, token, context
    # ... kubectl --kubeconfig path get deployments; kubernetes_asyncio.config.load_kube_config
    emu.object("Rollout", "shop", "shop")      # as the API shows it (KeyError if absent)
    emu.objects("ReplicaSet", "shop")          # every one, by name
    emu.requests                               # every request: method, path, query,
                                               # content_type, body (parsed), token_ok, status

The controllers run while serving (`emu.reconcile()` is one pass, `emu.settle()` passes as if
pods were ready): a Deployment's new ReplicaSet becomes available `emu.ready_seconds` after a
change; a Rollout walks its canary steps like Argo Rollouts (controllers/rollouts.py) and
answers the promote (`{"status":{"pauseConditions":null}}`), abort and retry patches.
Durations the objects state (progressDeadlineSeconds, `pause: {duration}`) are multiplied
by `emu.time_scale` (default 0.01: a 600 s deadline passes in 6 s).

Switches for tests (controls.py, cluster.py):
    emu.fail(503, times=2, path="*/rollouts/shop/status", method="PATCH")  # Status answers
    emu.delay = 2.0; emu.hold("*/deployments/*", 5.0)  # slow answers
    emu.deny(verb="patch", resource="deployments", namespace="shop")       # 403, can-i: no
    emu.fail_image("shop:2")                   # or a tag: its pods never become available
    emu.inconclusive("shop", "shop")           # paused, reason InconclusiveAnalysis
    emu.compact()                              # watches from older versions answer 410
    emu.token, emu.user, emu.ca_pem, emu.client_ssl_context()
"""

from .emulator import DEFAULT_TOKEN, DEFAULT_USER, KubernetesEmulator
from .faults import Failure, Hold
from .models import Denial, RecordedRequest

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "Denial",
    "Failure",
    "Hold",
    "KubernetesEmulator",
    "RecordedRequest",
]
