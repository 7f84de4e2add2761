"""opsloop's configuration for the Kubernetes cases of `bench.deploy_flow`: two services in
namespace `shop`, started as the Docker case starts its own (`deploy_flow.start_stack`), with
OPSLOOP_KUBECONFIG pointing at the emulator's kubeconfig."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench._common import Children
from bench.deploy_flow import APPROVER, CHANNEL, DEPLOYER, Stack, start_stack

NS = "shop"


def config_yaml(replicas: int) -> str:
    """`shop`: an Argo Rollout (its steps are its own); `cart`: a plain Deployment."""
    common = f"    deployer: kubernetes\n    namespace: {NS}\n    approvals: 1\n"
    common += f"    channel: {CHANNEL}\n"
    return (
        f"roles: {{deployers: [{DEPLOYER}], approvers: [{APPROVER}]}}\n"
        "services:\n"
        f"  shop:\n{common}    rollout: shop\n"
        f"  cart:\n{common}    deployment: cart\n    replicas: {replicas}\n"
        "    steps: [25, 50, 100]\n"
    )


def start_kube_stack(
    children: Children,
    *,
    api_url: str,
    token: str,
    secret: str,
    redis_port: int,
    kubeconfig: Path,
    args: argparse.Namespace,
) -> Stack:
    """opsloop serve (and a worker) and the bare Bolt app; blocking: run it in a thread."""
    return start_stack(
        children,
        api_url=api_url,
        token=token,
        secret=secret,
        redis_port=redis_port,
        args=args,
        config_text=config_yaml(args.replicas),
        system_env={"OPSLOOP_KUBECONFIG": str(kubeconfig)},
    )
