"""Authorization over every URL of the site: each route of the table (authz_table.py) probed with each
persona and method, against the status (and effect) the table expects; no answer carries ground truth or
another team's private things; what one may not see is answered exactly as what does not exist.

The table is complete by construction: a URL pattern without a row fails the first test."""

from __future__ import annotations

import pytest
from django.urls import resolve

from .authz_table import Probe, route_keys, table
from .authz_world import World, as_missing, leaks, probe
from .authz_world import *  # noqa: F403  (its fixture)

TABLE = table()


def _is_api(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith(("/api/docs/", "/api/schema/"))


def _route_of(path: str) -> str:
    match = resolve(path.split("?", 1)[0])
    return match.view_name if match.url_name else match.route


def test_it_has_a_row_for_every_url_and_none_for_a_url_that_is_gone():
    routes = list(route_keys())
    assert len(routes) == len(set(routes)), "two patterns share a name"
    assert sorted(set(routes) - set(TABLE)) == [], "URLs without a row in authz_table.py"
    assert sorted(set(TABLE) - set(routes)) == [], "rows for URLs that no longer exist"
    assert all(TABLE[route] for route in TABLE)


def _cells(world: World, route: str, probes: list[Probe]) -> list[str]:
    """Every persona × probe of one route; the mismatches, each in a line."""
    wrong = []
    for item in probes:
        path = world.path(item.path)
        assert _route_of(path) == route, f"{path} is served by {_route_of(path)}, not {route}"
        request = {"method": item.method, "data": item.data, "kind": item.kind, "api": _is_api(path),
                   "state": item.state, "prepare": item.prepare}
        for persona, (status, effect) in item.expected().items():
            got = probe(world, persona, path=path, **request)
            cell = f"{item.method} {path} as {persona}"
            if (got.status, got.effect) != (status, effect):
                wrong.append(f"{cell}: {got.status}{'+' if got.effect else ''}, the table says "
                             f"{status}{'+' if effect else ''}")
            wrong += [f"{cell} shows {leak}" for leak in leaks(world, persona, path, got.body)]
            if item.twin and got.status in (404, 406):
                twin = probe(world, persona, path=world.path(item.twin), **request)
                names = [n for n in path.split("/") + world.path(item.twin).split("/") if n]
                if (twin.status, as_missing(twin.body, *names)) != (got.status, as_missing(got.body, *names)):
                    wrong.append(f"{cell}: {got.status} unlike a missing one ({twin.status}): existence leaks")
    return wrong


@pytest.mark.parametrize("route", sorted(TABLE))
def test_each_persona_gets_what_the_table_says(world, route):
    wrong = _cells(world, route, TABLE[route])
    assert not wrong, "\n".join(wrong)

