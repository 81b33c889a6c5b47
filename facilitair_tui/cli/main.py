"""``facilitair``: the headless front end, one command family per module.

``facilitair collaborate TASK`` runs a session on the terminal; ``facilitair sessions`` lists,
replays, resumes and forks the recorded ones; ``facilitair cache`` questions the semantic cache;
``facilitair models`` installs and lists the models; ``facilitair stats`` sums up what the
sessions cost and how the models did. Exit codes: 0 done, 2 usage error,
3 configuration or provider error, 130 interrupted.
"""

from __future__ import annotations

import click

from facilitair_tui import __version__
from facilitair_tui.cli.cache import cache_group
from facilitair_tui.cli.collaborate import collaborate
from facilitair_tui.cli.eval import eval_command
from facilitair_tui.cli.models import models_group
from facilitair_tui.cli.sessions import sessions_group
from facilitair_tui.cli.stats import stats_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facilitair")
def main() -> None:
    """Facilitair: several LLM agents work on your software task together, live."""


main.add_command(collaborate)
main.add_command(sessions_group)
main.add_command(cache_group)
main.add_command(models_group)
main.add_command(eval_command)
main.add_command(stats_command)


if __name__ == "__main__":  # pragma: no cover
    main()
