"""COMMANDS: the one table of pybuild's verbs, and the modules that implement them.

Each row names where the verb's click command lives ("module:attribute", imported when that
verb runs, so `pybuild parse` does not pay for the builder and `pybuild ps` not for the
registry client) and whether an ordinary user runs it in pybuild's user namespace (every verb
that touches the store or runs a container) or as themselves. `pybuild.cli` dispatches from
this table, and catches every verb's PybuildError (and OSError) in its one error handler.

Adding a verb: its click command in a module here, one row below.
"""

from __future__ import annotations

from pyrunc.record import Record


class Command(Record):
    target: str               # "module:attribute" of the click.Command
    userns: bool = True       # an ordinary user runs it in a user namespace (pybuild.rootless)

    def load(self):  # type: ignore[no-untyped-def]
        """The click.Command, its module imported now."""
        import importlib

        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


COMMANDS: dict[str, Command] = {
    "build": Command("pybuild.commands.build:build"),
    "parse": Command("pybuild.commands.parse:parse", userns=False),
    "images": Command("pybuild.commands.images:images"),
    "inspect": Command("pybuild.commands.inspect:inspect"),
    "tag": Command("pybuild.commands.images:tag"),
    "rmi": Command("pybuild.commands.images:rmi"),
    "prune": Command("pybuild.commands.images:prune"),
    "fsck": Command("pybuild.commands.images:fsck"),
    "export": Command("pybuild.commands.images:export"),
    "import": Command("pybuild.commands.images:import_"),
    "bundle": Command("pybuild.commands.images:bundle"),
    "pull": Command("pybuild.commands.registry:pull"),
    "push": Command("pybuild.commands.registry:push"),
    "login": Command("pybuild.commands.registry:login", userns=False),
    "logout": Command("pybuild.commands.registry:logout", userns=False),
    "save": Command("pybuild.commands.archives:save"),
    "load": Command("pybuild.commands.archives:load"),
    "run": Command("pybuild.commands.run:run"),
    "ps": Command("pybuild.commands.containers:ps"),
    "stop": Command("pybuild.commands.containers:stop"),
    "rm": Command("pybuild.commands.containers:rm"),
    "logs": Command("pybuild.commands.containers:logs"),
    "commit": Command("pybuild.commands.containers:commit"),
    "exec": Command("pybuild.commands.exec:exec_", userns=False),  # joins the container's (rootless.join)
    "top": Command("pybuild.commands.lifecycle:top"),
    "port": Command("pybuild.commands.lifecycle:port"),
    "wait": Command("pybuild.commands.lifecycle:wait"),
    "kill": Command("pybuild.commands.lifecycle:kill"),
    "restart": Command("pybuild.commands.lifecycle:restart"),
    "volume": Command("pybuild.commands.volumes:volume"),
    "info": Command("pybuild.commands.info:info"),
    "system": Command("pybuild.commands.info:system"),
}
