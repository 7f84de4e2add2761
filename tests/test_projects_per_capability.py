"""A project may name a CI system without a tracker (`jenkins:` alone) or a tracker without a
CI system (`jira:` alone): each command then says what the project lacks and what to add,
instead of calling a system with an empty project, and the task form lists only the projects
that take tasks."""

from __future__ import annotations

from bot.config_file import OpsConfig, Project, Roles
from bot.tasks.messages import modal
from tests.harness import gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

PROJECTS = {
    "web": Project(gitlab="acme/web", channel="C0GENERAL"),
    "legacy": Project(jenkins="folder/legacy-build"),
    "ops": Project(jira="OPS"),
}


async def test_a_project_without_a_ci_system_or_tracker_says_what_to_add(redis_url: str) -> None:
    config = OpsConfig(roles=Roles(deployers=["U0ALICE"]), projects=PROJECTS)
    async with (
        running_gitlab() as gitlab,
        running_bot(redis_url, config=config, **gitlab_env(gitlab)) as bot,
    ):
        await bot.driver.command("/build", "ops", user="U0ALICE", channel="C0GENERAL")
        [said] = await eventually(
            lambda: [e.text for e in bot.emulator.ephemerals(user="U0ALICE") if "ops" in e.text],
            what="the answer to /build ops",
        )
        assert "nothing to build" in said and "`jenkins: <job path>`" in said, said

        await bot.driver.command(
            "/task", "Fix it project:legacy", user="U0CAROL", channel="C0GENERAL"
        )
        [said] = await eventually(
            lambda: [e.text for e in bot.emulator.ephemerals(user="U0CAROL") if "legacy" in e.text],
            what="the answer to /task project:legacy",
        )
        assert "no task tracker" in said and "`jira: <KEY>`" in said, said
        assert gitlab.issues("acme/web") == [], "nothing was filed elsewhere"


def test_the_task_form_lists_only_projects_that_take_tasks() -> None:
    view = modal(PROJECTS, channel="C0GENERAL", initial_project=None)
    text = str(view)
    assert "web (acme/web)" in text and "ops (OPS)" in text
    assert "legacy" not in text
