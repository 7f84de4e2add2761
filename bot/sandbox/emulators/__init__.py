"""Stand-ins for Slack, GitLab and Kubernetes that speak their real APIs, for the sandbox and
the tests.

Never used by the product: only `opsloop sandbox` (bot/sandbox/runner.py) and the tests serve
them. They import nothing of the bot but its HTTP serving helper (bot/serving.py).
"""
