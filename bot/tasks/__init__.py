"""Tasks: GitLab issues created and managed from Slack (/task, the modal, the message shortcut,
and the alert thread's Create task button)."""
