"""`authsvc rbac suggest`'s core: read the logs, keep the subject's requests, build the objects.

suggestion = suggest(["audit.log", "audit-1.log.gz"], SuggestOptions(Subject.user("alice")))
suggestion.check(max_bad_lines=0)      # raises on unreadable lines or no requests
render(suggestion.objects, "yaml")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from authsvc.errors import AuthsvcError, InvalidInput
from authsvc.rbac.grants import Grants, describe_capped
from authsvc.rbac.objects import RbacObject, build_objects
from authsvc.rbac.reader import AuditLogReader, ReadReport
from authsvc.rbac.requests import BadEvent, request_of, stage_use
from authsvc.rbac.subjects import Subject, effective_user

DEFAULT_NAME_PREFIX = "authsvc:suggested"


class NoRequests(AuthsvcError):
    """The logs hold no request of the subject (wrong name, wrong log, or a policy that drops them)."""


@dataclass(frozen=True, slots=True)
class SuggestOptions:
    subject: Subject
    namespace: str | None = None  # only requests in this namespace (audit2rbac's --namespace)
    name_prefix: str = DEFAULT_NAME_PREFIX
    expand_verbs: bool = False
    # Requests the API server refused (403) when the log was recorded are left out: the subject
    # was not allowed them and got by (or someone tried what it must not do). audit2rbac keeps them.
    include_denied: bool = False


@dataclass
class Tally:
    """What the subject's events amounted to (each request counted once, see requests.stage_use)."""

    requests: int = 0
    denied: int = 0  # answered 403 while the log was recorded (left out unless include_denied)
    other_namespaces: int = 0
    impersonating: int = 0  # requests the subject made as someone else (not theirs to cover)


@dataclass
class Suggestion:
    options: SuggestOptions
    sources: tuple[str, ...]
    read: ReadReport
    tally: Tally
    grants: Grants
    objects: list[RbacObject] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.options.subject.object_name(self.options.name_prefix)

    def notes(self) -> list[str]:
        """Lines for stderr: what was read and what it came to."""
        subject, tally = self.options.subject.describe(), self.tally
        where = f" in namespace {self.options.namespace}" if self.options.namespace else ""
        lines = [
            f"read {_count(self.read.lines, 'line')} of {', '.join(self.sources)}: "
            f"{_count(tally.requests, 'request')} of {subject}{where}; "
            f"{_count(len(self.objects), 'object')} named {self.name}"
        ]
        if self.grants.default_covered:
            lines.append(
                f"{_count(self.grants.default_covered, 'request')} (discovery, health, access reviews) need no rule: "
                "the API server's default roles allow them to every authenticated user"
            )
        if tally.other_namespaces:
            lines.append(
                f"{_count(tally.other_namespaces, 'request')} outside namespace {self.options.namespace} left out"
            )
        if tally.denied and self.options.include_denied:
            lines.append(f"{_count(tally.denied, 'request')} had been denied (403) when recorded; the rules allow them")
        elif tally.denied:
            lines.append(
                f"{_count(tally.denied, 'request')} denied (403) when recorded left out (--include-denied covers them)"
            )
        if tally.impersonating:
            lines.append(
                f"{_count(tally.impersonating, 'request')} made as another user (impersonation) are not covered: "
                "the impersonate permission is not suggested"
            )
        lines += describe_capped(self.grants.capped)
        return lines

    def check(self, max_bad_lines: int = 0) -> None:
        """Raises InvalidInput when more lines could not be read than allowed (the rules may miss
        requests), NoRequests when the subject made none."""
        read = self.read
        if read.problem_count > max_bad_lines:
            first = read.problems[0] if read.problems else None
            raise InvalidInput(
                f"{_count(read.problem_count, 'unusable line')} in the audit log (first: {first}); the rules "
                f"could miss requests: fix the log, or accept that with --max-bad-lines {read.problem_count}"
            )
        if self.tally.requests == 0 and self.grants.empty and not self.grants.default_covered:
            where = f" in namespace {self.options.namespace}" if self.options.namespace else ""
            raise NoRequests(
                f"no requests of {self.options.subject.describe()}{where} in {', '.join(self.sources)} "
                f"({read.lines:,} lines read): check the name, and that the audit policy records them "
                "(config/apiserver/audit-policy.yaml)"
            )


def suggest(sources: Sequence[str], options: SuggestOptions) -> Suggestion:
    """Read `sources` in order and build the suggestion. Raises OSError if a file cannot be
    opened; unreadable lines are counted in `Suggestion.read` (see `Suggestion.check`)."""
    subject = options.subject
    reader = AuditLogReader(subject.needle())
    grants = Grants(expand_verbs=options.expand_verbs)
    tally = Tally()
    for source in sources:
        for number, event in reader.events(source):
            if not subject.matches(effective_user(event)):
                if subject.matches(event.get("user")):
                    tally.impersonating += _counted(event)
                continue
            try:
                _take(event, options, grants, tally)
            except BadEvent as e:
                reader.report.add_problem(source, number, "bad event", str(e))
    suggestion = Suggestion(options, tuple(sources), reader.report, tally, grants)
    suggestion.objects = build_objects(grants, subject, suggestion.name)
    return suggestion


def _take(event: dict[str, Any], options: SuggestOptions, grants: Grants, tally: Tally) -> None:
    use = stage_use(event.get("stage"), event)
    if use == "skip":
        return
    request = request_of(event)
    if options.namespace is not None and request.namespace != options.namespace:
        tally.other_namespaces += use == "count"
        return
    status = event.get("responseStatus")
    denied = isinstance(status, dict) and status.get("code") == 403
    if use == "count":
        tally.requests += 1
        tally.denied += denied
    if options.include_denied or not denied:
        grants.add(request)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _counted(event: dict[str, Any]) -> int:
    """1 if this event is the one that counts its request, else 0 (bad stages count 0)."""
    try:
        return int(stage_use(event.get("stage"), event) == "count")
    except BadEvent:
        return 0
