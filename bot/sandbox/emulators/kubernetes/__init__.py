"""An in-process Kubernetes API server: Deployments, ReplicaSets, Argo Rollouts (and Flagger
Canaries, stored only), for tests
and the sandbox. kubectl and kubernetes-asyncio talk to it as to a real cluster (HTTPS with a
CA it makes, a bearer token, discovery, watch, Kubernetes `Status` errors).

emu = KubernetesEmulator()                     # namespace `default`; ready_seconds=0.3
emu.add_deployment("shop", "cart", image="cart:1", replicas=2)     # available at once
emu.add_rollout("shop", "shop", image="shop:1", replicas=5,
                steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
async with emu.serve() as url:                 # https://127.0.0.1:<free port>
    emu.kubeconfig(path, context="opsloop-emulator", namespace="shop")  # CA, token, context
    # kubectl --kubeconfig path ...; await kubernetes_asyncio.config.load_kube_config(path)
    emu.object("Rollout", "shop", "shop")      # as the API shows it (KeyError if absent)
    emu.objects("ReplicaSet", "shop")          # every one, by name
    emu.requests                               # every request: method, path, query,
                                               # content_type, body (parsed), token_ok, status

The stable interface (other branches build on it; extend, do not change):
- KubernetesEmulator(token=, user=, ready_seconds=0.3, time_scale=0.01); `serve(host, port)`,
  `url`, `token`, `user` (named in Forbidden messages), `ca_pem`, `client_ssl_context()`,
  `kubeconfig(path, context=, namespace=, token=)` (a wrong `token` to test a refusal).
- Arranging: `add_namespace(name)`, `add_deployment(ns, name, image=, replicas=1, labels=,
  container="app", progress_deadline_seconds=600, settled=True)`, `add_rollout(ns, name,
  image=, replicas=5, steps=, labels=, container="app", progress_deadline_seconds=600,
  settled=True)`; pod labels default to `{"app": name}`, the container is named "app";
  `add_canary(ns, name, target=, target_kind="Deployment")`: a Flagger Canary
  (flagger.app/v1beta1, canaries.py), stored and served only (no Flagger controller).
- Reading: `object(kind, ns, name)`, `objects(kind, ns="")`, `has(kind, ns, name)`; kinds by
  name, plural or short name (`Deployment`, `rollouts`, `rs`). `requests`, `requests_to(glob,
  method)`, `max_requests` (10 000: past twice that, the oldest are dropped; None: keep all).
- Controllers: run while serving; `reconcile()` is one pass, `settle()` passes as if pods were
  ready. `ready_seconds`: delay before new pods are available. `time_scale`: factor on the
  durations objects state (progressDeadlineSeconds, `pause: {duration}`; 0.01: 600 s -> 6 s).
  `fail_image(image or tag)` / `heal_images()`: its pods never become available (Deployment:
  Progressing False ProgressDeadlineExceeded after the deadline; Rollout: Degraded with
  Argo's message). `inconclusive(ns, name)`: paused, reason InconclusiveAnalysisRun.
- Faults: `fail(status, times=, path=glob, method=, retry_after=1)` answers a Status (429 and
  503 with Retry-After), `heal()`; `delay` (seconds before every answer); `hold(glob,
  seconds, method=)` returns a Hold to release (`hold.seconds = 0`), `release_holds()`.
- Access: `deny(verb=, resource=, namespace=, name=, group=)` (None: any; resource
  `deployments` or `rollouts/status`): 403 Forbidden in kube-apiserver's words on the real
  path, `allowed: false` from a SelfSubjectAccessReview; `allow_all()`.
- Watch: `compact()` drops the event history (a watch from before answers 410 Expired);
  `bookmark_seconds` (1.0) between BOOKMARK events when a watch allows them.

What it simulates (controllers/): a Deployment makes one ReplicaSet per pod template
(`pod-template-hash`), scales the new one to spec.replicas and the old ones to 0 once the new
pods are available (no surge arithmetic), and writes status and the Available/Progressing
conditions. A Rollout walks its canary steps like Argo Rollouts' basic canary (replica counts
by Argo's rounding, pause conditions, promote `{"status":{"pauseConditions":null}}`, abort
`{"status":{"abort":true}}`, retry `{"status":{"abort":false}}`, `promoteFull`,
`spec.paused`); analysis and experiment steps pass at once. Strategic merge patches on a
Rollout answer 415, as a CRD does; status written through the Rollout itself keeps
`pauseConditions` and `abort` only (what `kubectl argo rollouts promote` falls back to).
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
