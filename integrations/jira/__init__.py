"""Jira (Cloud, REST API v3; Data Center, REST API v2) as opsloop's task tracker."""
