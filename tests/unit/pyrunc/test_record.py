"""pyrunc.record: the frozen records pyrunc's spec model and pybuild's instructions are made of
(cheaper to create at import than dataclasses). Inheritance extends the base's fields."""

from __future__ import annotations

import pytest

from pyrunc.record import FrozenInstanceError, Record, fields, replace


class Base(Record):
    keyword: str
    line: int


class Child(Base):
    value: str = ""
    items: tuple[str, ...] = ()


def test_a_subclass_has_its_base_fields_first() -> None:
    assert fields(Child) == ("keyword", "line", "value", "items")
    c = Child("run", 3, value="x")
    assert (c.keyword, c.line, c.value, c.items) == ("run", 3, "x", ())
    assert Child.__match_args__ == fields(Child)


def test_required_base_fields_stay_required() -> None:
    with pytest.raises(TypeError, match="missing argument 'line'"):
        Child(keyword="run")


def test_records_are_frozen_compared_and_hashed_by_type_and_value() -> None:
    a, b = Child("run", 1, "x"), Child("run", 1, "x")
    assert a == b and hash(a) == hash(b)
    assert a != Base("run", 1)  # another class: never equal
    with pytest.raises(FrozenInstanceError):
        a.value = "y"  # type: ignore[misc]
    assert not hasattr(a, "__dict__")  # slotted all the way down


def test_replace_keeps_the_class_and_the_other_fields() -> None:
    c = replace(Child("run", 1, "x", ("a",)), line=2)
    assert type(c) is Child and (c.keyword, c.line, c.value, c.items) == ("run", 2, "x", ("a",))
    assert repr(c) == "Child(keyword='run', line=2, value='x', items=('a',))"


def test_redeclaring_a_base_field_is_refused() -> None:
    with pytest.raises(TypeError, match="redeclares the fields \\['line'\\]"):
        class Bad(Base):  # noqa: F841
            line: int = 0


def test_copy_deepcopy_and_pickle_rebuild_through_init() -> None:
    import copy
    import pickle

    from pyrunc.record import factory

    class WithFactory(Record):
        name: str
        items: list = factory(list)

    c = Child("run", 1, "x", ("a",))
    assert copy.copy(c) == c and copy.deepcopy(c) == c and pickle.loads(pickle.dumps(c)) == c
    a, b = WithFactory("a"), WithFactory("b")
    assert a.items == [] and a.items is not b.items  # a new list for every instance
