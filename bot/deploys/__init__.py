"""Deploys: canary rollouts promoted by approval buttons (rules in rollout.py)."""
