"""Root of the command line: sub-command registration and uniform error handling.

Every failure a user can cause (bad flags, unknown models, malformed files) ends with exit code 2 and one
line on stderr naming the problem; a traceback would mean a bug in bedrock-budget itself, and ends with exit
code 70.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from bedrock_budget.errors import BedrockBudgetError

EXIT_USAGE = 2
# A bug in bedrock-budget itself (sysexits' EX_SOFTWARE): kept apart from 1, which `prices update` uses to
# say "changes found", so a cron job never mistakes a crash for news.
EXIT_INTERNAL_ERROR = 70
_INTERNAL_ERROR = "internal error in bedrock-budget (a bug: please report the traceback above)"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class _PipeClosedError(Exception):
    """The reader of our output went away (``... | head``): not an error of the command."""


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # click turns a broken pipe into sys.exit(1) itself; take it first, so `| head` exits 0 quietly.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _PipeClosedError from exc


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="bedrock-budget")
def cli() -> None:
    """Know and cap what AWS Bedrock costs you.

    Run `bedrock-budget COMMAND --help` for the options and an example of each command.
    """


def _register() -> None:
    from bedrock_budget.cli import (
        budget_commands,
        demo_commands,
        metrics_commands,
        price_commands,
        prices_commands,
        reconcile_commands,
        report_commands,
        testing_commands,
    )

    for module in (
        demo_commands,
        price_commands,
        prices_commands,
        budget_commands,
        report_commands,
        reconcile_commands,
        metrics_commands,
        testing_commands,
    ):
        module.register(cli)


def run(argv: list[str] | None = None) -> int:
    if not cli.commands:
        _register()
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        result = cli.main(args=argv, prog_name="bedrock-budget", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        return EXIT_USAGE
    except BedrockBudgetError as exc:
        click.echo(f"error: {' '.join(str(exc).split())}", err=True)
        return EXIT_USAGE
    except (BrokenPipeError, _PipeClosedError):
        _discard_stdout()
        return 0
    except Exception:
        traceback.print_exc()
        click.echo(f"error: {_INTERNAL_ERROR}", err=True)
        return EXIT_INTERNAL_ERROR
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(run())
