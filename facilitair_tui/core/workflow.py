"""Workflows as data: roles, the chunk plan, who reads whom, and the synthesizer, from TOML.

The default workflow ships in the package (``data/workflows/default.toml``); ``load_workflow``
reads any other. Every problem in a file is reported with the file, the place and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .provider import ConfigurationError, ModelRef, UsageError

DEFAULT_WORKFLOW = "default"


class WorkflowError(ConfigurationError):
    """A workflow file cannot be used; the message names the file, the place and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_models(models: object) -> dict[str, tuple[str, ...]]:
    """Strategy -> models, each a ``provider:model`` or a list of them (the first, then fallbacks)."""
    if not isinstance(models, Mapping):
        raise ValueError("expected a table of strategy = model (or list of models)")
    normalised: dict[str, tuple[str, ...]] = {}
    for strategy, spec in models.items():
        specs = [spec] if isinstance(spec, str) else spec
        if not isinstance(specs, list | tuple) or not all(isinstance(s, str) for s in specs):
            raise ValueError(f"strategy {strategy!r}: expected a model or a list of models")
        if not specs:
            raise ValueError(f"strategy {strategy!r} lists no model")
        for one in specs:
            try:
                ModelRef.parse(one)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        normalised[str(strategy).strip().lower()] = tuple(one.strip() for one in specs)
    if not normalised:
        raise ValueError("at least one strategy -> model entry is needed")
    return normalised


class _RunsOnModels(_Strict):
    """Anything that calls a model: strategy name -> its models, the first used, the rest its
    fallbacks in order."""

    name: str
    models: dict[str, tuple[str, ...]]

    @field_validator("models", mode="before")
    @classmethod
    def _normalise_models(cls, value: object) -> dict[str, tuple[str, ...]]:
        return _check_models(value)


class Role(_RunsOnModels):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str = ""
    icon: str = "•"
    system_prompt: str = Field(min_length=1)
    reads: tuple[str, ...] = ()
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    # This role's sampling temperature (the workflow's default when unset); 0 is greedy.
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    # How often this role's cut answer is continued (the workflow's default when unset).
    continue_cut: int | None = Field(default=None, ge=0, le=3)

    @property
    def display_name(self) -> str:
        return self.title or self.name.capitalize()


class Synthesizer(_RunsOnModels):
    name: str = Field(default="synthesizer", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str = "Synthesizer"
    icon: str = "🔄"
    system_prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=400, ge=16, le=32768)


class Chunk(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    # The role whose Python is run (with the tests the agents wrote) once the chunk's agents are
    # done; what it showed reaches the synthesis and the chunks after it.
    run_code: str | None = None


class CodeLoop(_Strict):
    """A workflow whose team writes a Python function and proves it by running tests
    (``core.code_loop``): the first chunk writes the code and the tests, each later chunk is a
    repair round, run only while tests fail. Chunks are chosen by the tests, not by a model, so
    such a workflow needs no synthesizer."""

    coder: str
    tester: str | None = None
    # Candidates per repair round: the coder's repair of the best one so far, and fresh samples
    # of the first prompt at ``sample_temperature`` beside it. The one that passes most tests
    # (the task's own examples first, then the tester's) is kept.
    candidates: int = Field(default=2, ge=1, le=8)
    sample_temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)
    test_timeout_s: float = Field(default=3.0, gt=0.0, le=600.0)
    memory_mb: int = Field(default=512, ge=64, le=65536)
    # The tester's tests that count (the first ones it writes).
    max_tests: int = Field(default=10, ge=1, le=100)


class Defaults(_Strict):
    # A reader starts once each upstream has produced this many deltas (or has finished).
    read_after_tokens: int = Field(default=24, ge=0, le=100_000)
    max_tokens: int = Field(default=320, ge=1, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    # An answer the model stopped at max_tokens is continued this many times before it counts as
    # cut (each continuation may write max_tokens more). A --max-tokens of the user's is a cap:
    # then nothing is continued.
    continue_cut: int = Field(default=0, ge=0, le=3)


class Workflow(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    default_strategy: str = "local"
    defaults: Defaults = Defaults()
    roles: tuple[Role, ...] = Field(min_length=1)
    # Merges each chunk; None only in a code workflow, whose chunks the tests settle.
    synthesizer: Synthesizer | None = None
    chunks: tuple[Chunk, ...] = Field(min_length=1)
    code: CodeLoop | None = None

    @model_validator(mode="after")
    def _check_graph(self) -> Workflow:
        names = [r.name for r in self.roles]
        if len(set(names)) != len(names):
            raise ValueError(f"role names must be unique, got {names}")
        if self.synthesizer is None and self.code is None:
            raise ValueError("a [synthesizer] is needed (only a workflow with a [code] loop goes without)")
        if self.synthesizer is not None and self.synthesizer.name in names:
            raise ValueError(f"the synthesizer's name {self.synthesizer.name!r} is also a role's name")
        if self.code is not None:
            for what, name in (("coder", self.code.coder), ("tester", self.code.tester)):
                if name is not None and name not in names:
                    raise ValueError(f"code.{what} names unknown role {name!r} (roles: {names})")
        chunk_ids = [c.id for c in self.chunks]
        if len(set(chunk_ids)) != len(chunk_ids):
            raise ValueError(f"chunk ids must be unique, got {chunk_ids}")
        for role in self.roles:
            for upstream in role.reads:
                if upstream == role.name:
                    raise ValueError(f"role {role.name!r} reads itself")
                if upstream not in names:
                    raise ValueError(f"role {role.name!r} reads unknown role {upstream!r} (roles: {names})")
        self._check_acyclic()
        for chunk in self.chunks:
            if chunk.run_code is not None and chunk.run_code not in names:
                raise ValueError(f"chunk {chunk.id!r}: run_code names unknown role {chunk.run_code!r}")
        strategies = self.strategies
        for member in self.members:
            missing = [s for s in strategies if s not in member.models]
            if missing:
                raise ValueError(f"role {member.name!r} has no model for strategy {', '.join(missing)}")
        if self.default_strategy.lower() not in strategies:
            raise ValueError(f"default_strategy {self.default_strategy!r} is not one of {list(strategies)}")
        return self

    def _check_acyclic(self) -> None:
        reads = {r.name: r.reads for r in self.roles}
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise ValueError(f"roles read each other in a cycle ({cycle}); nobody could start")
            state[name] = 1
            for upstream in reads[name]:
                visit(upstream, [*path, name])
            state[name] = 2

        for name in reads:
            visit(name, [])

    @property
    def members(self) -> tuple[Role | Synthesizer, ...]:
        """Everyone who calls a model: the roles, then the synthesizer if there is one."""
        return self.roles if self.synthesizer is None else (*self.roles, self.synthesizer)

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def merger(self) -> Synthesizer:
        """The synthesizer of a workflow that merges its chunks with one (every workflow without
        a [code] loop)."""
        if self.synthesizer is None:
            raise RuntimeError(f"workflow {self.name!r} has no synthesizer: its chunks are settled by tests")
        return self.synthesizer

    @property
    def strategies(self) -> tuple[str, ...]:
        """Every strategy named anywhere, in first-seen order (validation makes each role define all)."""
        seen: dict[str, None] = {}
        for member in self.members:
            seen.update(dict.fromkeys(member.models))
        return tuple(seen)

    def role(self, name: str) -> Role:
        for role in self.roles:
            if role.name == name:
                return role
        raise KeyError(name)

    def models_for(self, strategy: str) -> dict[str, ModelRef]:
        """Role name (and synthesizer) -> model for a strategy."""
        return {name: models[0] for name, models in self._chains(strategy).items()}

    def fallbacks_for(self, strategy: str) -> dict[str, tuple[ModelRef, ...]]:
        """Role name (and synthesizer) -> the models tried after its own, in order."""
        return {name: models[1:] for name, models in self._chains(strategy).items()}

    def usable_chains(
        self, strategy: str, usable: Callable[[ModelRef], bool]
    ) -> dict[str, tuple[ModelRef, ...]]:
        """Role (and synthesizer) -> the models of its list for ``strategy`` that ``usable`` accepts."""
        chains = self._chains(strategy)
        return {name: tuple(ref for ref in refs if usable(ref)) for name, refs in chains.items()}

    def _chains(self, strategy: str) -> dict[str, tuple[ModelRef, ...]]:
        key = strategy.strip().lower()
        if key not in self.strategies:
            raise UsageError(
                f"unknown strategy {strategy!r}; this workflow offers: {', '.join(self.strategies)}"
            )
        return {m.name: tuple(ModelRef.parse(spec) for spec in m.models[key]) for m in self.members}

    def with_strategies(self, overrides: Mapping[str, Mapping[str, object]]) -> Workflow:
        """This workflow with the config file's ``[strategies.NAME]`` tables applied: each sets
        the model (or model list) of the roles it names for that strategy; a new strategy must
        name every role and the synthesizer. Raises ``ValueError`` saying what is wrong."""
        if not overrides:
            return self
        data = self.model_dump()
        merger = [data["synthesizer"]] if data["synthesizer"] is not None else []
        members = {m["name"]: m for m in (*data["roles"], *merger)}
        for strategy, table in overrides.items():
            for name, models in table.items():
                if name not in members:
                    raise ValueError(
                        f"strategies.{strategy}: no role {name!r} in workflow {self.name!r} "
                        f"(its roles: {', '.join(members)})"
                    )
                members[name]["models"][strategy.strip().lower()] = models
        try:
            return Workflow.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"strategies: {first['msg'].removeprefix('Value error, ')}") from None


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def parse_workflow(data: Mapping[str, Any], source: str) -> Workflow:
    try:
        return Workflow.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _format_location(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {loc}: {msg}")
        raise WorkflowError("invalid workflow\n  " + "\n  ".join(problems)) from None


def packaged_names() -> list[str]:
    """The workflows that ship with Facilitair, by name (``default``, ``code``)."""
    folder = resources.files("facilitair_tui") / "data" / "workflows"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def packaged_workflows() -> list[Workflow]:
    return [load_workflow(name) for name in packaged_names()]


def load_workflow(path: str | Path | None = None) -> Workflow:
    """Load a workflow: the packaged default when ``path`` is None, a packaged one by name
    (``code``), or any file."""
    name = DEFAULT_WORKFLOW if path is None else str(path)
    if name in packaged_names() and not Path(name).exists():
        ref = resources.files("facilitair_tui") / "data" / "workflows" / f"{name}.toml"
        return parse_workflow(tomllib.loads(ref.read_text(encoding="utf-8")), f"<packaged {name}>")
    p = Path(name)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowError(
            f"workflow file {p} does not exist; give a .toml file or a packaged workflow "
            f"({', '.join(packaged_names())})"
        ) from None
    except IsADirectoryError:
        raise WorkflowError(f"workflow file {p} is a directory; give the path of a .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot read workflow file {p}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(f"{p}: not valid TOML: {exc}") from None
    return parse_workflow(data, str(p))
