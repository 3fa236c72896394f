"""StageState's incremental views (expansion env, ENV list, owned labels, pending history): what
keeps a Dockerfile of n metadata lines O(n). Checked against the naive definitions."""

from __future__ import annotations

from pyrunc.record import replace

from pybuild.image import ContainerConfig, ImageConfig
from pybuild.steps.contract import StageState, with_container


def _state(env=(), labels=None) -> StageState:
    cfg = ImageConfig(architecture="amd64", os="linux",
                      config=ContainerConfig(env=tuple(env), labels=dict(labels or {})))
    return StageState(config=cfg, layers=(), key="k", base_digest=None)


def _naive_env(st: StageState) -> dict[str, str]:
    out = {k: v for k, v in st.args.items() if v is not None}
    out.update(st.container.env_dict())
    return out


def test_env_view_follows_args_env_and_outside_replacements():
    st = _state(env=["PATH=/bin", "A=1", "A=dup"])
    assert st.env() == _naive_env(st) == {"PATH": "/bin", "A": "dup"}
    st.set_arg("B", "arg")
    st.set_arg("A", "arg-loses")          # ENV wins over ARG
    st.set_arg("U", None)                 # declared, unset
    assert st.env() == _naive_env(st)
    st.config = with_container(st, env=st.set_env([("A", "2"), ("C", "3")]))
    assert st.container.env == ("PATH=/bin", "A=2", "A=dup", "C=3")  # the first A is replaced, as before
    assert st.env() == _naive_env(st)
    st.set_arg("C", "ignored")
    st.set_arg("D", "4")
    assert st.env() == _naive_env(st)
    # a config replaced from outside (a cache hit) is picked up
    st.config = with_container(st, env=("X=9",))
    assert st.env() == _naive_env(st)
    assert st.set_env([("X", "10")]) == ("X=10",)


def test_labels_are_copied_once_then_owned():
    base = {"a": "1"}
    st = _state(labels=base)
    labels = st.labels_to_update()
    assert labels is not base and labels == base          # never modify a config we do not own
    labels["b"] = "2"
    st.config = with_container(st, labels=labels)
    assert st.labels_to_update() is labels               # owned: no second copy
    assert base == {"a": "1"}
    shared = st.config                                  # another stage starting from this config
    child = StageState(config=shared, layers=(), key="k2", base_digest=None)
    child.labels_to_update()["c"] = "3"
    assert "c" not in st.container.labels
    st.config = replace(st.config, config=replace(st.container, labels={"z": "0"}))
    assert st.labels_to_update() == {"z": "0"} and st.labels_to_update() is not labels
