"""Jenkins' JSON shapes (`/api/json`, `wfapi/describe`, `testReport/api/json`), as Jenkins and
the Pipeline Stage View plugin write them."""

from __future__ import annotations

from .state import JSON, Build, JenkinsState, JobDef, QueueItem

RUN_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
FREESTYLE_RUN_CLASS = "hudson.model.FreeStyleBuild"


def job_url(base: str, path: str) -> str:
    return base.rstrip("/") + "".join(f"/job/{part}" for part in path.split("/")) + "/"


def parameters_action(parameters: dict[str, str]) -> JSON:
    return {
        "_class": "hudson.model.ParametersAction",
        "parameters": [
            {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
            for k, v in parameters.items()
        ],
    }


def cause_action(user: str) -> JSON:
    return {
        "_class": "hudson.model.CauseAction",
        "causes": [
            {
                "_class": "hudson.model.Cause$UserIdCause",
                "shortDescription": f"Started by user {user}",
                "userId": user,
                "userName": user,
            }
        ],
    }


def build_json(state: JenkinsState, base: str, build: Build) -> JSON:
    building, result, ended = state.result(build)
    job = state.jobs[build.job]
    duration = 0 if ended is None else int((ended - build.started_at) * 1000)
    actions: list[JSON] = [parameters_action(build.parameters), cause_action(build.cause_user)]
    actions.append(
        {
            "_class": "hudson.plugins.git.util.BuildData",
            "lastBuiltRevision": {"SHA1": build.sha},
            "remoteUrls": ["https://git.example.com/acme/legacy.git"],
        }
    )
    return {
        "_class": RUN_CLASS if job.pipeline else FREESTYLE_RUN_CLASS,
        "actions": actions,
        "building": building,
        "description": None,
        "displayName": f"#{build.number}",
        "duration": duration,
        "estimatedDuration": int(len(build.stages) * state.step_seconds * 1000),
        "fullDisplayName": f"{build.job.replace('/', ' » ')} #{build.number}",
        "id": str(build.number),
        "number": build.number,
        "queueId": build.queue_id,
        "result": result,
        "timestamp": int(build.started_wall * 1000),
        "url": f"{job_url(base, build.job)}{build.number}/",
    }


def queue_json(state: JenkinsState, base: str, item: QueueItem) -> JSON:
    shape: JSON = {
        "actions": [parameters_action(item.parameters), cause_action(item.cause_user)],
        "blocked": False,
        "buildable": item.build is None and not item.cancelled,
        "id": item.id,
        "inQueueSince": int(item.queued_wall * 1000),
        "params": "".join(f"\n{k}={v}" for k, v in item.parameters.items()),
        "stuck": False,
        "task": {"name": item.job.rsplit("/", 1)[-1], "url": job_url(base, item.job)},
        "url": f"queue/item/{item.id}/",
        "why": None,
    }
    if item.cancelled:
        shape.update(_class="hudson.model.Queue$LeftItem", cancelled=True, executable=None)
    elif item.build is not None:
        run = state.jobs[item.job]
        shape.update(
            _class="hudson.model.Queue$LeftItem",
            cancelled=False,
            executable={
                "_class": RUN_CLASS if run.pipeline else FREESTYLE_RUN_CLASS,
                "number": item.build,
                "url": f"{job_url(base, item.job)}{item.build}/",
            },
        )
    else:
        shape.update(
            _class="hudson.model.Queue$BuildableItem",
            why="Waiting for next available executor",
        )
    return shape


def job_json(state: JenkinsState, base: str, job: JobDef, *, full_builds: int) -> JSON:
    numbers = sorted((n for (p, n) in state.builds if p == job.path), reverse=True)
    builds: list[JSON] = []
    for k, number in enumerate(numbers):
        build = state.builds[(job.path, number)]
        if k < full_builds:
            builds.append(build_json(state, base, build))
        else:
            builds.append(
                {
                    "_class": RUN_CLASS,
                    "number": number,
                    "url": f"{job_url(base, job.path)}{number}/",
                }
            )
    definitions = [
        {
            "_class": "hudson.model.StringParameterDefinition",
            "defaultParameterValue": {
                "_class": "hudson.model.StringParameterValue",
                "name": name,
                "value": default,
            },
            "description": "",
            "name": name,
            "type": "StringParameterDefinition",
        }
        for name, default in job.parameters.items()
    ]
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob"
        if job.pipeline
        else "hudson.model.FreeStyleProject",
        "buildable": True,
        "builds": builds,
        "fullName": job.path,
        "name": job.path.rsplit("/", 1)[-1],
        "nextBuildNumber": job.next_number,
        "inQueue": any(
            i.job == job.path and i.build is None and not i.cancelled for i in state.queue.values()
        ),
        "lastBuild": builds[0] if builds else None,
        "property": [
            {
                "_class": "hudson.model.ParametersDefinitionProperty",
                "parameterDefinitions": definitions,
            }
        ]
        if definitions
        else [],
        "url": job_url(base, job.path),
    }


_WF = {"SUCCESS": "SUCCESS", "FAILURE": "FAILED", "ABORTED": "ABORTED", "UNSTABLE": "UNSTABLE"}


def describe_json(state: JenkinsState, build: Build) -> JSON:
    """`wfapi/describe` (pipeline-stage-view's RunExt): times in epoch milliseconds."""
    offset = build.started_wall - build.started_at  # clock -> wall

    def ms(t: float | None) -> int:
        return int((t + offset) * 1000) if t is not None else 0

    building, result, ended = state.result(build)
    stages = []
    for k, stage in enumerate(state.stages(build)):
        duration = 0
        if stage.started is not None:
            duration = int(((stage.ended or state.clock()) - stage.started) * 1000)
        stages.append(
            {
                "id": str(6 + 4 * k),
                "name": stage.name,
                "execNode": "",
                "status": stage.status,
                "startTimeMillis": ms(stage.started),
                "durationMillis": duration,
                "pauseDurationMillis": 0,
            }
        )
    end = ended if ended is not None else state.clock()
    return {
        "id": str(build.number),
        "name": f"#{build.number}",
        "status": "IN_PROGRESS" if building else _WF.get(result or "", "NOT_EXECUTED"),
        "startTimeMillis": ms(build.started_at),
        "endTimeMillis": ms(ended) if ended is not None else 0,
        "durationMillis": int((end - build.started_at) * 1000),
        "queueDurationMillis": 0,
        "pauseDurationMillis": 0,
        "stages": stages,
    }


def test_report_json(build: Build) -> JSON | None:
    if build.tests is None:
        return None
    passed, failed, skipped = build.tests
    if build.failing_stage is not None:
        failed += 1
    return {
        "_class": "hudson.tasks.junit.TestResult",
        "duration": 1.5,
        "empty": False,
        "failCount": failed,
        "passCount": passed,
        "skipCount": skipped,
        "suites": [
            {"name": "unit", "cases": [], "duration": 1.5},
        ],
    }
