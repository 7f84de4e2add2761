"""Reading the YAML file, validated against the plugins' service models.

Above the plugins (integrations/), which import the settings and the config types, so that the
file's model can have each plugin's `services` keys. A bad value stops start-up with a message
that names its YAML path as the person wrote it (`services.web.steps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.config_file import OpsConfig, config_model
from bot.errors import SettingsError
from bot.plugins import Plugin, deployer_kinds
from bot.settings import Settings, config_path
from integrations import PLUGINS


def _yaml_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _readable(err: ErrorDetails, deployers: Sequence[str]) -> tuple[tuple[int | str, ...], str]:
    """One of pydantic's errors as the YAML path and what is wrong with what is written there."""
    # pydantic's own steps (`function-after[...]`) are no part of the file.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "is not a known setting (check the spelling)"
    if len(loc) < 2 or loc[0] != "services":
        return loc, message
    service = loc[:2]
    if len(deployers) > 1 and len(loc) >= 3 and loc[2] in deployers:
        loc = (*service, *loc[3:])  # the union's tag, which the file does not write
    if err["type"] == "union_tag_not_found":
        return (*service, "deployer"), "Field required"
    if err["type"] == "union_tag_invalid":
        return (*service, "deployer"), _unknown((err.get("ctx") or {}).get("tag"), deployers)
    if err["type"] == "literal_error" and loc == (*service, "deployer"):
        return loc, _unknown(err["input"], deployers)
    return loc, message


def _unknown(deployer: Any, deployers: Sequence[str]) -> str:
    return f"{deployer!r} is not a deployer opsloop knows (known: {', '.join(deployers)})"


def parse_config(
    data: Any, source: str = "the YAML file", *, plugins: Sequence[Plugin] = PLUGINS
) -> OpsConfig:
    """Validate YAML data; raise SettingsError naming each bad path (`services.web.steps`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: the top level must be a mapping (roles:, projects:, ...)")
    models: Mapping[str, Any] = {k.name: k.model for k in deployer_kinds(plugins).values()}
    try:
        return config_model(models).model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc, message = _readable(err, sorted(models))
            lines.append(f"{_yaml_path(loc) or source}: {message}")
        raise SettingsError("\n".join(lines)) from None


def load_config(settings: Settings, *, plugins: Sequence[Plugin] = PLUGINS) -> OpsConfig:
    """Read and validate the YAML file, or the empty config when there is none."""
    path = config_path(settings)
    if path is None:
        return OpsConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"OPSLOOP_CONFIG_FILE: cannot read {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"{path}: not valid YAML{where}") from None
    return parse_config(data, str(path), plugins=plugins)
