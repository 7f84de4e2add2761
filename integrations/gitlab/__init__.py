"""GitLab: the task tracker (issues, users) and the CI system (pipelines, jobs, refs) of
bot/tasks/ports.py and bot/builds/ports.py, and a deployer (bot/deploys/ports.py) that plays
manual jobs of a pipeline, all over GitLab's REST API v4 through python-gitlab.

    plugin.py     what the bot wires: when GitLab is configured, what it provides, its check
    config.py     a `deployer: gitlab` service's YAML (GitLabService)
    adapter.py    GitLabClient, the one object the bot makes for a GitLab: all three ports
    client.py     python-gitlab in worker threads, the call budget, attempts, look-don't-resend
    errors.py     the one place GitLab's failures become IntegrationError / OutcomeUnknown
    shapes.py     GitLab's JSON as frozen types (Issue, GitLabUser, Pipeline, PipelineJob)
    issues.py     issues and users, in GitLab's words       tasks.py  the TaskTracker on them
    pipelines.py  refs and pipelines, in GitLab's words     ci.py     the CISystem on them
    jobs.py       the deployer's manual jobs (DeploysPort)  deployer.py  the Deployer on them

The calls are made once, in GitLab's words (issues.py, pipelines.py: an issue's iid, a
pipeline's source); tasks.py and ci.py only translate them into the ports' words, so a Jira or
Jenkins adapter implements the same ports without anything GitLab-shaped.

Importing this package, plugin.py or config.py does not load python-gitlab; import the module
you need (adapter.py and the modules under it load it).
"""
