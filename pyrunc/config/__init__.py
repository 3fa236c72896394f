"""Reading config.json into the typed model of pyrunc.spec, field by field.

`pyrunc.spec.load/parse` are the entry points; this package is what they run:
`checks` (the JSON primitives and closed enums every section uses), `parse` (the
sections: process, root, mounts, hooks, linux), `resources` (linux.resources),
`seccomp` (linux.seccomp) and `default` (the config `pyrunc spec` writes). The first
bad field raises checks.Invalid(path, message); spec.parse turns it into the one
ConfigError line. schemas/config.schema.json states the same rules as a JSON Schema
(tests/unit/pyrunc/test_spec_property.py holds the two in agreement).
"""
