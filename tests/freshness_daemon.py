"""Dagster's freshness daemon, run in a test the way Dagster's own tests run it: one iteration of
FreshnessDaemon over a workspace holding real code locations (loaded in this process). It writes
the FRESHNESS_STATE_CHANGE events the notification sensors read."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from common.settings import PROJECT_ROOT


@contextmanager
def daemon_workspace(
    instance: dg.DagsterInstance, *modules: str
) -> Iterator[WorkspaceProcessContext]:
    """A workspace of these modules' `defs`, each a code location named after its module."""
    origins = [
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable,
                module_name=module,
                attribute="defs",
                working_directory=str(PROJECT_ROOT),
            ),
            location_name=module.rsplit(".", 1)[-1],
        )
        for module in modules
    ]
    target = InProcessWorkspaceLoadTarget(origins)
    with create_test_daemon_workspace_context(target, instance) as context:
        yield context


def evaluate_freshness(workspace: WorkspaceProcessContext) -> None:
    """What the daemon does every 30 s: evaluate every policy, record each state change."""
    list(FreshnessDaemon().run_iteration(workspace))
