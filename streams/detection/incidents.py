"""One incident, one page: alerts that open together and share a cause become one incident.

An EMEA revenue dip opens alerts on revenue at every roll-up level that contains EMEA, on the
average order value, on the margins, on COGS: one cause, dozens of pages. `Incidents` groups them:

- **Linked**: two alerts (of any window sizes: a dip shows at 1m, then at 5m) are linked when their
  labels do not contradict each other (no dimension with two different values:
  `revenue{region=emea}` and `revenue{business_unit=retail,region=emea}` do, `revenue{region=amer}`
  does not) and their KPIs are fed by a common source (event type; from the catalog, with the
  event types each follows in the business flow, `streams.core.catalog.FOLLOWS`: goods issued
  follow orders, so COGS falling with revenue is one cause). Alerts that open at the same
  window instance form a group when linked or over sibling segments with KPIs fed alike (a
  retail dip opens retail AMER and retail APAC together). A group joins an open incident one of
  whose alerts opened or resolved within `LINGER_STEPS` of the group's windows (alerts that open
  together, not a day apart) when the group's own root (the rule below, over the group) is linked
  to one of the incident's series or is over a sibling segment of its root with a KPI fed alike
  (retail EMEA and wholesale EMEA: one value differs, another is shared); otherwise it is a new
  incident. Linking through the group's root, not through each of its alerts, keeps a new cause
  out of an unrelated incident: a false alarm on retail APAC's margin must not take in, as
  related, an EMEA revenue dip whose total `revenue{}` happens to be compatible with it.
  Business-day threshold windows are not grouped (finance's bounds page on their own).
- **Root**: of a new incident's alerts, those of the finest window size are considered (their
  deviations compare; a 5-minute one is five 1-minute ones), the KPI is chosen first (a sum before a
  ratio or formula made from it, a ratio of one measure to another before a margin; then the KPI
  alerting at the most levels; then the largest score),
  then the scope: among that KPI's alerts whose labels contain those of its coarsest alerted series,
  the smallest scope (most labels) whose deviation (observed - expected) has the coarsest one's sign
  and at least `ROOT_SHARE` of its size: `revenue{region=emea}` explains most of `revenue{}`'s drop,
  `revenue{business_unit=retail,region=emea}` only a third of it. The root pages; every other alert
  is **related**: it is listed with the incident and does not page on its own (the generated
  Alertmanager configuration inhibits it while its root fires).
- **End**: an incident ends when the last of its alerts resolves (the root may resolve first: a
  minute series adapts to a dip within minutes, while the region's roll-up is still down), and
  for `LINGER_STEPS` of its root's windows after that it still takes in, as related, alerts of
  series that were part of it or related to its root (the return to normal after a dip;
  related even on the root's own series: the incident has paged). Related alerts never page:
  the generated Prometheus rule leaves them out, and Alertmanager inhibits them under their
  root as well.

- **A better root opening later takes the page.** The alerts of one cause do not all open at the
  same window instance (each needs its own two anomalous points; the 5-minute ones come later).
  When alerts join an open incident whose root is still open, the rule above is applied again to
  the incident's open alerts with the joining ones (each with the deviation it opened with): if
  it names a joining alert, that alert becomes the root and pages, and the previous root becomes
  related (`Incidents.moved` lists the change; the watch flips its role, so the generated rule
  stops firing for it and Alertmanager inhibits it). An alert already listed as related is never
  promoted (it would need a second "opened" message), and once the root has resolved nothing
  takes its place (the incident has paged). The incident keeps its id (its first root and start),
  so Alertmanager, grouping by `incident`, shows the move as an update of one group. So for the
  alerts of one cause the root is the rule's choice over them, whichever opened first.
Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, str, Labels]
"""(kpi, window, labels), as `streams.detection.watch` keys its series."""
Role = Literal["root", "related"]

ROOT_SHARE = 0.6
"""The root is the smallest scope whose deviation is at least this share of the coarsest one's."""
LINGER_STEPS = 6
"""An ended incident still takes in linked alerts for this many of its root's windows: the
return to normal after a dip (a minute series that adapted sees it as a rise) is the same
incident, not a new page."""


@dataclass(frozen=True, slots=True)
class Opening:
    """An alert that opened at this window instance."""

    key: SeriesKey
    deviation: float
    """Observed minus expected at the point that opened it."""
    score: float
    additive: bool
    """Its KPI is a sum (its roll-ups add up): preferred as the root over ratios made from it."""
    step: float = 0.0
    """Its window size in seconds (the root is taken from the finest)."""
    combined: bool = False
    """Its KPI's numerator combines several measures or KPIs (a margin: revenue - COGS): a
    ratio of one measure to another (the average order value) is preferred to it as the root,
    being a step closer to what moved."""


@dataclass(frozen=True, slots=True)
class Membership:
    incident: str
    """The incident's id: its root series and when it started (`revenue{region=emea}@<epoch>`)."""
    role: Role
    root: SeriesKey


@dataclass(slots=True)
class _Incident:
    id: str
    root: SeriesKey
    step: float
    """The root's window size in seconds (how long the incident lingers after it)."""
    members: set[SeriesKey] = field(default_factory=set)
    """Its open alerts."""
    openings: dict[SeriesKey, Opening] = field(default_factory=dict)
    """How each open alert opened (what the root rule compares when alerts join)."""
    scope: set[SeriesKey] = field(default_factory=set)
    """Every series that was part of it (what a new alert is linked to)."""
    ended: float | None = None
    """When its last alert resolved (it lingers `LINGER_STEPS` root windows after that)."""
    returns: set[SeriesKey] = field(default_factory=set)
    """Alerts that joined after it ended (the return to normal): related, even the root's own
    series (the incident has paged)."""
    last_active: float = 0.0
    """When one of its alerts last opened or resolved: it takes in alerts opening within
    `LINGER_STEPS` of their own windows after that (alerts that open *together*, not a day
    apart)."""


def series_name(key: SeriesKey) -> str:
    kpi, window, labels = key
    inner = ",".join(f"{k}={v}" for k, v in labels)
    return f"{kpi}{{{inner}}}[{window}]"


def siblings(a: SeriesKey, b: SeriesKey) -> bool:
    """Series at the same window over segments that differ in one dimension's value and share
    another's: retail EMEA and wholesale EMEA. An EMEA dip opens them minutes apart when EMEA's
    own roll-up has not opened (yet): one cause, one page (with KPIs linked by their sources,
    see `Incidents.related`)."""
    if a[1] != b[1] or dict(a[2]).keys() != dict(b[2]).keys():
        return False
    shared = set(a[2]) & set(b[2])
    return len(shared) == len(a[2]) - 1 and bool(shared)


def compatible(a: Labels, b: Labels) -> bool:
    """No dimension has two different values in `a` and `b`."""
    left = dict(a)
    return all(left.get(k, v) == v for k, v in b)


@dataclass
class Incidents:
    """The open incidents of every window size. `sources`: event types each KPI depends on."""

    sources: Mapping[str, frozenset[str]]
    _open: list[_Incident] = field(default_factory=list)
    _of: dict[SeriesKey, _Incident] = field(default_factory=dict)
    moved: list[tuple[SeriesKey, SeriesKey]] = field(default_factory=list)
    """(previous root, new root) of the pages moved by the last `assign`."""

    def linked(self, a: SeriesKey, b: SeriesKey) -> bool:
        return compatible(a[2], b[2]) and self._fed_alike(a[0], b[0])

    def related(self, a: SeriesKey, b: SeriesKey) -> bool:
        """Linked, or over a sibling segment with a KPI fed alike (what a group's root may join
        an open incident's root through; siblings of its other series would chain a region's
        incident into every segment that shares a business unit with it)."""
        return self.linked(a, b) or (siblings(a, b) and self._fed_alike(a[0], b[0]))

    def _fed_alike(self, a: str, b: str) -> bool:
        return bool(self.sources.get(a, frozenset()) & self.sources.get(b, frozenset()))

    def assign(self, opened: Sequence[Opening], started_at: float) -> dict[SeriesKey, Membership]:
        """Group the alerts that opened at one window instance: join open incidents they are
        linked to, else form new incidents (one per linked group), each with its root."""
        self._open = [
            i
            for i in self._open
            if i.ended is None or started_at <= i.ended + LINGER_STEPS * i.step
        ]
        result: dict[SeriesKey, Membership] = {}
        fresh: list[Opening] = []
        self.moved = []
        joining: dict[str, list[Opening]] = {}
        for group in _groups(opened, self.related):
            joined = self._joins(group, started_at)
            if joined is None:
                fresh.extend(group)
                continue
            for o in group:
                if joined.ended is not None:
                    joined.returns.add(o.key)
                joined.members.add(o.key)
                joined.openings[o.key] = o
                joined.scope.add(o.key)
                self._of[o.key] = joined
            joined.last_active = started_at
            joining.setdefault(joined.id, []).extend(group)
        for incident in self._open:
            if incident.id in joining:
                self._reroot(incident, joining[incident.id])
                for o in joining[incident.id]:
                    result[o.key] = self._member(incident, o.key)
        for group in _groups(fresh, self.related):
            root = choose_root(group)
            step = next(o.step for o in group if o.key == root)
            incident = _Incident(f"{series_name(root)}@{started_at:.0f}", root, step)
            incident.last_active = started_at
            self._open.append(incident)
            for o in group:
                incident.members.add(o.key)
                incident.openings[o.key] = o
                incident.scope.add(o.key)
                self._of[o.key] = incident
                result[o.key] = self._member(incident, o.key)
        return result

    def _joins(self, group: Sequence[Opening], started_at: float) -> _Incident | None:
        """The incident a group of linked alerts opening together joins, if any: one that was
        active within `LINGER_STEPS` of the group's windows with a series linked to the group's
        own root (what the group would page as), or a root that is `related` to it; once that
        incident has ended (its last alert resolved), only through a series that was part of it
        or through its root (the return to normal), never by a new cause. Linking each alert to
        any past member instead let a company-wide dip join, as related, an unrelated alert on
        one segment that had just resolved: nothing paged for the dip."""
        root = choose_root(group)
        step = max(min(o.step for o in group), 1.0)
        for incident in self._open:
            if started_at - incident.last_active > LINGER_STEPS * step:
                continue
            if incident.ended is None:
                if self.related(root, incident.root) or any(
                    self.linked(root, m) for m in incident.scope
                ):
                    return incident
            elif any(o.key in incident.scope for o in group) or self.related(root, incident.root):
                return incident
        return None

    def _reroot(self, incident: _Incident, joining: Sequence[Opening]) -> None:
        """Apply the root rule to `incident`'s open alerts with those `joining` it; a joining
        alert it names takes the page (see the module docstring)."""
        if incident.root not in incident.members or incident.ended is not None:
            return  # the root resolved: the incident has paged, nothing takes its place
        best = choose_root([incident.openings[k] for k in sorted(incident.members)])
        if best != incident.root and any(o.key == best for o in joining):
            self.moved.append((incident.root, best))
            incident.root = best

    def membership(self, key: SeriesKey) -> Membership | None:
        incident = self._of.get(key)
        return None if incident is None else self._member(incident, key)

    @staticmethod
    def _member(incident: _Incident, key: SeriesKey) -> Membership:
        role: Role = "root" if key == incident.root and key not in incident.returns else "related"
        return Membership(incident.id, role, incident.root)

    def resolved(self, key: SeriesKey, at: float) -> None:
        """`key`'s alert resolved at `at`: it leaves its incident, which ends (and lingers)
        once its last open alert has left. The root may resolve first (a minute series adapts
        to a dip within minutes): its related alerts stay open, listed, and still do not page."""
        incident = self._of.pop(key, None)
        if incident is None:
            return
        incident.members.discard(key)
        incident.openings.pop(key, None)
        incident.returns.discard(key)
        incident.last_active = max(incident.last_active, at)
        if not incident.members:
            incident.ended = at

    def forget(self) -> None:
        self._open.clear()
        self._of.clear()
        self.moved = []


def _groups(
    opened: Sequence[Opening], linked: Callable[[SeriesKey, SeriesKey], bool]
) -> list[list[Opening]]:
    """Connected groups of `opened` under `linked` (in order of their first member)."""
    parent = list(range(len(opened)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(opened)):
        for j in range(i):
            if linked(opened[i].key, opened[j].key):
                parent[find(i)] = find(j)
    groups: dict[int, list[Opening]] = {}
    for i, o in enumerate(opened):
        groups.setdefault(find(i), []).append(o)
    return list(groups.values())


def choose_root(group: Sequence[Opening]) -> SeriesKey:
    """The smallest scope explaining most of the deviation, of the KPI that leads the group."""
    finest = min(o.step for o in group)
    per_kpi: dict[str, list[Opening]] = {}
    for o in group:
        if o.step != finest:
            continue
        per_kpi.setdefault(o.key[0], []).append(o)
    kpi = max(
        per_kpi,
        key=lambda k: (
            any(o.additive for o in per_kpi[k]),
            not any(o.combined for o in per_kpi[k]),
            len(per_kpi[k]),
            max(o.score for o in per_kpi[k]),
            k,
        ),
    )
    alerts = per_kpi[kpi]
    coarsest = min(alerts, key=lambda o: (len(o.key[2]), -abs(o.deviation), o.key))
    scope = set(coarsest.key[2])
    total = coarsest.deviation
    candidates = [
        o
        for o in alerts
        if scope <= set(o.key[2])
        and (
            o is coarsest
            or (o.deviation * total > 0 and abs(o.deviation) >= ROOT_SHARE * abs(total))
        )
    ]
    best = max(candidates, key=lambda o: (len(o.key[2]), abs(o.deviation), o.key))
    return best.key
