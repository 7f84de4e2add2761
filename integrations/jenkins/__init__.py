"""Jenkins: the CI system for projects with `jenkins: <job path>` (client.py, ci.py, plugin.py,
hook.py for the Notification plugin's calls)."""
