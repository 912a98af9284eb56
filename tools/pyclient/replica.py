"""State replication on the client side (PROTOCOL.md section 14, the arena's use in 8.9), from the
document alone. No sockets and no clocks here:

* ``update_from_json``: the JSON form of an update (14.3) as the same ``ReplicaUpdate`` the
  binary form decodes to, each field value re-encoded to its binary body by the kind's field
  types (a digest, 14.5, is over binary values, so a JSON client needs them);
* ``Mirror``: applies updates as 14.2 says (from an empty view or from the view kept at the
  baseline tick), keeps its views by tick, and computes a view's digest (14.5);
* the arena's player entity (8.9): kind 1, fields 0 position (i32, i32), 1 player id u32,
  2 name; and its interest rule (``sees``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ticksock_client import DecodeError, EntityUpdate, Reader, ReplicaUpdate, Writer

# --------------------------------------------------------------------------------------------
# The arena's player entity (8.9)
# --------------------------------------------------------------------------------------------

PLAYER_KIND = 1
POSITION, PLAYER_ID, NAME = 0, 1, 2
AOI_CELL, AOI_RADIUS = 100, 1          # the defaults of --aoi-cell and --aoi-radius (8.9)


def _one(get: Callable[[Reader], Any]) -> Callable[[bytes], Any]:
    def dec(b: bytes) -> Any:
        r = Reader(b)
        v = get(r)
        r.end()
        return v
    return dec


def _json_position(v: Any) -> bytes:
    if not (isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v)):
        raise DecodeError(f"a position in JSON is [x, y], not {v!r}")
    return Writer().i32(v[0]).i32(v[1]).done()


def _json_u32(v: Any) -> bytes:
    if type(v) is not int:
        raise DecodeError(f"a u32 in JSON is an integer, not {v!r}")
    return Writer().u32(v).done()


def _json_str(v: Any) -> bytes:
    if not isinstance(v, str):
        raise DecodeError(f"a string in JSON is a string, not {v!r}")
    return Writer().str(v).done()


# kind -> index -> (decode binary value, encode the JSON value to its binary body)
SCHEMAS: dict = {
    PLAYER_KIND: {
        POSITION: (_one(lambda r: (r.i32(), r.i32())), _json_position),
        PLAYER_ID: (_one(Reader.u32), _json_u32),
        NAME: (_one(Reader.str), _json_str),
    },
}


def decode_field(kind: int, index: int, value: bytes) -> Any:
    """A field's value as Python, by the kind's field types; DecodeError for a field the game
    does not declare."""
    try:
        return SCHEMAS[kind][index][0](value)
    except KeyError:
        raise DecodeError(f"no field {index} in kind {kind}") from None


def encode_field(kind: int, index: int, value: tuple | int | str) -> bytes:
    """The binary body of a field value given as Python (a position as (x, y))."""
    as_json = list(value) if isinstance(value, tuple) else value
    return json_field(kind, index, as_json)


def json_field(kind: int, index: int, value: Any) -> bytes:
    """The binary body of a field value given in its JSON form (14.3)."""
    try:
        to_binary = SCHEMAS[kind][index][1]
    except KeyError:
        raise DecodeError(f"no field {index} in kind {kind}") from None
    return to_binary(value)


def cell(x: int, y: int, size: int = AOI_CELL) -> tuple:
    """The grid cell of a position: column x / size, row y / size (8.9)."""
    return x // size, y // size


def sees(me: tuple, other: tuple, size: int = AOI_CELL, radius: int = AOI_RADIUS) -> bool:
    """Whether a member at position `me` sees a player at `other` (8.9): within `radius` cells
    of its own on both axes."""
    (cx, cy), (ox, oy) = cell(*me, size), cell(*other, size)
    return abs(cx - ox) <= radius and abs(cy - oy) <= radius


# --------------------------------------------------------------------------------------------
# The JSON form (14.3)
# --------------------------------------------------------------------------------------------


def _json_uint(v: Any, what: str, top: int) -> int:
    if type(v) is not int or not 0 <= v <= top:
        raise DecodeError(f"{what} must be an integer in 0..={top}, not {v!r}")
    return v


def _json_entity(o: Any) -> EntityUpdate:
    if not isinstance(o, dict) or set(o) != {"id", "kind", "fields"}:
        raise DecodeError(f"an entity in JSON is {{id, kind, fields}}, not {o!r}")
    id = _json_uint(o["id"], "an entity's id", 0xFFFFFFFF)
    kind = _json_uint(o["kind"], "an entity's kind", 0xFFFF)
    if not isinstance(o["fields"], list):
        raise DecodeError(f"entity {id}: fields must be a list, not {o['fields']!r}")
    fields = []
    for f in o["fields"]:
        if not (isinstance(f, list) and len(f) == 2):
            raise DecodeError(f"entity {id}: a field in JSON is [index, value], not {f!r}")
        index = _json_uint(f[0], "a field's index", 255)
        fields.append((index, json_field(kind, index, f[1])))
    indexes = [i for i, _ in fields]
    if any(a >= b for a, b in zip(indexes, indexes[1:])):
        raise DecodeError(f"entity {id}: field indexes not increasing: {indexes}")
    return EntityUpdate(id, kind, tuple(fields))


def update_from_json(o: Any) -> ReplicaUpdate:
    """A `replica` push body in JSON (14.3) as a ReplicaUpdate with binary field values."""
    keys = {"tick", "baseline", "entered", "changed", "left"}
    if not isinstance(o, dict) or set(o) != keys:
        raise DecodeError(f"an update in JSON has exactly the keys {sorted(keys)}: {o!r}")
    tick = _json_uint(o["tick"], "tick", 2**64 - 1)
    baseline = None if o["baseline"] is None else _json_uint(o["baseline"], "baseline", 2**64 - 1)
    groups = []
    for key in ("entered", "changed"):
        if not isinstance(o[key], list):
            raise DecodeError(f"`{key}` must be a list")
        groups.append(tuple(_json_entity(e) for e in o[key]))
    if not isinstance(o["left"], list):
        raise DecodeError("`left` must be a list")
    left = tuple(_json_uint(i, "a left id", 0xFFFFFFFF) for i in o["left"])
    return ReplicaUpdate(tick, baseline, groups[0], groups[1], left)


def update_to_json(u: ReplicaUpdate) -> dict:
    """The JSON form (14.3) of an update of the arena's kinds (to check the document's example)."""
    def entity(e: EntityUpdate) -> dict:
        fields = []
        for index, value in e.fields:
            v = decode_field(e.kind, index, value)
            fields.append([index, list(v) if isinstance(v, tuple) else v])
        return {"id": e.id, "kind": e.kind, "fields": fields}
    return {"tick": u.tick, "baseline": u.baseline, "entered": [entity(e) for e in u.entered],
            "changed": [entity(e) for e in u.changed], "left": list(u.left)}


# --------------------------------------------------------------------------------------------
# Digest (14.5)
# --------------------------------------------------------------------------------------------

FNV_OFFSET, FNV_PRIME, U64 = 0xCBF29CE484222325, 0x100000001B3, 2**64 - 1


def fnv1a64(data: bytes, h: int = FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & U64
    return h


@dataclass(frozen=True)
class Entity:
    """One entity of a view: its kind and its fields set, index -> binary value."""
    kind: int
    fields: dict


def digest(view: dict) -> int:
    """FNV-1a 64 over the view (id -> Entity) as 14.5 lays it out."""
    out = bytearray()
    for id in sorted(view):
        e = view[id]
        out += id.to_bytes(4, "little") + e.kind.to_bytes(2, "little")
        for index in sorted(e.fields):
            value = e.fields[index]
            out += bytes([index]) + len(value).to_bytes(4, "little") + value
    return fnv1a64(bytes(out))


# --------------------------------------------------------------------------------------------
# The mirror (14.2)
# --------------------------------------------------------------------------------------------


class Mirror:
    """A client's views by tick, built from the updates it receives.

    It keeps at most `keep` views, the newest (the clients of this repository keep 64, 14.2);
    an update whose baseline view it does not hold is dropped unapplied and counted. What
    contradicts 14.2 (a tick not later than the one before, an entity entered that the
    baseline view has, one changed or left that it has not, a changed entity of another kind,
    an entered entity without every field of its kind) is recorded in `errors`.
    """

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self.views: dict[int, dict] = {}        # tick -> {entity id: Entity}
        self.last_tick: Optional[int] = None    # of the latest update received
        self.applied: list[int] = []            # ticks of the updates applied, in order
        self.dropped: list[ReplicaUpdate] = []  # updates whose baseline view was not held
        self.errors: list[str] = []

    def apply(self, u: ReplicaUpdate) -> Optional[dict]:
        """Applies one update; returns the view at its tick, or None if it was dropped."""
        if self.last_tick is not None and u.tick <= self.last_tick:
            self.errors.append(f"tick {u.tick} after tick {self.last_tick}")
        self.last_tick = u.tick if self.last_tick is None else max(self.last_tick, u.tick)
        if u.baseline is None:
            base: dict = {}
        elif u.baseline in self.views:
            base = self.views[u.baseline]
        else:
            self.dropped.append(u)
            return None
        view = dict(base)
        where = f"update {u.tick} (baseline {u.baseline})"
        for id in u.left:
            if view.pop(id, None) is None:
                self.errors.append(f"{where}: entity {id} left but was not in the baseline view")
        for e in u.entered:
            if e.id in view:
                self.errors.append(f"{where}: entity {e.id} entered but was in the baseline view")
            declared = set(SCHEMAS.get(e.kind, {}))
            if {i for i, _ in e.fields} != declared:
                self.errors.append(f"{where}: entity {e.id} entered with fields "
                                   f"{[i for i, _ in e.fields]}, kind {e.kind} has {sorted(declared)}")
            view[e.id] = Entity(e.kind, dict(e.fields))
        for e in u.changed:
            old = view.get(e.id)
            if old is None:
                self.errors.append(f"{where}: entity {e.id} changed but is not in the baseline view")
                continue
            if old.kind != e.kind:
                self.errors.append(f"{where}: entity {e.id} changed from kind {old.kind} to {e.kind}")
            view[e.id] = Entity(e.kind, {**old.fields, **dict(e.fields)})
        self.views[u.tick] = view
        self.applied.append(u.tick)
        for old_tick in sorted(self.views)[:-self.keep]:
            del self.views[old_tick]
        return view

    def digest_at(self, tick: int) -> Optional[int]:
        view = self.views.get(tick)
        return None if view is None else digest(view)


def players(view: dict) -> dict:
    """The arena's players in a view: player id -> (entity id, (x, y), name)."""
    out = {}
    for id, e in view.items():
        if e.kind != PLAYER_KIND:
            continue
        out[decode_field(e.kind, PLAYER_ID, e.fields[PLAYER_ID])] = (
            id, decode_field(e.kind, POSITION, e.fields[POSITION]), decode_field(e.kind, NAME, e.fields[NAME]))
    return out


def decoded(view: dict) -> dict:
    """A view with every field decoded: entity id -> (kind, {index: value})."""
    return {id: (e.kind, {i: decode_field(e.kind, i, v) for i, v in e.fields.items()})
            for id, e in view.items()}


def binary_update(body: Any) -> ReplicaUpdate:
    """A push body as a tc.Client or a binary V2Client decoded it (already a ReplicaUpdate)."""
    if not isinstance(body, ReplicaUpdate):
        raise DecodeError(f"not a decoded replica update: {body!r}")
    return body

