"""Builds: GitLab pipelines triggered from Slack and followed in one live message."""
